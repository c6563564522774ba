"""Warming a new warm engine: two small evenings of the job's own steps, run once when the server starts.

A new Spark Connect server is a long-lived JVM, but at first as cold as a run's own: its first Hudi
commit and delete, its first read of a Hudi table and its first plan of each shape pay class
loading, code generation and the JIT. On a server warmed only by a backfill (a first write, no
incremental step), the first incremental evening's join took 16.4 s and the third 7.7 s (same
load, docs/performance.md). So `connect_server.start` runs the job's incremental steps once, on a
throwaway table of a few rows in the engine's folder: a first commit, then an evening that
changes a label, adds an image and loses one: the label state's query, the stale-label scan, the
one counting action, an upsert, a delete and the key digests, as `joined_fish_data.run` makes them.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

TABLE = "zfish_warm_up"
_OBSERVATIONS = "image_id string, fish_id string, timestamp string, genetic_markers struct<gene_a:string>, day string"
_OUTCOMES = "fish_id string, condition_developed boolean, day string"
_EVENINGS = (
    ([("w1", "f1", "2025-01-01T10:00:00Z", ("AA",), "2025-01-01"),
      ("w2", "f2", "2025-01-01T11:00:00Z", ("AG",), "2025-01-01")],
     [("f1", False, "2025-01-02"), ("f2", True, "2025-01-02")]),
    ([("w1", "f1", "2025-01-01T10:00:00Z", ("AA",), "2025-01-01"),  # w2 gone, w3 new, f1 relabeled
      ("w3", "f1", "2025-01-02T10:00:00Z", ("AA",), "2025-01-02")],
     [("f1", False, "2025-01-02"), ("f2", True, "2025-01-02"), ("f1", True, "2025-01-03")]),
)


def warm_up(url: str, folder: Path) -> float:
    """Run the two evenings on the server at `url` in a session of their own, in `folder` (removed
    afterwards); the seconds they took."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from glue_scripts.joined_fish_data import count_run
    from glue_scripts.zfish_etl.hudi import delete, read_table, upsert
    from glue_scripts.zfish_etl.label_state import outcome_days
    from glue_scripts.zfish_etl.session import KEPT, release
    from glue_scripts.zfish_etl.table_keys import write_table_keys
    from glue_scripts.zfish_etl.transform import changed_rows, deleted_keys, join_labeled, stale_label_days

    began = time.perf_counter()
    table = str(folder / TABLE)
    spark = SparkSession.builder.remote(url).create()
    try:
        for observation_rows, outcome_rows in _EVENINGS:
            observations = spark.createDataFrame(observation_rows, _OBSERVATIONS).persist(KEPT)
            outcomes = spark.createDataFrame(outcome_rows, _OUTCOMES).persist(KEPT)
            stored = read_table(spark, table)
            outcome_days(outcomes, {} if stored is not None else None)
            if stored is not None:
                stale_label_days(stored.where(F.col("day") < "2025-01-02"), outcomes).collect()
            labeled = join_labeled(observations, outcomes).persist(KEPT)
            to_write = labeled if stored is None else changed_rows(labeled, stored).persist(KEPT)
            gone = deleted_keys(stored, labeled).persist(KEPT) if stored is not None else None
            counts = count_run(observations, labeled, to_write, gone)
            if counts.to_write:
                upsert(to_write, table, TABLE, "default")
            if counts.to_delete:
                delete(gone, table, TABLE, "default")
            write_table_keys(spark, table, counts.rows_per_day())
            release((gone, to_write, labeled, observations, outcomes))
    finally:
        spark.stop()
        shutil.rmtree(folder, ignore_errors=True)  # the table and its key digests beside it
    return time.perf_counter() - began
