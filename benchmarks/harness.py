"""What every benchmark shares: a scratch data dir, phase timers, peak memory, fresh processes, results
(driving the pipeline itself: `pipeline.py`).

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
