"""What the job asks of its Spark session, in the API classic Spark (Glue) and Spark Connect share.

The same job runs in Glue's own session and, locally, as a client of a warm Spark Connect server.
Spark 3.5's Connect has no `sparkContext` (so no RDDs, no `defaultParallelism`, no JVM gateway)
and no `localCheckpoint`; the job keeps to DataFrames, the session's conf, and `persist`.
"""

from __future__ import annotations

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

# Spilled to disk rather than dropped under memory pressure: a persisted frame is then computed
# once, which the job relies on where recomputing would see files its own upsert replaced.
KEPT = StorageLevel.MEMORY_AND_DISK


def parallelism(spark: SparkSession) -> int:
    """The tasks a stage should have: `spark.default.parallelism` (set for local sessions), else
    `spark.sql.shuffle.partitions` (what a session without it shuffles into)."""
    value = spark.conf.get("spark.default.parallelism", None) or spark.conf.get("spark.sql.shuffle.partitions")
    return max(1, int(value))


def materialized(df: DataFrame) -> DataFrame:
    """`df` persisted and computed now (the caller unpersists it): the lineage is evaluated once."""
    kept = df.persist(KEPT)
    kept.count()
    return kept


def executors_are_local(spark: SparkSession) -> bool:
    """Whether the executors are processes of this machine (a `local[N]` master), started with the
    environment of the first run that started the session (see `aws.ClientSettings`)."""
    return spark.conf.get("spark.master", "").startswith("local")
