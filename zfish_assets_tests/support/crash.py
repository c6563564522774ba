"""A child process running the production job (`crash_child.py`), held at a crash point and SIGKILLed; the
small lake it runs on, and the table's timeline read from the files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from glue_scripts.joined_fish_data import JobArgs
from zfish_assets.domain.crawl import crawl_day
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.lake import LocalLake
from zfish_assets.resources.simulator import SimulatorResource


CHILD = Path(__file__).with_name("crash_child.py")
SIM = {"start": "2025-04-05", "fish_per_day": 5, "images_per_fish": 3, "label_delay_days": 2, "seed": 42}
TABLE = "joined_fish_data"
HOLD_TIMEOUT_S = 600.0
INSTANT = r"\d{17}"
HUDI_CRASH_POINTS = {
    "before write": rf"/{TABLE}/\.hoodie/{INSTANT}\.inflight$",
    "after .inflight": rf"/{TABLE}/day=[^/]+/[^/]+_{INSTANT}\.parquet$",
    "before completed instant": rf"/{TABLE}/\.hoodie/{INSTANT}\.commit$",
}


def simulator() -> SimulatorResource:
    return SimulatorResource(**SIM)


def land_and_crawl(lake: LocalLake, catalog: LocalCatalog, table: str, day: str, extra_lines: list[str] = ()) -> None:
    """What raw_<table> then <table> do for one day (the simulator's files, plus `extra_lines` for outcomes)."""

    def write(folder: Path) -> None:
        simulator().write_day(table, day, folder)
        if extra_lines:
            with open(next(folder.glob("*.json")), "a", encoding="utf-8") as handle:
                handle.writelines(line + "\n" for line in extra_lines)

    lake.land_day(table, day, write)
    crawl_day(lake, catalog, table, day)


def job_args(catalog_dir: str, target: Path, first: str, last: str) -> JobArgs:
    """The arguments LocalSparkEngine gets from the IO manager with the local catalog (`--catalog file`)."""
    return JobArgs(first_day=first, last_day=last, database="zebra_fish_demo", observations_table="observations",
                   outcomes_table="outcomes", target_path=f"file://{target}", target_table=TABLE, catalog="file",
                   catalog_dir=catalog_dir)


@dataclass(frozen=True)
class Killed:
    """What the killed child announced (the path it was holding on) and how long it ran."""

    held_on: str
    seconds: float


def start_child(args: list[str], env: dict[str, str], workdir: Path) -> subprocess.Popen:
    """The child in its own process group, so SIGKILL reaches Python and the JVM it launched alike."""
    workdir.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, **env, "SPARK_LOCAL_DIRS": str(workdir / "spark-local"),
                 "PYTHONPATH": os.pathsep.join([str(CHILD.parent.parent), os.environ.get("PYTHONPATH", "")])}
    with open(workdir / "stdout", "w") as stdout, open(workdir / "stderr", "w") as stderr:
        return subprocess.Popen([sys.executable, str(CHILD), *args], env=child_env, start_new_session=True,
                                stdout=stdout, stderr=stderr)


def hold_then_kill(child: subprocess.Popen, signal_file: Path, workdir: Path) -> Killed:
    """Wait until the child announces it holds at its crash point, then SIGKILL its whole process group."""
    started = time.monotonic()
    while not signal_file.exists():
        if child.poll() is not None:
            raise AssertionError(f"the child ended ({child.returncode}) without reaching its crash point: "
                                 f"{(workdir / 'stderr').read_text()[-3000:]}")
        if time.monotonic() - started > HOLD_TIMEOUT_S:
            os.killpg(child.pid, signal.SIGKILL)
            raise AssertionError(f"the child did not reach its crash point in {HOLD_TIMEOUT_S:g}s")
        time.sleep(0.1)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while True:  # the JVM is a grandchild: gone only when the kernel has torn down the whole group
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "processes of the killed child's group are still alive"
        time.sleep(0.1)
    return Killed(signal_file.read_text(), time.monotonic() - started)


def timeline(table: Path) -> list[str]:
    """File names of the table's timeline, sorted."""
    folder = table / ".hoodie"
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
