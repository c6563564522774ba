"""A day is parsed once where it enters (a partition key, a CLI argument, a job argument) and passed on as a
value: `DayRange` refuses a bad day or a reversed range on construction, naming it, and expands its days
once; the job's arguments are refused on construction, not when the job first needs its days."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glue_scripts.zfish_etl.contract import TIMESTAMP_RANGE
from glue_scripts.zfish_etl.days import FIRST_DAY, LAST_DAY, DayRange, parse_day
from glue_scripts.zfish_etl.job_args import JobArgs

DAYS = st.dates(date(2000, 1, 1), date(2100, 12, 31))


@given(DAYS, st.integers(0, 400))
def test_a_range_holds_every_day_from_first_to_last_once(first, length):
    last = first + timedelta(days=length)
    window = DayRange.parse(first.isoformat(), last.isoformat())
    expected = [date.fromordinal(n).isoformat() for n in range(first.toordinal(), last.toordinal() + 1)]
    assert list(window.keys) == expected and (window.first_key, window.last_key) == (expected[0], expected[-1])
    assert window.keys is window.keys  # expanded once


@pytest.mark.parametrize("text", ["2025-5-03", "20250503", "2025-05-10' OR '1'='1", "../2025-05-10", "",
                                  "２０２５-05-10", "2025-05-10\n"])
def test_anything_but_a_yyyy_mm_dd_day_is_refused_naming_it(text):
    with pytest.raises(ValueError, match=f"^{re.escape(f'first day={text!r}')} is not a day in YYYY-MM-DD form$"):
        DayRange.parse(text, "2025-05-10")
    with pytest.raises(ValueError, match="is not a day in YYYY-MM-DD form"):
        parse_day(text)


@pytest.mark.parametrize("text, why", [
    ("2025-02-29", "is no date: February 2025 has 28 days"), ("2025-04-31", "is no date: April 2025 has 30 days"),
    ("2025-13-01", "is no date: there is no month 13"), ("2025-00-10", "is no date: there is no month 00"),
    ("2025-05-00", "is no date: May 2025 has 31 days"), ("1900-02-29", "is no date: February 1900 has 28 days"),
    ("9999-12-31", f"is outside the days zfish handles, {FIRST_DAY}..{LAST_DAY}"),
    ("1899-12-31", f"is outside the days zfish handles, {FIRST_DAY}..{LAST_DAY}"),
])
def test_a_day_of_the_right_form_that_is_no_date_or_out_of_bounds_says_why(text, why):
    with pytest.raises(ValueError, match=f"^{re.escape(f'day={text!r} {why}')}"):
        parse_day(text)


@given(st.integers(1, 9999), st.integers(0, 99), st.integers(0, 99))
def test_a_day_is_accepted_exactly_when_the_calendar_has_it_within_the_contracts_timestamps(year, month, day):
    text = f"{year:04d}-{month:02d}-{day:02d}"
    try:
        expected = date(year, month, day)
    except ValueError:
        expected = None
    inside = expected is not None and TIMESTAMP_RANGE[0].date() <= expected < TIMESTAMP_RANGE[1].date()
    if inside:
        assert parse_day(text) == expected
        return
    with pytest.raises(ValueError) as refused:
        parse_day(text)
    assert str(refused.value).startswith(f"day={text!r} is " + ("outside" if expected else "no date: "))


def test_a_reversed_range_is_refused_on_construction_naming_both_days():
    with pytest.raises(ValueError, match="last day 2025-04-05 is before first day 2025-05-10"):
        DayRange.parse("2025-05-10", "2025-04-05")


def job_args(first: str, last: str) -> JobArgs:
    return JobArgs(first_day=first, last_day=last, database="db", observations_table="observations",
                   outcomes_table="outcomes", target_path="file:///t", target_table="joined_fish_data")


def test_the_jobs_days_are_refused_when_the_job_starts_and_expanded_once():
    with pytest.raises(ValueError, match=r"^last_day='2025-02-30' is no date: February 2025 has 28 days$"):
        job_args("2025-02-01", "2025-02-30")
    args = job_args("2025-04-29", "2025-05-02")
    assert args.days() == ["2025-04-29", "2025-04-30", "2025-05-01", "2025-05-02"]
    assert args.window is args.window and args.window.keys is args.window.keys


def test_the_joined_assets_request_carries_its_parsed_range():
    from glue_scripts.zfish_etl.modes import JoinMode
    from zfish_assets.io_managers.hudi_io_manager import JoinRequest, SourceTables

    request = JoinRequest(DayRange.parse("2025-05-01", "2025-05-03"), JoinMode.INCREMENTAL,
                          SourceTables("observations", "outcomes"))
    assert (request.first_day, request.last_day, request.days()) == (
        "2025-05-01", "2025-05-03", ("2025-05-01", "2025-05-02", "2025-05-03"))
    assert request.days() is request.window.keys
