"""One notion of "now" per data dir: `ZFISH_CLOCK`, else the clock the data dir records, else the real clock.

Whichever it is, the definitions' last partition is that clock's last evening's day in UTC (whatever the
process's TZ), and `zfish upload` and `zfish check` refuse the day after it naming the clock they used
and where it came from: the variable, the file in the data dir, or the real clock. A recorded clock the
file no longer parses is refused naming the file, not a variable that is unset. No Spark.
"""

from __future__ import annotations

import os
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zfish_assets import settings
from zfish_assets.partitions import daily_partitions
from zfish_assets.tools.checking import scope_of
from zfish_assets.tools.upload import plan_upload

RECORDED = "2025-05-11T18:00:00Z"


def evening_day(instant: str) -> date:
    """The last day whose 18:00 UTC has come at `instant` (computed here, not by the code under test)."""
    at = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(timezone.utc)
    return at.date() if at.hour >= 18 else at.date() - timedelta(days=1)


def data_dir_with(tmp_path, monkeypatch, clock_file: str | None, variable: str | None):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("ZFISH_DATA_DIR", str(data))
    if clock_file is not None:
        (data / "clock").write_text(clock_file + "\n")
    if variable is None:
        monkeypatch.delenv("ZFISH_CLOCK", raising=False)
    else:
        monkeypatch.setenv("ZFISH_CLOCK", variable)
    return data


CASES = [  # (the data dir's clock file, ZFISH_CLOCK, the clock's words a refusal must hold, the last day)
    (RECORDED, None, "the clock recorded in {data}/clock, 2025-05-11T18:00:00Z (ZFISH_CLOCK unset)", "2025-05-11"),
    (RECORDED, "2025-05-01T19:00:00Z", "ZFISH_CLOCK=2025-05-01T19:00:00Z", "2025-05-01"),  # before the data's days
    (RECORDED, "2025-05-11T17:59:59Z", "ZFISH_CLOCK=2025-05-11T17:59:59Z", "2025-05-10"),
    ("not a time", "2025-05-11T18:00:00Z", "ZFISH_CLOCK=2025-05-11T18:00:00Z", "2025-05-11"),  # the variable wins
    (None, None, "the real clock (ZFISH_CLOCK unset, no clock recorded in {data}/clock)", None),
]


@pytest.mark.parametrize("clock_file, variable, words, last", CASES)
def test_every_command_and_the_partitions_agree_on_the_clock_and_name_it(tmp_path, monkeypatch, clock_file,
                                                                         variable, words, last):
    data = data_dir_with(tmp_path, monkeypatch, clock_file, variable)
    last_day = date.fromisoformat(last) if last else datetime.now(timezone.utc).date()
    after = (last_day + timedelta(days=1)).isoformat()
    words = words.format(data=data)

    from zfish_assets.definitions import build_definitions

    defs = build_definitions()
    assert daily_partitions().get_last_partition_key() == last_day.isoformat()
    for table in ("observations", "outcomes"):
        (tmp_path / "lab" / table / f"day={after}").mkdir(parents=True)
    with pytest.raises(ValueError) as upload:
        plan_upload(tmp_path / "lab", after)
    with pytest.raises(ValueError) as check:
        scope_of(defs, day=after)
    for refusal in (str(upload.value), str(check.value)):
        assert words in refusal, refusal
    assert f"makes {last_day.isoformat()} the last day" in str(upload.value)
    assert f"..{last_day.isoformat()} " in str(check.value)


def test_a_recorded_clock_that_does_not_parse_is_refused_naming_the_file(tmp_path, monkeypatch):
    data = data_dir_with(tmp_path, monkeypatch, "garbage", None)
    for attempt in (daily_partitions, lambda: plan_upload(tmp_path, "2025-05-10")):
        with pytest.raises(ValueError) as refused:
            attempt()
        text = str(refused.value)
        assert text.startswith(f"the clock recorded in {data / 'clock'}, 'garbage', is not an ISO 8601"), text
        assert "ZFISH_CLOCK unset" in text and "ZFISH_CLOCK=" not in text and "fix or delete the file" in text


@given(st.datetimes(datetime(2025, 4, 6, 18), datetime(2031, 1, 1)),  # a clock ahead of the real one too
       st.sampled_from(["Pacific/Auckland", "America/Los_Angeles", "Asia/Kolkata", "UTC"]),
       st.booleans())
def test_the_last_partition_is_the_clocks_last_evening_in_utc_whatever_the_timezone(tmp_path_factory, now, zone,
                                                                                    recorded):
    """Recorded in the data dir or set: the last partition is the last day whose 18:00 UTC has come, a clock
    ahead of the real one included (Dagster also ends partitions at the real clock's last complete day)."""
    data = tmp_path_factory.mktemp("clock")
    instant = now.replace(tzinfo=timezone.utc).isoformat()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TZ", zone)
        time.tzset()
        data_dir_with(data, mp, instant if recorded else None, None if recorded else instant)
        try:
            assert daily_partitions().get_last_partition_key() == evening_day(instant).isoformat()
        finally:
            mp.undo()
            time.tzset()
            assert "TZ" not in os.environ or os.environ["TZ"] != zone


def test_the_lake_sensor_names_day_folders_after_the_clock_and_the_clock(tmp_path, monkeypatch):
    """A lab's day folder dropped in the lake ahead of the data dir's recorded clock: the sensor crawls it
    only once its evening comes, and says so naming the clock, rather than passing over it in silence."""
    from dagster import DagsterInstance, build_sensor_context

    from zfish_assets.definitions import build_definitions

    data = data_dir_with(tmp_path, monkeypatch, RECORDED, None)
    defs = build_definitions()
    for day in ("2025-05-11", "2025-05-12", "2025-05-13"):
        defs.resources["lake"].put_bytes(f"observations/day={day}/a.json", b"{}\n")
    repo = defs.get_repository_def()
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, repository_def=repo,
                                       resources={"lake": defs.resources["lake"], "catalog": defs.resources["catalog"]})
        first = repo.get_sensor_def("new_lake_days").evaluate_tick(context)
        assert [r.partition_key for r in first.run_requests] == ["2025-05-11"]
        context = build_sensor_context(instance=instance, repository_def=repo, cursor=first.cursor,
                                       resources={"lake": defs.resources["lake"], "catalog": defs.resources["catalog"]})
        again = repo.get_sensor_def("new_lake_days").evaluate_tick(context)
    assert not again.run_requests
    assert "after the clock, crawled once their evening comes: 2025-05-12, 2025-05-13" in again.skip_message
    assert f"the clock recorded in {data}/clock, 2025-05-11T18:00:00Z (ZFISH_CLOCK unset)" in again.skip_message
