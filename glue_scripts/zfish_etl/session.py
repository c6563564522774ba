"""What the job asks of its Spark session, in the API classic Spark (Glue) and Spark Connect share.

The same job runs in Glue's own session and, locally, as a client of a warm Spark Connect server.
Spark 3.5's Connect has no `sparkContext` (so no RDDs, no `defaultParallelism`, no JVM gateway)
and no `localCheckpoint`; the job keeps to DataFrames, the session's conf, and `persist`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

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


def release(frames: Iterable[DataFrame | None]) -> None:
    """Unpersist the persisted `frames` (None skipped), all at once.

    On Spark Connect each `unpersist` is a round trip in which the server analyses the frame's whole
    plan again to find its cache entry (a frame over the stored table re-resolves its Hudi relation):
    0.9-1.5 s for an evening's five one after another, so they are sent together. On classic Spark
    an unpersist is a local call and this costs nothing more.
    """
    kept = [frame for frame in frames if frame is not None]
    with ThreadPoolExecutor(max_workers=max(1, len(kept))) as pool:
        list(pool.map(lambda frame: frame.unpersist(), kept))


@contextmanager
def releasing(frames: Iterable[DataFrame | None]) -> Iterator[None]:
    """`release` the `frames` while the block runs, and wait for it when the block ends, raised or not.

    What a run does after its last use of its persisted frames (the key digests' Spark write, the
    fish index) does not depend on them, so on Spark Connect the unpersist round trips (0.3-0.6 s
    for an evening's five, the server analysing each frame's plan again) overlap that work instead
    of preceding it. Waiting at the end keeps the release inside the run: no cached frame outlives it
    on a long-lived server, and a failed unpersist still fails the run.
    """
    pool = ThreadPoolExecutor(max_workers=1)
    pending = pool.submit(release, list(frames))
    try:
        yield
    finally:
        wait([pending])
        pool.shutdown()
    pending.result()


def executors_are_local(spark: SparkSession) -> bool:
    """Whether the executors are processes of this machine (a `local[N]` master), started with the
    environment of the first run that started the session (see `aws.ClientSettings`)."""
    return spark.conf.get("spark.master", "").startswith("local")
