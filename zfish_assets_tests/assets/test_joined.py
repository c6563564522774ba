"""joined_fish_data: the walkthrough's 60 → 75, reruns, daily evenings vs one backfill, corrections."""

from __future__ import annotations

import json
import os

import pytest

from zfish_assets.definitions import build_definitions
from zfish_assets.partitions import days_between
from zfish_assets.tools.runs import join_range, land_and_crawl, land_and_crawl_range
from zfish_assets_tests.support.walkthrough import START, evening_window, expected_rows, rows, snapshot, table_uri
from zfish_assets.backends.hudi_reader import completed_commits

pytestmark = pytest.mark.long_module  # minutes of work: scheduled first (conftest)


def test_walkthrough_60_then_75_and_rerun_is_idempotent(walkthrough, defs, instance, data_dir):
    first = join_range(defs, instance, START, "2025-05-10")
    assert first.success and first.checks and all(c.passed for c in first.checks), first.checks
    assert len(rows(defs)) == 60
    first_commit = completed_commits(table_uri(defs), {})[-1]

    crawled = land_and_crawl(defs, instance, ["2025-05-11"])
    second = join_range(defs, instance, *evening_window("2025-05-11"))
    assert second.success and all(c.passed for c in second.checks), second.checks
    # The runs show in the UI under the project's jobs, not as ad-hoc materializations.
    assert [instance.get_run_by_id(r.run_id).job_name for r in (*crawled, second)] == ["land_and_crawl", "join_window"]
    assert rows(defs) == expected_rows(data_dir) and len(rows(defs)) == 75
    # Spark reads what hudi-rs reads; time travel to the first evening gives its 60 rows.
    assert len(snapshot(defs, as_of=first_commit)) == 60
    commits = completed_commits(table_uri(defs), {})

    rerun = join_range(defs, instance, *evening_window("2025-05-11"))
    assert rerun.success and all(c.passed for c in rerun.checks)
    assert len(rows(defs)) == 75
    assert completed_commits(table_uri(defs), {}) == commits  # no news: the incremental join commits nothing

    materializations = instance.fetch_materializations(
        __import__("dagster").AssetKey("joined_fish_data"), limit=100
    ).records
    latest = {r.partition_key: r.asset_materialization.metadata for r in reversed(materializations)}
    # Dagster's conventions: each day's rows, the whole table's on the materialization the overview shows
    # (the window's last day), columns described by the contract; run-wide figures recorded there only.
    expected = expected_rows(data_dir)
    assert latest["2025-04-08"]["dagster/partition_row_count"].value == 15
    assert latest["2025-04-10"]["dagster/partition_row_count"].value == 0
    last = latest["2025-05-11"]
    assert last["dagster/row_count"].value == len(expected) == 75
    assert last["dagster/table_name"].value == "zebra_fish_demo.joined_fish_data"
    assert last["dagster/uri"].value == table_uri(defs)
    assert "dagster/row_count" not in latest["2025-04-08"] and "window" not in latest["2025-04-08"]
    columns = {c.name: c.description for c in last["dagster/column_schema"].value.columns}
    assert columns["gene_a"] and columns["condition_developed"] and all(columns.values()), columns
    assert last["commit_instant"].value == "" and last["latest_commit"].value == commits[-1]


def test_spark_reads_the_same_rows_as_hudi_rs(spark, defs, instance):
    land_and_crawl(defs, instance, days_between("2025-05-06", "2025-05-08"))
    land_and_crawl(defs, instance, days_between(START, "2025-04-06"), assets=["raw_observations", "observations"])
    assert join_range(defs, instance, START, "2025-05-08").success
    by_spark = {r["image_id"]: r["condition_developed"]
                for r in spark.read.format("hudi").load(table_uri(defs)).collect()}
    assert by_spark == {k: v[0] for k, v in rows(defs).items()} and len(by_spark) == 30


def test_daily_evenings_equal_one_backfill(defs, instance, data_dir, tmp_path, monkeypatch):
    for day in days_between(START, "2025-05-11"):
        land_and_crawl(defs, instance, [day])
        assert join_range(defs, instance, *evening_window(day)).success
    daily = rows(defs)
    assert daily == expected_rows(data_dir) and len(daily) == 75

    # The same lake, a fresh table: one backfill over every day.
    monkeypatch.setenv("ZFISH_DATA_DIR", str(tmp_path / "backfill"))
    backfill_defs = build_definitions()
    assert land_and_crawl_range(backfill_defs, instance, START, "2025-05-11").success  # one run, as a backfill
    assert join_range(backfill_defs, instance, START, "2025-05-11").success
    assert rows(backfill_defs) == daily


def test_a_corrected_label_replaces_the_old_one_in_all_rows(walkthrough, defs, instance, data_dir):
    assert join_range(defs, instance, START, "2025-05-10").success
    before = rows(defs)
    fish_rows = [r for r in snapshot(defs).to_pylist() if r["fish_id"] == "zfish_00005"]
    assert len(fish_rows) == 3
    old_label = fish_rows[0]["condition_developed"]

    land_and_crawl(defs, instance, ["2025-05-11"], assets=["raw_observations"])
    # The lab uploads 2025-05-11's labels itself, with a correction for a fish imaged on 2025-04-06
    # (inside the evening window) and labeled on 2025-05-08.
    correction = json.dumps({"fish_id": "zfish_00005", "condition_developed": not old_label})

    def upload(folder):
        defs.resources["simulator"].write_day("outcomes", "2025-05-11", folder)
        with open(next(folder.glob("*.json")), "a") as f:
            f.write(correction + "\n")

    defs.resources["lake"].land_day("outcomes", "2025-05-11", upload)
    land_and_crawl(defs, instance, ["2025-05-11"], assets=["observations", "outcomes"])
    run = join_range(defs, instance, *evening_window("2025-05-11"))
    assert run.success and all(c.passed for c in run.checks)

    after = rows(defs)
    assert len(after) == 75
    fixed = [r for r in snapshot(defs).to_pylist() if r["fish_id"] == "zfish_00005"]
    assert len(fixed) == 3 and {r["condition_developed"] for r in fixed} == {not old_label}
    assert {r["outcome_day"] for r in fixed} == {"2025-05-11"}
    unchanged = {k: v for k, v in before.items() if k not in {r["image_id"] for r in fixed}}
    assert all(after[k] == v for k, v in unchanged.items())


@pytest.fixture(params=["incremental", "full"])
def late_labels(request, monkeypatch, data_dir):
    """Labels 37 days late, one more than the 36-day evening window; the clock at 2025-05-12; each join mode."""
    monkeypatch.setenv("ZFISH_LABEL_DELAY_DAYS", "37")
    monkeypatch.setenv("ZFISH_CLOCK", "2025-05-12T18:00:00Z")
    monkeypatch.setenv("ZFISH_JOIN_MODE", request.param)
    return build_definitions()


def test_labels_later_than_the_window_reach_their_images_or_fail_the_labeled_rows_check(late_labels, instance):
    """The first evening of the table: incremental places the 37-day-late label on its images before the
    window (every check passes, the weekly one too); `full` places no late label, and the weekly run of
    every check over every day names the day its evening's checks, covering the window, cannot see."""
    defs = late_labels
    assert land_and_crawl_range(defs, instance, START, "2025-05-12").success
    run = join_range(defs, instance, *evening_window("2025-05-12"), raise_on_error=False)
    assert run.success and all(c.passed for c in run.checks), run.checks
    weekly = defs.resolve_job_def("all_days_checks").execute_in_process(instance=instance, raise_on_error=False)
    checks = {(e.asset_key.path[-1], e.check_name): e for e in weekly.get_asset_check_evaluations()}
    assert {asset for asset, _ in checks} == {"observations", "outcomes", "joined_fish_data"}
    if os.environ["ZFISH_JOIN_MODE"] == "incremental":
        assert all(e.passed for e in checks.values()), checks
        return
    assert [name for (_, name), e in checks.items() if not e.passed] == ["labeled_rows"]
    assert checks["joined_fish_data", "labeled_rows"].description == \
        "days differ (expected vs actual): 2025-04-05: 15 vs 0"
