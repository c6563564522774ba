"""Checks read the days of their run: damage outside them is reported by the checks of every day only.

`unique_image_id` is the exception on purpose: a run's image_ids are checked against every day.
"""

from __future__ import annotations

import json

from dagster import AssetCheckEvaluation, AssetKey, AssetSelection, materialize

from zfish_assets.backends.hudi_reader import read_hudi_snapshot
from zfish_assets.tools.runs import join_range
from zfish_assets.dagster_names import META_COLUMNS, RANGE_END, RANGE_START

START = "2025-04-05"


def checks(defs, instance, asset: str, first: str | None = None, last: str | None = None) -> dict[str, AssetCheckEvaluation]:
    """The checks of `asset` on their own: over the days first..last, as a range run tags them, or every day."""
    result = materialize(
        [*defs.assets, *defs.asset_checks], selection=AssetSelection.checks_for_assets(AssetKey(asset)),
        resources=defs.resources, instance=instance, raise_on_error=False,
        tags={RANGE_START: first, RANGE_END: last} if first else {},
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def failed(evaluations: dict[str, AssetCheckEvaluation]) -> dict[str, str]:
    return {name: e.description for name, e in evaluations.items() if not e.passed}


def recrawl(defs, table: str, day: str) -> None:
    """The day crawled again, without its checks (as the lake sensor's run does on seeing its files change)."""
    from zfish_assets.domain.crawl import crawl_day

    crawl_day(defs.resources["lake"], defs.resources["catalog"], table, day)


def test_a_crawled_table_check_reads_the_runs_days_only(walkthrough, defs, instance, data_dir):
    next((data_dir / "lake" / "use-cases/fish-demo/observations/day=2025-04-20").glob("*.json")).unlink()
    changed = "day=2025-04-20: 14 files"  # queries still read the day as crawled: the files changed since

    evening = checks(defs, instance, "observations", "2025-05-10", "2025-05-10")
    assert failed(evening) == {}
    assert evening["rows_match_landed"].metadata["days_checked"].value == 1
    assert evening["rows_match_landed"].metadata["rows_counted"].value == 15
    assert evening["partitions_match_lake"].metadata["days_checked"].value == 1

    around = checks(defs, instance, "observations", "2025-04-19", "2025-04-21")
    assert changed in failed(around)["partitions_match_lake"]
    assert around["partitions_match_lake"].metadata["days_checked"].value == 3

    every_day = checks(defs, instance, "observations")
    assert changed in failed(every_day)["partitions_match_lake"]
    assert every_day["partitions_match_lake"].metadata["days_checked"].value == 36

    # Crawled again, queries read its 14 rows, as the crawl recorded (no landing ran in this instance).
    recrawl(defs, "observations", "2025-04-20")
    assert failed(checks(defs, instance, "observations", "2025-04-19", "2025-04-21")) == {}

    # A day no JSON reader can parse is no concern of a run that does not include it: it is not even listed.
    next((data_dir / "lake" / "use-cases/fish-demo/observations/day=2025-04-25").glob("*.json")).write_text("{oops\n")
    assert failed(checks(defs, instance, "observations", "2025-05-10", "2025-05-10")) == {}
    assert failed(checks(defs, instance, "observations", "2025-04-19", "2025-04-21")) == {}
    assert "day=2025-04-25" in failed(checks(defs, instance, "observations", "2025-04-25", "2025-04-25"))[
        "partitions_match_lake"]


def table_uri(defs) -> str:
    return defs.resources["hudi_io_manager"].table_uri("joined_fish_data")


def write_duplicate(spark, defs, image_id: str, day: str) -> None:
    """A second row for `image_id` in partition `day`: what Hudi's per-partition keys let through."""
    from pyspark.sql import functions as F

    from glue_scripts.zfish_etl.hudi import hudi_options

    row = (spark.read.format("hudi").load(table_uri(defs)).where(F.col("image_id") == image_id)
           .drop(*META_COLUMNS).withColumn("day", F.lit(day)))
    options = hudi_options("joined_fish_data", defs.resources["catalog"].database, 1)
    row.write.format("hudi").options(**options).mode("append").save(table_uri(defs))


def test_joined_checks_read_the_runs_days_and_check_its_image_ids_against_every_day(
        walkthrough, defs, instance, data_dir, spark):
    assert join_range(defs, instance, START, "2025-05-10").success  # 15 labeled rows on each of 04-05..04-08
    lake = data_dir / "lake" / "use-cases/fish-demo"
    # Damage on 2025-04-05, outside the run of 04-07..04-08: an observation gone, a fish's label flipped later.
    next((lake / "observations/day=2025-04-05").glob("*.json")).unlink()
    first_day = read_hudi_snapshot(table_uri(defs), {}, days=["2025-04-05"]).to_pylist()
    fish = first_day[0]
    with open(lake / "outcomes/day=2025-05-10/outcomes-2025-05-10.json", "a") as f:
        f.write(json.dumps({"fish_id": fish["fish_id"], "condition_developed": not fish["condition_developed"]}) + "\n")
    recrawl(defs, "observations", "2025-04-05")
    recrawl(defs, "outcomes", "2025-05-10")

    evening = checks(defs, instance, "joined_fish_data", "2025-04-07", "2025-04-08")
    assert failed(evening) == {}
    # The job kept a key digest of each day it wrote: the run's image_ids were compared through them alone.
    compared = evening["unique_image_id"].metadata
    assert (compared["key_digest_days"].value, compared["days_without_key_digest"].value) == (4, [])
    every_day = failed(checks(defs, instance, "joined_fish_data"))
    assert set(every_day) == {"labeled_rows", "labels_are_latest"}
    assert every_day["labeled_rows"] == "days differ (expected vs actual): 2025-04-05: 14 vs 15"
    assert every_day["labels_are_latest"].startswith("3 rows with a null or stale label")

    # An image of 2025-04-05 (outside the run; its fish's label unchanged) written again on 2025-04-08 (inside it).
    image = next(r["image_id"] for r in first_day if r["fish_id"] != fish["fish_id"])
    write_duplicate(spark, defs, image, "2025-04-08")
    evening = checks(defs, instance, "joined_fish_data", "2025-04-07", "2025-04-08")
    assert failed(evening) == {
        "labeled_rows": "days differ (expected vs actual): 2025-04-08: 15 vs 16",
        "unique_image_id": f"duplicated image_id: {image} x2",
    }
    # That writer kept no digest: 2025-04-08's keys came from the table; both days of the image were counted.
    compared = evening["unique_image_id"].metadata
    assert compared["days_without_key_digest"].value == ["2025-04-08"]
    assert compared["days_counted"].value == ["2025-04-05", "2025-04-08"]
    assert "unique_image_id" not in failed(checks(defs, instance, "joined_fish_data", "2025-04-06", "2025-04-07"))
    assert failed(checks(defs, instance, "joined_fish_data"))["unique_image_id"] == f"duplicated image_id: {image} x2"
