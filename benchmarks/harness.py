"""What every benchmark shares: a scratch data dir, phase timers, peak memory, fresh processes, results.

Benchmarks are scripts that print figures, never timed tests: the figures depend on the machine and
on whatever else runs on it, so each result file records the core count, the load average before
and after, the date and the git commit, and BENCHMARKS.md quotes them. Results go to
`benchmarks/results/<name>.json` (gitignored: a run on another machine must not look like ours;
the files BENCHMARKS.md quotes are copied by hand to `benchmarks/results/published/`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
SIM_START = date(2025, 4, 5)

if str(REPO) not in sys.path:  # `python benchmarks/x.py` without the project installed
    sys.path.insert(0, str(REPO))

from zfish_assets.dagster_names import JOIN_JOB, LAND_AND_CRAWL_JOB, RANGE_END, RANGE_START  # noqa: E402


def day(offset: int) -> str:
    """The simulated day `offset` days after the simulation's start (offset 0 is the first day)."""
    return (SIM_START + timedelta(days=offset)).isoformat()


# --- scratch data dirs -------------------------------------------------------------------------

@contextmanager
def scratch_data_dir(keep: Path | None = None, **settings: str) -> Iterator[Path]:
    """A `ZFISH_DATA_DIR` under /tmp with `ZFISH_*` settings in the environment, removed afterwards.

    Never the repo's `.zfish`: a benchmark must not touch the demo's data. `keep` names a folder to
    use and leave in place instead (a cache, or data to look at afterwards). Runs log at WARNING so
    that log formatting is not part of the figures.
    """
    folder = keep or Path(tempfile.mkdtemp(prefix="zfish-bench-", dir="/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    saved = dict(os.environ)
    os.environ.update({"ZFISH_DATA_DIR": str(folder), "ZFISH_LOG_LEVEL": "WARNING",
                       "DAGSTER_HOME": str(folder / "dagster"), **settings})
    (folder / "dagster").mkdir(exist_ok=True)
    try:
        yield folder
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if keep is None:
            removing = time.perf_counter()
            shutil.rmtree(folder, ignore_errors=True)
            print(f"(removed {folder} in {time.perf_counter() - removing:.0f} s)", flush=True)


@contextmanager
def engine(kind: str) -> Iterator[None]:
    """`cold`: each run starts its own Spark, as by default. `warm`: the warm engine (a Spark Connect
    server started in the scratch data dir, `zfish engine start`) serves every run, then is stopped."""
    if kind == "cold":
        yield
        return
    from zfish_assets import settings
    from zfish_assets.backends import connect_server
    from zfish_assets.domain.warm_evenings import warm_up

    began = time.perf_counter()
    state = connect_server.start(warm_up=warm_up)
    print(f"(warm engine {state.masked_url} started in {time.perf_counter() - began:.1f} s)", flush=True)
    os.environ[settings.SPARK_REMOTE.name] = state.url
    try:
        yield
    finally:
        os.environ.pop(settings.SPARK_REMOTE.name, None)
        connect_server.stop()


ENGINES = ("cold", "warm")


# --- fresh processes ---------------------------------------------------------------------------

def _trampoline(queue: Any, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        queue.put(("ok", function(*args)))
    except BaseException:  # the parent re-raises it with the child's traceback
        queue.put(("error", traceback.format_exc()))


def in_fresh_process(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in a new Python process, as Dagster runs every run: its own JVM, cold imports.

    Measuring an evening in the process that seeded its history would hide the Spark start and
    the imports a real run pays. Not a Pool: pool workers are daemons, and the simulator's writers
    are child processes of their own. The environment is inherited, so set settings before calling.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_trampoline, args=(queue, function, args))
    process.start()
    status, value = queue.get()
    process.join()
    if status == "error":
        raise RuntimeError(f"{function.__name__} failed in its process:\n{value}")
    return value


# --- time and memory ---------------------------------------------------------------------------

class Phases:
    """Wall time per named phase, in the order the phases ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def _status_kib(pid: int, field: str) -> int:
    """A `Vm*` field of /proc/<pid>/status in KiB (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(p) for p in found]


def jvm_pids() -> list[int]:
    """The Java processes under this one: Spark's driver JVM (pyspark launches it as a child)."""
    pids, todo = [], _children(os.getpid())
    while todo:
        pid = todo.pop()
        try:
            command = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if command == "java":
            pids.append(pid)
        todo.extend(_children(pid))
    return pids


def reset_peak_rss() -> None:
    """Restart the peak-RSS counters (VmHWM) of this process and its JVM, so a phase gets its own peak.

    Writing 5 to clear_refs is Linux's documented reset of the high-water mark (own processes only).
    """
    for pid in (os.getpid(), *jvm_pids()):
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            pass


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory since the last reset: Python (this process) and the driver JVM, in MiB."""
    return {"python_peak_MiB": _status_kib(os.getpid(), "VmHWM") / 1024,
            "jvm_peak_MiB": sum(_status_kib(pid, "VmHWM") for pid in jvm_pids()) / 1024}


# --- driving the pipeline ----------------------------------------------------------------------

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


# --- results -----------------------------------------------------------------------------------

def git_commit() -> str:
    """HEAD of the checkout, marked `+dirty` when files differ from it (read-only git commands)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def join_mode() -> str:
    """How this checkout's evening join writes (`ZFISH_JOIN_MODE`), as a benchmark run without overrides sees it."""
    from zfish_assets import settings

    return settings.join_mode()


def machine() -> dict[str, Any]:
    """Cores, memory and the load average: what a reader needs to judge a figure."""
    meminfo = Path("/proc/meminfo").read_text().split()
    return {"cores": os.cpu_count() or 1, "memory_GiB": round(int(meminfo[1]) / 2**20, 1),
            "load_average_1m": round(os.getloadavg()[0], 2)}


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def print_table(rows: Sequence[Mapping[str, Any]], title: str = "") -> None:
    """Rows as an aligned text table, columns in first-seen order, numbers right-aligned."""
    if title:
        print(f"\n{title}")
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    cells = [[_shown(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row.get(c), (int, float)) for row in rows if c in row) for c in columns]
    line = lambda values: "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric))
    print(line(columns))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))


class Results:
    """One benchmark's results file: parameters, rows, the machine before and after, the commit."""

    def __init__(self, name: str, parameters: Mapping[str, Any]) -> None:
        self.name = name
        self.document: dict[str, Any] = {
            "benchmark": name,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "machine_before": machine(),
            "join_mode": join_mode(),
            "parameters": dict(parameters),
            "rows": [],
        }

    def add(self, row: Mapping[str, Any]) -> None:
        self.document["rows"].append(dict(row))

    def write(self) -> Path:
        self.document["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.document["machine_after"] = machine()
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        path.write_text(json.dumps(self.document, indent=1) + "\n")
        before, after = self.document["machine_before"], self.document["machine_after"]
        print(f"\n{before['cores']} cores, load {before['load_average_1m']} -> {after['load_average_1m']}, "
              f"commit {self.document['git_commit']}; results in {path.relative_to(REPO)}")
        return path


def print_steps(steps: Mapping[str, float]) -> None:
    """Each step of the timed runs, longest first: where a phase's seconds went."""
    print_table([{"step": key, "seconds": seconds} for key, seconds in sorted(steps.items(), key=lambda kv: -kv[1])],
                "steps of the runs (start to end event)")
