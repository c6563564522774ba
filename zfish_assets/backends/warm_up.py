"""Warming a JVM with two small evenings of the job's own steps: a new warm engine's, once when the
server starts, and the one that makes Spark's class archive (`class_archive.py`; `main`).

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

import os
import shutil
import subprocess
import sys
import tempfile
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

    began = time.perf_counter()
    spark = SparkSession.builder.remote(url).create()
    try:
        run_evenings(spark, folder)
    finally:
        spark.stop()
    return time.perf_counter() - began


def run_evenings(spark, folder: Path) -> None:
    """The two evenings' steps on `spark` (a Connect client, or a run's own session: `class_archive.py`),
    on a table in `folder`, removed afterwards."""
    from pyspark.sql import functions as F

    from glue_scripts.joined_fish_data import count_run
    from glue_scripts.zfish_etl.hudi import delete, read_table, upsert
    from glue_scripts.zfish_etl.label_state import outcome_days
    from glue_scripts.zfish_etl.session import KEPT, release
    from glue_scripts.zfish_etl.table_keys import write_table_keys
    from glue_scripts.zfish_etl.transform import changed_rows, deleted_keys, join_labeled, stale_label_days

    table = str(folder / TABLE)
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
        shutil.rmtree(folder, ignore_errors=True)  # the table and its key digests beside it


def make_archive(timeout_s: float = 600) -> Path | None:
    """The archive for this machine's Spark settings, made if missing (a JVM running `run_evenings`,
    in a process of its own: the JVM writes the archive as it exits). None when Spark cannot start."""
    from zfish_assets.backends.class_archive import archive_path
    from zfish_assets.backends.spark_session import SparkSettings, jdk_tool

    spark_settings = SparkSettings.from_env()
    java = jdk_tool("java")
    if java is None:
        return None
    target = archive_path(java, spark_settings.jars_dir)
    if target.is_file():
        return target
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    subprocess.run([sys.executable, "-m", "zfish_assets.backends.warm_up", "--dump", str(partial)], check=True, timeout=timeout_s)
    partial.replace(target)  # whole or not at all: a reader never maps a half-written archive
    return target


def _dump(partial: Path) -> None:
    """In a process of its own: a session whose JVM archives its classes into `partial` at exit, the two
    evenings on it, then the JVM stopped and waited for (it writes the archive as it exits)."""
    from zfish_assets.backends.spark_session import SparkSettings, get_spark_session

    spark = get_spark_session(SparkSettings(master="local[2]", archive_classes_to=partial))
    run_evenings(spark, Path(tempfile.mkdtemp(prefix="zfish-classes-")))
    gateway = spark.sparkContext._gateway
    spark.stop()
    gateway.proc.stdin.close()  # PySpark's gateway JVM exits when its stdin closes
    gateway.proc.wait()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--dump"]:
        _dump(Path(argv[1]))
        return
    try:
        made = make_archive()
    except (subprocess.SubprocessError, OSError) as exc:  # an archive only speeds a start: never blocks one
        print(f"Spark's class archive not made ({exc}): sessions start without it", file=sys.stderr)
        return
    print(f"Spark's class archive: {made}" if made else "Spark's class archive: no Java, none made")


if __name__ == "__main__":
    main()
