"""The automation's decisions, without Spark: which days the lake sensor crawls, which window the
chained join covers, which day the evening schedule runs.

The days are landed by the simulator and crawled by the crawl itself (both Spark-free); expected
days and windows are worked out here from the dates alone.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterRunStatus,
    build_run_status_sensor_context,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.test_utils import create_run_for_test
from hypothesis import given
from hypothesis import strategies as st

from zfish_assets.domain.crawl import crawl_day
from zfish_assets.partitions import evening_window
from zfish_assets.synthetic import SimSettings, write_day

START = date(2025, 4, 5)
TABLES = ("observations", "outcomes")


def land(defs, day: str) -> None:
    """Both tables' files of `day` in the lake, as the simulator writes them (outcomes may be empty)."""
    lake = defs.resources["lake"]
    for table in TABLES:
        lake.land_day(table, day, lambda folder, t=table: write_day(SimSettings.from_env(), t, date.fromisoformat(day), folder))


def lake_tick(defs, instance, cursor: str | None = None):
    repo = defs.get_repository_def()
    context = build_sensor_context(instance=instance, cursor=cursor, repository_def=repo,
                                   resources={"lake": defs.resources["lake"], "catalog": defs.resources["catalog"]})
    return repo.get_sensor_def("new_lake_days").evaluate_tick(context)


def test_the_lake_sensor_crawls_each_new_or_changed_day_once(defs, instance):
    for day in ("2025-05-09", "2025-05-10", "2025-05-11", "2025-05-12"):  # 05-12 is past the clock: no partition
        land(defs, day)
    first = lake_tick(defs, instance)
    requested = {r.partition_key: r for r in first.run_requests}
    assert sorted(requested) == ["2025-05-09", "2025-05-10", "2025-05-11"]
    for day, request in requested.items():
        assert [k.to_user_string() for k in request.asset_selection] == ["observations", "outcomes"]  # crawl, not land
        assert request.tags.items() >= {"zfish/join_through": day, "zfish/trigger": "lake"}.items()
        assert request.run_key.startswith(f"lake-{day}-")
    assert sorted(json.loads(first.cursor)) == sorted(requested)

    again = lake_tick(defs, instance, first.cursor)
    assert not again.run_requests and "no new or changed day folder among 4" in again.skip_message

    # The lab uploads 2025-05-10 anew with another file: crawled again, under a new run key.
    defs.resources["lake"].put_bytes("observations/day=2025-05-10/extra.json", b"{}\n")
    changed = lake_tick(defs, instance, again.cursor)
    assert [r.partition_key for r in changed.run_requests] == ["2025-05-10"]
    assert changed.run_requests[0].run_key != requested["2025-05-10"].run_key


def test_the_lake_sensor_names_day_folders_after_the_clock_instead_of_passing_them_over(defs, instance):
    """A day landed before the clock was set back has no partition: never crawled until its evening comes,
    which the tick's skip reason (what the UI shows of each tick) now says, with the clock."""
    for day in ("2025-05-11", "2025-05-12", "2025-05-13"):
        land(defs, day)
    first = lake_tick(defs, instance)
    assert [r.partition_key for r in first.run_requests] == ["2025-05-11"]
    said = lake_tick(defs, instance, first.cursor).skip_message
    assert "day folders after the clock, crawled once their evening comes: 2025-05-12, 2025-05-13 (" in said, said
    assert "ZFISH_CLOCK" in said and "makes 2025-05-11 the last day with a partition" in said, said


def test_the_lake_sensor_leaves_crawled_days_and_waits_for_running_ones(defs, instance):
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    for day in ("2025-05-10", "2025-05-11"):
        land(defs, day)
    for table in TABLES:  # 2025-05-10 crawled already, as a schedule or backfill run does
        crawl_day(lake, catalog, table, "2025-05-10")
    busy = create_run_for_test(instance, job_name="land_and_crawl", status=DagsterRunStatus.STARTED,
                               tags={"dagster/partition": "2025-05-11"})
    tick = lake_tick(defs, instance)
    assert not tick.run_requests
    assert list(json.loads(tick.cursor)) == ["2025-05-10"]  # 2025-05-11 is looked at again next tick

    instance.delete_run(busy.run_id)
    later = lake_tick(defs, instance, tick.cursor)
    assert [r.partition_key for r in later.run_requests] == ["2025-05-11"]


def test_the_lake_sensor_crawls_a_registered_day_whose_folder_was_removed(defs, instance):
    """A day retracted by an empty re-delivery has no folder left: the sensor still crawls it (the
    crawl drops it from the catalog), then leaves it."""
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    land(defs, "2025-05-10")
    for table in TABLES:
        crawl_day(lake, catalog, table, "2025-05-10")
    for table in TABLES:
        lake.land_day(table, "2025-05-10", lambda folder: None)
    tick = lake_tick(defs, instance)
    assert [r.partition_key for r in tick.run_requests] == ["2025-05-10"]
    for table in TABLES:
        crawl_day(lake, catalog, table, "2025-05-10")
    assert not lake_tick(defs, instance).run_requests


def after_crawl(defs, instance, tags: dict[str, str]):
    run = create_run_for_test(instance, job_name="land_and_crawl", status=DagsterRunStatus.SUCCESS, tags=tags)
    context = build_run_status_sensor_context(
        sensor_name="join_after_crawl", dagster_instance=instance, dagster_run=run,
        dagster_event=DagsterEvent(event_type_value=DagsterEventType.RUN_SUCCESS.value, job_name="land_and_crawl"),
        repository_def=defs.get_repository_def(),
    )
    return run, defs.get_repository_def().get_sensor_def("join_after_crawl")(context)


def test_the_join_after_a_crawl_covers_the_evening_window(defs, instance):
    run, request = after_crawl(defs, instance, {"zfish/join_through": "2025-05-11", "zfish/trigger": "evening"})
    assert request.run_key == f"join-after-{run.run_id}"
    assert request.tags == {"dagster/asset_partition_range_start": "2025-04-06",  # 36 days, 2025-05-11 included
                            "dagster/asset_partition_range_end": "2025-05-11",
                            "zfish/join_through": "2025-05-11", "zfish/trigger": "evening"}
    _, early = after_crawl(defs, instance, {"zfish/join_through": "2025-04-07"})  # clipped at the first day
    assert early.tags["dagster/asset_partition_range_start"] == "2025-04-05" and early.tags["zfish/trigger"] == ""
    _, untagged = after_crawl(defs, instance, {})
    assert untagged.skip_message == "not an evening or lake crawl"


def test_the_join_after_a_crawl_reaches_the_later_days_it_re_judged(defs, instance, tmp_path):
    """04-10's crawl moves an image to 04-11 (re-judged in the same run): the chained join covers
    04-11 too, so the image reaches the table that evening."""
    from dagster import AssetKey, AssetSelection

    from zfish_assets.dagster_names import JOIN_THROUGH
    from zfish_assets.tools.runs import _run  # a crawl run tagged as the evening's and the lake sensor's are

    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    first, second = "2025-05-10", "2025-05-11"
    row = {"fish_id": "f1", "timestamp": "2025-05-10T09:00:00Z", "age_days": 3, "treatment": "t",
           "genetic_markers": {"gene_a": 1, "gene_b": 2, "gene_c": 3}, "length_mm": 4.5, "sex": "M"}

    def deliver(day: str, images: list[str]) -> None:
        lake.land_day("observations", day, lambda f: images and (f / "a.json").write_text(
            "".join(json.dumps({**row, "image_id": i}) + "\n" for i in images)))

    deliver(first, ["X", "Y"])
    crawl_day(lake, catalog, "observations", first)
    deliver(first, ["Y"])
    deliver(second, ["X"])
    crawl_day(lake, catalog, "observations", second)  # X deferred to the first day's old delivery
    summary = _run(defs, AssetSelection.assets(AssetKey("observations")), instance, {JOIN_THROUGH: first},
                   partition_key=first)
    assert summary.success
    run = instance.get_run_by_id(summary.run_id)
    context = build_run_status_sensor_context(
        sensor_name="join_after_crawl", dagster_instance=instance, dagster_run=run,
        dagster_event=DagsterEvent(event_type_value=DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name),
        repository_def=defs.get_repository_def())
    request = defs.get_repository_def().get_sensor_def("join_after_crawl")(context)
    assert request.tags["dagster/asset_partition_range_end"] == second
    assert request.tags["dagster/asset_partition_range_start"] == evening_window(first)[0]


@given(st.dates(START, START + timedelta(days=400)), st.integers(1, 120))
def test_the_evening_window_is_the_last_horizon_days_from_the_first_day_on(day, horizon):
    window = sorted(d for d in (day - timedelta(days=back) for back in range(horizon)) if d >= START)
    assert evening_window(day.isoformat(), horizon) == (window[0].isoformat(), window[-1].isoformat())


def evening_request(defs, scheduled: datetime):
    repo = defs.get_repository_def()
    with build_schedule_context(repository_def=repo, scheduled_execution_time=scheduled) as context:
        return repo.get_schedule_def("evening").evaluate_tick(context)


def test_the_evening_schedule_runs_the_day_whose_evening_has_come(monkeypatch, data_dir):
    from zfish_assets.definitions import build_definitions

    monkeypatch.setenv("ZFISH_CLOCK", "2025-05-11T17:59:00Z")  # a minute before the evening: still the 10th
    tick = evening_request(build_definitions(), datetime(2026, 1, 1, 18, tzinfo=timezone.utc))
    assert [(r.partition_key, r.run_key) for r in tick.run_requests] == [("2025-05-10", "evening-2025-05-10")]
    monkeypatch.delenv("ZFISH_CLOCK")  # the real clock: a scheduled time years ahead is no partition yet
    ahead = evening_request(build_definitions(), datetime(2099, 1, 1, 18, tzinfo=timezone.utc))
    assert not ahead.run_requests and ahead.skip_message == "day 2099-01-01 is not a partition (yet)"


def test_the_evenings_deadline_is_the_tables_freshness_policy(defs):
    """The crawled tables and joined_fish_data are due each day between the evening's start (18:00
    UTC, when its schedule fires) and two hours later: Dagster's freshness policy says so."""
    from zfish_assets.automation.schedules import EVENING_CRON

    minute, hour = (int(v) for v in EVENING_CRON.split()[:2])
    for name in ("observations", "outcomes", "joined_fish_data"):
        policy = defs.get_assets_def(name).specs_by_key[__import__("dagster").AssetKey(name)].freshness_policy
        assert policy is not None, f"{name} has no freshness policy"
        assert policy.deadline_cron == f"{minute} {hour + 2} * * *" and policy.timezone == "UTC"
        assert policy.lower_bound_delta == timedelta(hours=2)


@given(st.datetimes(datetime(2025, 4, 6), datetime(2026, 1, 1)), st.sampled_from(["Pacific/Auckland", "America/Los_Angeles", "UTC"]))
def test_the_evening_day_is_read_in_utc_whatever_the_processs_local_timezone(scheduled, zone):
    """The evening schedule runs in UTC: a scheduled time without a zone (a test's `build_schedule_context`)
    is a UTC time, as `ZFISH_CLOCK` reads one, never the process's local time (TZ)."""
    import os
    import time

    from zfish_assets.partitions import last_day

    def evening_day(when: datetime) -> str:
        return last_day(when).isoformat()

    utc_day = scheduled.date() if (scheduled.hour, scheduled.minute) >= (18, 0) else scheduled.date() - timedelta(days=1)
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        assert evening_day(scheduled) == evening_day(scheduled.replace(tzinfo=timezone.utc)) == utc_day.isoformat()
        local = scheduled.replace(tzinfo=timezone.utc).astimezone()  # the same instant in the local zone
        assert evening_day(local) == utc_day.isoformat()
    finally:
        os.environ.pop("TZ") if before is None else os.environ.update(TZ=before)
        time.tzset()


def test_the_evening_schedule_in_auckland_runs_the_utc_evenings_day(monkeypatch, data_dir):
    """TZ=Pacific/Auckland (UTC+13 in December): 18:00 and 17:59 UTC, given without a zone, are the day's
    evening and the evening before it; the time given in Auckland's zone is the same evening."""
    import time

    from zoneinfo import ZoneInfo

    from zfish_assets.definitions import build_definitions

    monkeypatch.delenv("ZFISH_CLOCK", raising=False)  # the real clock: the scheduled time is the evening's
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        defs = build_definitions()
        keys = [[r.partition_key for r in evening_request(defs, when).run_requests] for when in
                (datetime(2025, 12, 9, 18), datetime(2025, 12, 9, 17, 59), datetime(2025, 12, 10, 7, tzinfo=ZoneInfo("Pacific/Auckland")))]
        assert keys == [["2025-12-09"], ["2025-12-08"], ["2025-12-09"]]
    finally:
        monkeypatch.undo()
        time.tzset()
