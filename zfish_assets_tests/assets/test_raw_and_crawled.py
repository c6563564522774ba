"""The foundation's daily assets: landing, crawling, the query side and the crawled tables' checks."""

from __future__ import annotations

import json
import shutil

import pytest

from zfish_assets.partitions import days_between
from zfish_assets.tools.runs import land_and_crawl, run_checks

WALKTHROUGH_DAYS = days_between("2025-04-05", "2025-05-10")


def count(defs, table: str) -> int:
    return defs.resources["query"].scalar(f'SELECT count(*) FROM "zebra_fish_demo"."{table}"', {table: None})


def raw_rows(lake_root, table: str) -> int:
    """Records in the lake's files of a table, parsed independently of the pipeline."""
    return sum(
        1 for f in lake_root.glob(f"use-cases/fish-demo/{table}/day=*/*.json")
        for line in f.read_text().splitlines() if line.strip() and json.loads(line)
    )


def test_walkthrough_days_land_register_and_count(defs, instance, data_dir):
    landed = land_and_crawl(defs, instance, WALKTHROUGH_DAYS)
    assert all(r.success for r in landed)
    catalog = defs.resources["catalog"]
    assert sorted(catalog.partition_parameters("observations")) == WALKTHROUGH_DAYS
    # Labels arrive 32 days after the images: the first four days' fish are labeled by 2025-05-10.
    assert sorted(catalog.partition_parameters("outcomes")) == days_between("2025-05-07", "2025-05-10")
    lake_root = data_dir / "lake"
    assert count(defs, "observations") == raw_rows(lake_root, "observations") == 540
    assert count(defs, "outcomes") == raw_rows(lake_root, "outcomes") == 20
    failed = [c for r in landed for c in r.checks if not c.passed]
    assert not failed
    assert {c.name for c in landed[-1].checks} == {"partitions_match_lake", "rows_match_landed", "required_columns",
                                                   "quarantine", "column_schema_change"}
    # Nested genetic_markers stays a struct in the crawled schema.
    columns = dict(catalog.get_table("observations").columns)
    assert columns["genetic_markers"] == "struct<gene_a:double,gene_b:double,gene_c:double>"


def test_a_day_is_invisible_until_registered(walkthrough, defs, instance):
    land_and_crawl(defs, instance, ["2025-05-11"], assets=["raw_observations", "raw_outcomes"])
    assert (count(defs, "observations"), count(defs, "outcomes")) == (540, 20)
    land_and_crawl(defs, instance, ["2025-05-11"], assets=["observations", "outcomes"])
    assert (count(defs, "observations"), count(defs, "outcomes")) == (555, 25)


def test_a_day_without_labels_succeeds_with_zero_rows(defs, instance):
    (run,) = land_and_crawl(defs, instance, ["2025-04-20"])
    assert run.success
    assert defs.resources["catalog"].get_table("outcomes") is None
    assert count(defs, "observations") == 15


def test_relanding_and_recrawling_a_day_changes_nothing(defs, instance, data_dir):
    land_and_crawl(defs, instance, ["2025-05-08"])
    before = sorted(p.name for p in (data_dir / "lake").rglob("*.json"))
    (rerun,) = land_and_crawl(defs, instance, ["2025-05-08"])
    assert rerun.success and all(c.passed for c in rerun.checks)
    assert sorted(p.name for p in (data_dir / "lake").rglob("*.json")) == before
    assert (count(defs, "observations"), count(defs, "outcomes")) == (15, 5)


def test_check_fails_when_files_change_behind_the_catalog(walkthrough, defs, instance, data_dir):
    day_dir = data_dir / "lake" / "use-cases/fish-demo/observations/day=2025-04-20"
    victim = sorted(day_dir.glob("*.json"))[0]
    victim.unlink()
    summary = run_checks(defs, instance, ["observations"])
    failed = {c.name: c.description for c in summary.checks if not c.passed}
    # Queries read the day's rows as crawled (the partition names them, not the folder) until it is
    # crawled again: the check that compares the folder with the crawl names the day.
    assert set(failed) == {"partitions_match_lake"}
    assert "day=2025-04-20" in failed["partitions_match_lake"]
    assert "14 files" in failed["partitions_match_lake"] and "15 files" in failed["partitions_match_lake"]
    assert defs.resources["query"].scalar(
        """SELECT count(*) FROM "zebra_fish_demo"."observations" WHERE day = '2025-04-20'""",
        {"observations": ["2025-04-20"]}) == 15


def test_a_day_of_wrong_types_is_quarantined_and_its_crawl_fails_on_the_rate(defs, instance, data_dir):
    """A field changing type is not schema drift to merge: the contract keeps the table's schema, the
    day's rows go to quarantine as `wrong_type`, and the quarantine check fails the crawl run (100%
    of the day is above the default 10%)."""
    land_and_crawl(defs, instance, ["2025-04-05"])
    land_and_crawl(defs, instance, ["2025-04-06"], assets=["raw_observations"])
    day_dir = data_dir / "lake" / "use-cases/fish-demo/observations/day=2025-04-06"
    for f in day_dir.glob("*.json"):
        record = json.loads(f.read_text())
        record["length_mm"] = str(record["length_mm"])
        f.write_text(json.dumps(record) + "\n")
    with pytest.raises(Exception, match=r"quarantine"):
        land_and_crawl(defs, instance, ["2025-04-06"], assets=["observations"])
    ledger = data_dir / "lake" / "use-cases/fish-demo/quarantine/observations/day=2025-04-06/quarantine.jsonl"
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert sorted(e["file"] for e in entries) == sorted(f.name for f in day_dir.glob("*.json"))
    assert {e["reason"] for e in entries} == {"wrong_type"} and all("length_mm" in e["detail"] for e in entries)
    assert dict(defs.resources["catalog"].get_table("observations").columns)["length_mm"] == "double"
    assert count(defs, "observations") == 15


def accepted_keys(lake, day: str) -> list[str]:
    return lake.list_keys(f"_zfish/accepted/observations/day={day}")


def test_a_partition_not_at_its_accepted_rows_fails_the_check_until_the_day_is_crawled_again(
        walkthrough, defs, instance):
    """A day registered over its raw folder (as a Glue crawler registers it) makes Athena read every delivered
    line; one whose accepted rows are gone reads nothing. The check names both; a crawl of the day fixes them."""
    catalog, lake = defs.resources["catalog"], defs.resources["lake"]
    over_raw, emptied = "2025-04-20", "2025-04-21"
    params = catalog.partition_parameters("observations")
    catalog.put_partition("observations", over_raw, lake.day_uri("observations", over_raw), params[over_raw])
    lake.delete_keys(accepted_keys(lake, emptied))
    summary = run_checks(defs, instance, ["observations"])
    failed = {c.name: c.description for c in summary.checks if not c.passed}
    assert "partitions_match_lake" in failed, summary.checks
    text = failed["partitions_match_lake"]
    assert "Athena reads the raw files" in text and f"day={over_raw} at {lake.day_uri('observations', over_raw)}" in text
    assert f"day={emptied} at " in text
    runs = land_and_crawl(defs, instance, [over_raw, emptied], assets=["observations"])
    assert all(r.success and all(c.passed for c in r.checks) for r in runs)
    assert all(c.passed for c in run_checks(defs, instance, ["observations"]).checks)


def test_a_recrawl_keeps_one_accepted_version_of_the_day(walkthrough, defs, instance, data_dir):
    """The same files crawled again: the same object, byte for byte. Changed files: a new object, registered,
    and the old one gone once the partition points at the new one."""
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    day = "2025-04-20"
    (before,) = accepted_keys(lake, day)
    content = lake.get_bytes(before)
    land_and_crawl(defs, instance, [day], assets=["observations"])
    assert accepted_keys(lake, day) == [before] and lake.get_bytes(before) == content
    victim = sorted((data_dir / "lake" / "use-cases/fish-demo/observations" / f"day={day}").glob("*.json"))[0]
    dropped = json.loads(victim.read_text())["image_id"]
    victim.unlink()
    land_and_crawl(defs, instance, [day], assets=["observations"])
    (after,) = accepted_keys(lake, day)
    assert after != before and catalog.get_table("observations").partitions[day] == lake.uri(after.rsplit("/", 1)[0])
    ids = [json.loads(line)["image_id"] for line in lake.get_bytes(after).decode().splitlines()]
    assert len(ids) == 14 and dropped not in ids and dropped.encode() in content


def _materializations(instance, asset: str, run_id: str) -> dict[str, dict]:
    """Each partition's materialization in the run, as its metadata's plain values."""
    from dagster import AssetKey, DagsterEventType

    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=1000).records
    found = [r.event_log_entry.asset_materialization for r in records]
    return {m.partition: {k: v.value for k, v in m.metadata.items()} for m in found if m.asset_key == AssetKey(asset)}


def test_a_range_lands_and_crawls_in_one_run_each_day_with_its_own_figures(defs, instance, data_dir):
    """A backfill's range is one run (no process and code load per day); each day's materialization
    carries that day's rows, counted here from the lake's files."""
    from zfish_assets.tools.runs import land_and_crawl_range

    days = days_between("2025-05-05", "2025-05-09")  # labels arrive from 05-07: days with and without outcomes
    run = land_and_crawl_range(defs, instance, days[0], days[-1])
    assert run.success and run.checks and all(c.passed for c in run.checks), run.checks
    lake = data_dir / "lake" / "use-cases/fish-demo"
    for table in ("observations", "outcomes"):
        per_day = {d: sum(1 for f in (lake / table / f"day={d}").glob("*.json")
                          for line in f.read_text().splitlines() if line.strip()) for d in days}
        landed = _materializations(instance, f"raw_{table}", run.run_id)
        crawled = _materializations(instance, table, run.run_id)
        assert set(landed) == set(crawled) == set(days)
        assert {d: m["dagster/partition_row_count"] for d, m in landed.items()} == per_day
        assert {d: m["dagster/partition_row_count"] for d, m in crawled.items()} == per_day
        assert sorted(defs.resources["catalog"].partition_parameters(table)) == [d for d in days if per_day[d]]


def test_a_failing_day_of_a_range_names_itself_and_keeps_the_days_before_it(defs, instance, data_dir):
    """The days are independent: a day whose crawl fails (its quarantine ledger cannot be written) fails
    the run naming it, and the days crawled before it are recorded as materialized; a rerun once the
    fault is gone completes the range."""
    from zfish_assets.tools.runs import land_and_crawl_range

    blocked = data_dir / "lake" / "use-cases/fish-demo/quarantine/observations/day=2025-04-07/quarantine.jsonl"
    (blocked / "in-the-way").mkdir(parents=True)  # a folder where the day's ledger must go
    run = land_and_crawl_range(defs, instance, "2025-04-05", "2025-04-09", raise_on_error=False)
    assert not run.success
    assert "day=2025-04-07 failed (3 of 5 days" in _failure_text(instance, run.run_id)
    assert sorted(_materializations(instance, "raw_observations", run.run_id)) == days_between("2025-04-05", "2025-04-09")
    assert sorted(_materializations(instance, "observations", run.run_id)) == ["2025-04-05", "2025-04-06"]
    shutil.rmtree(blocked)
    rerun = land_and_crawl_range(defs, instance, "2025-04-05", "2025-04-09")
    assert rerun.success and sorted(defs.resources["catalog"].partition_parameters("observations")) == \
        days_between("2025-04-05", "2025-04-09")


def _failure_text(instance, run_id: str) -> str:
    """The run's step failure, its whole error chain with notes, as the UI shows it."""
    from dagster import DagsterEventType

    text = []
    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        error = record.dagster_event.step_failure_data.error
        while error is not None:
            text.append(error.to_string())
            error = error.cause
    return "\n".join(text)
