"""The walkthrough's transformation as plain functions of DataFrames: no I/O, no configuration.

observations ─┐
              ├─ left join on fish_id ─ flatten genetic_markers ─ keep labeled rows ─> joined_fish_data
outcomes ─ latest label per fish ─┘
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

MARKERS = "genetic_markers"
LABEL = "condition_developed"


def latest_labels(outcomes: DataFrame) -> DataFrame:
    """One label per fish: the one from the latest day, its day kept as `outcome_day`.

    Several labels for a fish would fan one image out into several rows of the same record key in
    one batch, where Hudi's precombine tie-break is arbitrary; deduplicating first makes the
    result deterministic. A later day's label is a correction and wins; within one day a positive
    label wins (the cautious reading of a conflicting report).
    """
    latest_first = Window.partitionBy("fish_id").orderBy(F.col("day").desc(), F.col(LABEL).desc())
    return (
        outcomes.where(F.col("fish_id").isNotNull() & F.col(LABEL).isNotNull())
        .withColumn("_rank", F.row_number().over(latest_first))
        .where("_rank = 1")
        .select("fish_id", LABEL, F.col("day").alias("outcome_day"))
    )


def _genes(schema: StructType) -> list[str]:
    """The genes of `schema`'s `genetic_markers`, in its order; a TypeError when it is not a struct."""
    markers = schema[MARKERS].dataType
    if not isinstance(markers, StructType):
        raise TypeError(f"{MARKERS} must be a struct, the catalog says {markers.simpleString()}")
    return markers.fieldNames()


def flat_names(schema: StructType) -> list[str]:
    """The columns `flatten_markers` makes of a frame of `schema`: its own but `genetic_markers`, then each gene."""
    return [name for name in schema.names if name != MARKERS] + _genes(schema)


def flatten_markers(df: DataFrame, schema: StructType) -> DataFrame:
    """`genetic_markers.{gene_a,...}` become top-level columns: the keys the data has, in its order.

    `schema` is `df.schema`, asked once by the caller: on Spark Connect every `.schema` or
    `.columns` is a round trip that analyses the whole plan again.
    """
    return df.select(*[F.col(name) for name in schema.names if name != MARKERS],
                     *[F.col(f"{MARKERS}.{gene}").alias(gene) for gene in _genes(schema)])


def with_event_time(df: DataFrame) -> DataFrame:
    """`timestamp` as a real timestamp: Hudi's precombine compares it, so it must order by time."""
    return df.withColumn("timestamp", F.to_timestamp("timestamp"))


def join_labeled(observations: DataFrame, outcomes: DataFrame) -> DataFrame:
    """The rows of `joined_fish_data`: each observation with its fish's latest label, labeled only."""
    labels = latest_labels(outcomes)
    schema = observations.schema
    joined = with_event_time(flatten_markers(observations, schema)).join(labels, on="fish_id", how="left")
    labeled = joined.where(F.col(LABEL).isNotNull())
    leading = ["image_id", "fish_id", "timestamp"]
    trailing = [LABEL, "outcome_day", "day"]
    middle = [c for c in flat_names(schema) if c not in leading + trailing]
    return labeled.select(*leading, *middle, *trailing)


def stale_label_days(stored: DataFrame, outcomes: DataFrame) -> DataFrame:
    """The days (column `day`) of stored rows whose fish's latest label or its day is not the stored one,
    or whose fish has no label any more (withdrawn: a stored row always holds one).

    A correction for a fish imaged on a day the run does not read whole reaches none of its rows
    otherwise; this names the days to redo for it, from the table's own state and the registered labels.
    """
    labels = latest_labels(outcomes).select(
        "fish_id", F.col(LABEL).alias("_latest"), F.col("outcome_day").alias("_latest_day"))
    stale = ~(F.col(LABEL).eqNullSafe(F.col("_latest")) & F.col("outcome_day").eqNullSafe(F.col("_latest_day")))
    return stored.join(labels, on="fish_id", how="left").where(stale).select("day").distinct()


def changed_rows(candidates: DataFrame, stored: DataFrame) -> DataFrame:
    """The candidate rows the table does not hold exactly: new image_ids, or any column different.

    Upserting only these leaves the table as upserting every candidate would (an unchanged row
    rewritten is the same row), while copy-on-write then rewrites only the files they live in.
    A column the table lacks, or holds with another type, changes every row.
    """
    stored_types = {f.name: f.dataType for f in stored.schema}
    schema = candidates.schema  # asked once: on Spark Connect each `.schema`/`.columns` is a round trip
    if any(stored_types.get(f.name) != f.dataType for f in schema):
        return candidates
    same = [F.col(f"c.`{name}`").eqNullSafe(F.col(f"s.`{name}`")) for name in schema.names]
    unchanged = stored.select(*schema.names).alias("s")
    return candidates.alias("c").join(unchanged, on=same, how="left_anti").select(*schema.names)


def deleted_keys(stored: DataFrame, labeled: DataFrame) -> DataFrame:
    """The stored rows (`image_id`, `day`, `timestamp`) that the labeled rows no longer hold.

    `stored` is the table's rows of the days the run read, `labeled` what those days now make: a
    row whose image a re-delivery dropped or quarantined, whose image moved to another day (Hudi's
    index is per partition: the old day's row would stay beside the new one), or whose fish lost
    its last label is in the table and not in the lake's answer. Deleting these makes the days read
    exactly what a fresh build of them gives.
    """
    return stored.select("image_id", "day", "timestamp").join(
        labeled.select("image_id", "day"), on=["image_id", "day"], how="left_anti")
