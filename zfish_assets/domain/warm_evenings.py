"""Warming a JVM with evenings of the job itself on a throwaway lake: a new warm engine's, once when the
server starts, and the one that makes Spark's class archive (`backends/class_archive.py`; `main`).

A new Spark Connect server is a long-lived JVM, but at first as cold as a run's own: its first Hudi
commit and delete, its first read of a Hudi table and its first plan of each shape pay class
loading, code generation and the JIT. On a server warmed only by a backfill, the first incremental
evening's join took 16.4 s and the third 7.7 s (same load, docs/performance.md). So a new server
runs the job (`joined_fish_data.run`, what a run calls) on a lake of a few simulated fish in a folder
of its own, landed and crawled by the crawl's own code: a backfill, then evenings that each bring a
new day, a label for an older day's fish that flips it and an image withdrawn from an older day,
so that the read plan of the days with news, the late-label plan, the counts, an upsert, a delete,
the label state and the key digests each run as a run makes them. Being the job itself, the
warm-up cannot drift from what runs do, as a copy of its steps did.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from glue_scripts.zfish_etl import layout
from zfish_assets.domain.crawl import crawl_day
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.lake import LocalLake
from zfish_assets.synthetic import SimSettings, generate

DATABASE = "zfish_warm_up"
TABLE = "joined_fish_data"
SIM = SimSettings(start=date(2025, 1, 1), fish_per_day=3, images_per_fish=2, label_delay_days=1, seed=7)
BACKFILL_DAYS = 3
EVENINGS = 2
"""Two evenings: the plans of the second are those a server's first real evening finds compiled."""


def warm_up(url: str, folder: Path) -> float:
    """Run the evenings on the server at `url` in a session of their own, in `folder` (removed
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
    """The backfill and the evenings on `spark` (a Connect client, or a run's own session), on a lake and
    catalog in `folder`, removed afterwards."""
    folder = Path(folder)
    lake = LocalLake(root=str(folder / "lake"))
    catalog = LocalCatalog(root=str(folder / "catalog"), database=DATABASE)
    days = [SIM.start + timedelta(days=n) for n in range(BACKFILL_DAYS + EVENINGS)]
    try:
        _land(lake, catalog, days[0], days[BACKFILL_DAYS - 1])
        _join(spark, lake, catalog, days[0], days[BACKFILL_DAYS - 1])
        for n, today in enumerate(days[BACKFILL_DAYS:]):
            _land(lake, catalog, today, today)
            _relabel_and_withdraw(lake, catalog, days[n], today)
            _join(spark, lake, catalog, days[0], today)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _land(lake: LocalLake, catalog: LocalCatalog, first: date, last: date) -> None:
    """The simulator's days [first, last] written into the lake, each crawled (both tables)."""
    generate(SIM, _table_root(lake), first, last, workers=1)
    for offset in range((last - first).days + 1):
        for table in ("observations", "outcomes"):
            crawl_day(lake, catalog, table, (first + timedelta(days=offset)).isoformat())


def _relabel_and_withdraw(lake: LocalLake, catalog: LocalCatalog, older: date, today: date) -> None:
    """A label delivered `today` that flips a fish of `older` (whose images are redone), and one of
    `older`'s images withdrawn (its row deleted); both days crawled again."""
    images = sorted(Path(lake.local_day_dir("observations", older.isoformat())).glob("*.json"))
    fish = json.loads(images[0].read_text())["fish_id"]
    labels = Path(lake.local_day_dir("outcomes", today.isoformat()))
    labels.mkdir(parents=True, exist_ok=True)
    (labels / "relabel.json").write_text(json.dumps({"fish_id": fish, "condition_developed": True}) + "\n")
    images[-1].unlink()
    crawl_day(lake, catalog, "observations", older.isoformat())
    crawl_day(lake, catalog, "outcomes", today.isoformat())


def _table_root(lake: LocalLake) -> Path:
    """The folder holding the lake's table folders (`<root>/<prefix>`), where the simulator writes."""
    return Path(lake.local_day_dir("observations", SIM.start.isoformat())).parent.parent


def _join(spark, lake: LocalLake, catalog: LocalCatalog, first: date, last: date) -> None:
    from glue_scripts.joined_fish_data import JobArgs, run

    run(spark, JobArgs(first_day=first.isoformat(), last_day=last.isoformat(), database=catalog.database,
                       observations_table="observations", outcomes_table="outcomes",
                       target_path=lake.spark_uri(layout.processed(TABLE)), target_table=TABLE,
                       **catalog.job_arguments()), log=lambda line: None)


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
    # The module's own name (`python -m` runs it as `__main__`, a name no child could import)
    subprocess.run([sys.executable, "-m", __spec__.name, "--dump", str(partial)], check=True, timeout=timeout_s)
    partial.replace(target)  # whole or not at all: a reader never maps a half-written archive
    return target


def _dump(partial: Path) -> None:
    """In a process of its own: a session whose JVM archives its classes into `partial` at exit, the
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
