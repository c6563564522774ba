"""Driving the pipeline for the benchmarks: the project's definitions, its jobs and assets run in process,
the seeded history, one evening timed phase by phase, the engine's floor, and Spark's and Hudi's own figures.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from harness import SIM_START, Phases, day
from zfish_assets.dagster_names import JOIN_JOB, LAND_AND_CRAWL_JOB, RANGE_END, RANGE_START

def definitions() -> Any:
    """The project's Definitions under the current environment (import deferred until it is set)."""
    import warnings

    warnings.filterwarnings("ignore")
    from zfish_assets.definitions import build_definitions

    return build_definitions()


def materialize_assets(defs: Any, instance: Any, assets: Sequence[str], partition: str | None = None,
                       first: str | None = None, last: str | None = None) -> None:
    """Materialize `assets` (one partition, or a range as a single-run backfill) without their checks.

    Checks run in their own timed phase, so the asset phases measure the assets alone.
    """
    from dagster import AssetKey, AssetSelection, materialize

    tags = {RANGE_START: first, RANGE_END: last} if first and last else {}
    result = materialize(
        [*defs.assets, *defs.asset_checks],
        selection=AssetSelection.assets(*[AssetKey(a) for a in assets]).without_checks(),
        partition_key=partition, resources=defs.resources, instance=instance, tags=tags,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    if not result.success:
        raise RuntimeError(f"materializing {assets} ({partition or f'{first}..{last}'}) failed")


def run_checks(defs: Any, instance: Any, assets: Sequence[str], partition: str | None = None,
               first: str | None = None, last: str | None = None) -> int:
    """The checks of `assets`, scoped as in the run of `partition` or of the range `first..last`.

    The partition or range goes in as the run tags the checks read: a checks-only selection has
    no partitions definition to take a partition key. Fails unless every check passes.
    """
    from dagster import AssetKey, AssetSelection, materialize

    tags = {"dagster/partition": partition} if partition else {RANGE_START: first, RANGE_END: last} if first else {}
    result = materialize(
        [*defs.assets, *defs.asset_checks],
        selection=AssetSelection.checks_for_assets(*[AssetKey(a) for a in assets]),
        tags=tags,
        resources=defs.resources, instance=instance, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    evaluations = result.get_asset_check_evaluations()
    failed = [f"{e.check_name}: {e.description}" for e in evaluations if not e.passed]
    if failed or not result.success:
        raise RuntimeError(f"checks of {assets} failed: {failed or 'the run failed'}")
    return len(evaluations)


def land_and_crawl_directly(first: int, last: int) -> dict[str, int]:
    """Seed history: the simulator writes days [first, last] into the lake, each day is crawled.

    Not through Dagster runs (two runs a day would make 400 days of history take an hour); the
    same simulator and crawl code the assets call, so the lake and catalog are the assets' own.
    """
    from zfish_assets.domain.crawl import crawl_day
    from zfish_assets.synthetic import SimSettings, generate

    defs = definitions()
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    root = Path(lake.local_day_dir("observations", day(first))).parent.parent
    summary = generate(SimSettings.from_env(), root, SIM_START + timedelta(days=first),
                       SIM_START + timedelta(days=last))
    for offset in range(first, last + 1):
        for table in ("observations", "outcomes"):
            crawl_day(lake, catalog, table, day(offset))
    return {"observations": summary["observations"], "outcomes": summary["outcomes"], "files": summary["files"]}


def seed_history(first: int, last: int) -> dict[str, int]:
    """Days [first, last] landed and crawled, and joined_fish_data backfilled over them in one run."""
    from dagster import DagsterInstance

    os.environ["ZFISH_CLOCK"] = f"{day(last)}T18:00:00Z"
    counts = land_and_crawl_directly(first, last)
    defs = definitions()
    with DagsterInstance.ephemeral() as instance:
        materialize_assets(defs, instance, ["joined_fish_data"], first=day(first), last=day(last))
    return counts


LAND_PHASE = "land, crawl and their checks"
JOIN_PHASE = "join+upsert and its checks"


def run_job(defs: Any, instance: Any, job: str, partition: str | None = None,
            first: str | None = None, last: str | None = None) -> dict[str, Any]:
    """One run of the project's job `job`, as the schedule and sensors launch it: its assets and their checks.

    Fails unless the run succeeds and every check passes. Returns the checks' count and each step's
    seconds (from its start to its end event in the run's event log), so a phase can be broken down.
    """
    tags = {RANGE_START: first, RANGE_END: last} if first and last else {}
    result = defs.get_job_def(job).execute_in_process(
        partition_key=partition, tags=tags, instance=instance, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    evaluations = result.get_asset_check_evaluations()
    failed = [f"{e.check_name}: {e.description}" for e in evaluations if not e.passed]
    if failed or not result.success:
        raise RuntimeError(f"the {job} run ({partition or f'{first}..{last}'}) failed: {failed or 'see its events'}")
    return {"checks": len(evaluations), "steps": _step_seconds(instance, result.run_id)}


def _step_seconds(instance: Any, run_id: str) -> dict[str, float]:
    """Each step's wall seconds in run `run_id`: its STEP_START to its STEP_SUCCESS or STEP_FAILURE."""
    began: dict[str, float] = {}
    took: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type_value == "STEP_START":
            began[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in began:
            took[event.step_key] = round(entry.timestamp - began[event.step_key], 3)
    return took

def evening(offset: int) -> dict[str, Any]:
    """The evening run of day `offset` as the schedule and sensor run it, timed phase by phase.

    The project's two jobs, as the schedule and the sensor chained after it launch them: landing and
    crawling the day (both tables) with their checks, then the join of the label window [D-35, D]
    (what the project's join mode decides to write within it is the project's business) with the
    joined table's checks. The Spark session starts on its own phase before the join, so the join
    phase is the engine's work and not its start. Runs in the calling process; call it through
    `in_fresh_process` for a cold run.
    """
    today = day(offset)
    os.environ["ZFISH_CLOCK"] = f"{today}T18:00:00Z"
    phases = Phases()
    with phases("imports+definitions"):
        from dagster import DagsterInstance

        from zfish_assets.backends.spark_session import get_spark_session
        from zfish_assets.partitions import evening_window

        defs = definitions()
    window_start, _ = evening_window(today)
    with DagsterInstance.ephemeral() as instance:
        with phases(LAND_PHASE):
            crawled = run_job(defs, instance, LAND_AND_CRAWL_JOB, partition=today)
        with phases("spark start"):
            spark = get_spark_session()
        joined_at = time.time()
        with phases(JOIN_PHASE):
            joined = run_job(defs, instance, JOIN_JOB, first=window_start, last=today)
        join_stages = spark_stages(spark, joined_at)
    return {"day": today, "window": f"{window_start}..{today}", "checks": crawled["checks"] + joined["checks"],
            "seconds": phases.seconds, "steps": {**crawled["steps"], **joined["steps"]}, "join_stages": join_stages}


def engine_floor(existing_rows: int = 60, new_rows: int = 15) -> dict[str, float]:
    """The engine's own floor for an evening, in a fresh process: what no orchestration can go below.

    `session start`: a Spark session (a fresh JVM on the cold engine; a connection on the warm one).
    `warm upsert`: one Hudi upsert (the project's options, `zfish_etl.hudi.upsert`) of `new_rows`
    rows of a new day into a table of `existing_rows` rows, after one untimed upsert that created
    the table and loaded Hudi's classes: the single commit an evening's news needs, and nothing else.
    """
    from datetime import datetime as _dt

    from glue_scripts.zfish_etl.hudi import upsert
    from zfish_assets.backends.spark_session import get_spark_session

    phases = Phases()
    with phases("session start"):
        spark = get_spark_session()
    schema = "image_id string, fish_id string, timestamp timestamp, day string, condition_developed boolean"

    def rows(first: int, count: int, on: str) -> Any:
        return spark.createDataFrame([(f"img-{i}", f"fish-{i % 20}", _dt(2025, 4, 5, 12), on, i % 2 == 0)
                                      for i in range(first, first + count)], schema)

    table = Path(tempfile.mkdtemp(prefix="zfish-floor-", dir="/tmp")) / "floor"
    try:
        upsert(rows(0, existing_rows, day(0)), str(table), "floor", "bench")
        with phases("warm upsert"):
            upsert(rows(existing_rows, new_rows, day(1)), str(table), "floor", "bench")
    finally:
        shutil.rmtree(table.parent, ignore_errors=True)
    return phases.seconds


def spark_stages(spark: Any, since: float) -> dict[str, Any]:
    """Spark's own metrics for the jobs submitted after `since` (epoch seconds): where a join spent its time.

    `busy_s` is the wall time during which at least one Spark job ran (the union of their
    intervals); the rest of a phase is driver-side work between jobs (Hudi's timeline, file
    listing, commit) or Python. `top` names the longest jobs by Hudi's job description where it
    sets one, else Spark's call site. Read from Spark's status store, which runs without the UI too.
    """
    from zfish_assets.backends.spark_session import remote_url

    if remote_url():  # a Spark Connect client cannot read the server's status store
        return {"jobs": 0, "tasks": 0, "busy_s": 0.0, "top": ["(not read on the warm engine)"]}
    store = spark.sparkContext._jsc.sc().statusStore()
    found = []
    iterator = store.jobsList(spark._jvm.java.util.ArrayList()).iterator()
    while iterator.hasNext():
        job = iterator.next()
        submitted, completed = job.submissionTime(), job.completionTime()
        if submitted.isEmpty() or completed.isEmpty():
            continue
        start, end = submitted.get().getTime() / 1000, completed.get().getTime() / 1000
        if start >= since:
            name = job.description().get() if job.description().isDefined() else job.name()
            found.append((start, end, name, job.numTasks()))
    busy, reach = 0.0, 0.0
    for start, end, _, _ in sorted(found):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    by_name: dict[str, float] = {}
    for start, end, name, _ in found:
        by_name[name] = by_name.get(name, 0.0) + end - start
    top = sorted(by_name.items(), key=lambda item: -item[1])[:6]
    return {"jobs": len(found), "tasks": sum(t for *_, t in found), "busy_s": round(busy, 2),
            "top": [f"{name} {seconds:.1f}s" for name, seconds in top]}


# --- Hudi commit metadata ----------------------------------------------------------------------

def hudi_commits(table_dir: Path) -> list[str]:
    """Completed commit instants of the Hudi table at `table_dir`, oldest first."""
    from glue_scripts.zfish_etl.hudi import completed_instants

    return completed_instants(str(table_dir)) if (table_dir / ".hoodie").is_dir() else []


def commit_write_stats(table_dir: Path, instant: str) -> dict[str, Any]:
    """What one commit wrote, from its commit file: files new vs rewritten, bytes, partitions.

    A stat with a `prevCommit` is a new version of an existing file group (copy-on-write rewrote
    it whole); without one it is a new file group.
    """
    from glue_scripts.zfish_etl.hudi import commit_metadata

    doc = commit_metadata(str(table_dir), instant)
    stats = [(partition, s) for partition, group in doc["partitionToWriteStats"].items() for s in group]
    rewritten = [s for _, s in stats if s.get("prevCommit") not in (None, "null")]
    return {
        "instant": instant,
        "partitions_touched": sorted({p.removeprefix("day=") for p, _ in stats}),
        "files_written": len(stats),
        "files_rewritten": len(rewritten),
        "bytes_written": sum(int(s.get("totalWriteBytes", 0)) for _, s in stats),
        "bytes_rewritten": sum(int(s.get("totalWriteBytes", 0)) for s in rewritten),
        "records_written": sum(int(s.get("numWrites", 0)) for _, s in stats),
        "records_updated": sum(int(s.get("numUpdateWrites", 0)) for _, s in stats),
        "records_inserted": sum(int(s.get("numInserts", 0)) for _, s in stats),
    }
