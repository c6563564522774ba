"""Late labels: the days outside the run's range to redo because a fish's label arrived or changed.

The evening window ([D - horizon + 1, D]) is the scope of everything else; a label, though, may arrive
any time after its fish's images. Which fish can have images lacking their label is known from the label
state (`label_state`): only the fish labeled on an outcome day that is new or changed since the
table's last commit (every labeled fish when the last commit recorded no state). Which days hold
their images comes from the fish index (`fish_index`), not from reading the history. Of those days
the run redoes only the ones where the table does not already hold each of the fish's images with
its latest label (the index counts its images per day; the table's rows of those days are counted,
a few columns of those partitions only). A redone day is read and joined whole, exactly as a day
of the range, so it then holds what a fresh build of it gives.

Days a run must read only to index them (they lack a current entry) are read here first, before the
index is consulted: a missing index is rebuilt by the run that needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_scripts.zfish_etl.catalog import CatalogTable
from glue_scripts.zfish_etl.fish_index import FishIndex, SCHEMA, entries_of
from glue_scripts.zfish_etl.label_state import StaleLabelScan
from glue_scripts.zfish_etl.read import read_days
from glue_scripts.zfish_etl.transform import LABEL, latest_labels


@dataclass(frozen=True)
class LatePlan:
    """The days outside the range a run redoes for late labels, and those it read only to index them."""

    days: list[str]  # hold images of a fish labeled since the last commit that lack its latest label
    indexed: list[str]  # lacked a current index entry: read to index them (entries in `entries`)
    entries: pa.Table  # the index entries of `indexed`


def fish_per_day(observations: DataFrame) -> dict[tuple[str, str], int]:
    """Accepted images per (day, fish) of `observations`, in one Spark action."""
    grouped = observations.where(F.col("fish_id").isNotNull()).groupBy("day", "fish_id").count().collect()
    return {(r["day"], r["fish_id"]): int(r["count"]) for r in grouped}


def index_days(spark: SparkSession, observations: CatalogTable, days: list[str],
               keys: dict[str, str | None]) -> pa.Table:
    """Index entries of `days`, read from the observations (none: no read)."""
    if not days:
        return SCHEMA.empty_table()
    rows = read_days(spark, observations, days)
    try:
        return entries_of(fish_per_day(rows), days, keys)
    finally:
        rows.unpersist()


def lacking_days(spark: SparkSession, wanted: pa.Table, outcomes: DataFrame, stored: DataFrame | None) -> list[str]:
    """The days of `wanted` (index entries) where the table does not hold each image of a labeled fish
    with its latest label and label day: fewer or more rows of that fish there, or another label.
    No table yet (`stored` None): every day of `wanted` holding a labeled fish."""
    if not wanted.num_rows:
        return []
    days = sorted(set(wanted["day"].to_pylist()))
    entries = spark.createDataFrame(
        list(zip(wanted["fish_id"].to_pylist(), wanted["day"].to_pylist(), wanted["images"].to_pylist())),
        "fish_id string, day string, images long")
    labels = latest_labels(outcomes).select("fish_id", F.col(LABEL).alias("_label"), F.col("outcome_day").alias("_on"))
    if stored is None:
        return sorted(r["day"] for r in entries.join(labels.select("fish_id"), "fish_id").select("day").distinct().collect())
    held = (stored.where(F.col("day").isin(days)).join(labels, "fish_id")
            .where(F.col(LABEL).eqNullSafe(F.col("_label")) & F.col("outcome_day").eqNullSafe(F.col("_on")))
            .groupBy("fish_id", "day").agg(F.count(F.lit(1)).alias("_held")))
    lacking = (entries.join(labels.select("fish_id"), "fish_id").join(held, ["fish_id", "day"], "left")
               .where(F.col("_held").isNull() | (F.col("_held") != F.col("images"))).select("day").distinct())
    return sorted(r["day"] for r in lacking.collect())


def plan_late_labels(spark: SparkSession, news: list[str], window: list[str], observations: CatalogTable,
                     outcomes: DataFrame, stored: DataFrame | None, scan: StaleLabelScan, index: FishIndex,
                     keys: dict[str, str | None]) -> LatePlan:
    """The days besides `news` (the range's days read whole) to redo for fish labeled since the last
    commit, from the index (first completed by reading the days outside the range it lacks).

    Of the `window`'s own days, each holding an image of such a fish is redone: an evening's new
    labels are for images of its window, and asking the table first would cost a Spark action to
    spare a day the window's reading would have cost anyway. Beyond the window, only the days that
    lack the label (`lacking_days`): a re-delivered outcome day relabels all its fish, most of them
    already placed on their older days."""
    outside = sorted(set(observations.partitions) - set(news))
    known = index.indexed_days(keys)
    missing = [d for d in outside if keys[d] is not None and d not in known]
    fresh = index_days(spark, observations, missing, keys)
    fish = scan.relabeled  # None: no state, so every fish
    if fish == set():
        return LatePlan([], missing, fresh)
    entries = pa.concat_tables([index.current(keys), fresh])
    wanted = entries.filter(pc.is_in(entries["day"], pa.array(outside, pa.string())))
    if fish is not None:
        wanted = wanted.filter(pc.fill_null(pc.is_in(wanted["fish_id"], pa.array(sorted(fish), pa.string())), False))
    in_window = pc.is_in(wanted["day"], pa.array(window, pa.string()))
    quiet = set(wanted.filter(in_window)["day"].to_pylist())
    beyond = lacking_days(spark, wanted.filter(pc.invert(in_window)), outcomes, stored)
    unknown = [d for d in outside if keys[d] is None]  # never indexed: may hold any fish
    return LatePlan(sorted(quiet | set(beyond) | set(unknown)), missing, fresh)
