"""Crawls of one table at once (two days' runs, a backfill beside the sensor's run, two processes) take turns:
the final registrations and quarantines are those of the same lake crawled in day order once.

A crawl judges its day against the keys the other days' crawls recorded, registers the day's accepted
rows, removes the day's other versions, and re-judges the days whose verdict its day changed. Interleaved,
day 26's own crawl removes the version day 25's crawl just registered for day 26 when it re-judged it: the
partition points at rows that are gone, and Athena and DuckDB read nothing of the day. The interleaving is
made deterministic here by holding one crawl just after it registers.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.lease import TableBusy, hold
from zfish_assets.domain.glue_crawler import crawl
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets_tests.support.crawl_lake import DAY_KEYS, DAYS, deliver, expected, make_lake, outcome

HELD_S = 3.0


def test_a_crawl_re_judging_a_day_and_that_day_s_own_crawl_at_once_end_as_crawled_in_day_order(tmp_path, monkeypatch):
    """Day 26's crawl is held just after it registers (having accepted X: day 25 recorded no keys yet);
    meanwhile day 25's crawl accepts X and re-judges day 26, registering its rows without X. Without
    turns day 26's held crawl then removes that version as superseded by its own."""
    lake, catalog = make_lake(tmp_path)
    deliver(lake, "observations", DAYS[0], ["X", "Y"])
    deliver(lake, "observations", DAYS[1], ["X", "Z"])
    held, first_done = threading.Event(), threading.Event()
    register = LocalCatalog.put_partition

    def put_partition(self, table, day, location, parameters):
        register(self, table, day, location, parameters)
        if threading.current_thread().name == "day-26" and not held.is_set():
            held.set()
            first_done.wait(HELD_S)  # with turns, day 25's crawl waits for this one: it goes on after HELD_S

    monkeypatch.setattr(LocalCatalog, "put_partition", put_partition)
    failed = []

    def run(day: str) -> None:
        try:
            crawl(lake, catalog, "observations", day)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failed.append(exc)

    second = threading.Thread(target=run, args=(DAYS[1],), name="day-26")
    second.start()
    assert held.wait(10)
    first = threading.Thread(target=run, args=(DAYS[0],), name="day-25")
    first.start()
    first.join(30)
    first_done.set()
    second.join(30)
    assert not failed, failed
    assert outcome(lake, catalog) == expected({DAYS[0]: ["X", "Y"], DAYS[1]: ["X", "Z"], DAYS[2]: []})


def test_a_crawl_waits_for_another_crawl_of_the_table_and_then_refuses_naming_it(tmp_path):
    lake, catalog = make_lake(tmp_path)
    deliver(lake, "observations", DAYS[0], ["X"])
    with hold("another", "crawl of observations day=2025-04-26", 0, lambda _: None,
              lake.lease(layout.crawl_lease_key("observations"))):
        started = time.monotonic()
        with pytest.raises(TableBusy) as busy:
            crawl(lake, catalog, "observations", DAYS[0], wait_s=0.5)
        assert 0.5 <= time.monotonic() - started < 5
    assert "crawl of observations day=2025-04-26" in str(busy.value), busy.value
    assert catalog.get_table("observations") is None  # refused before judging anything
    crawl(lake, catalog, "observations", DAYS[0], wait_s=0.5)  # the lease is free again
    assert outcome(lake, catalog) == expected({DAYS[0]: ["X"], DAYS[1]: [], DAYS[2]: []})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.fixed_dictionaries(dict.fromkeys(DAYS, DAY_KEYS)), final=st.fixed_dictionaries(dict.fromkeys(DAYS, DAY_KEYS)))
def test_crawls_of_every_day_at_once_end_as_the_final_lake_crawled_in_day_order(scratch, first, final):
    """Days delivered and crawled, then delivered again (keys moved, exchanged, retracted) and every day
    crawled at once, each in its own thread: the registrations and quarantines the final lake implies."""
    lake, catalog = make_lake(Path(tempfile.mkdtemp(dir=scratch)))
    for delivered in (first, final):
        for day, keys in delivered.items():
            deliver(lake, "observations", day, keys)
        start = threading.Barrier(len(DAYS))
        failed = []

        def run(day: str) -> None:
            start.wait()
            try:
                crawl(lake, catalog, "observations", day)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                failed.append(exc)

        threads = [threading.Thread(target=run, args=(day,)) for day in DAYS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not failed, failed
    assert outcome(lake, catalog) == expected(final)
