"""Crashes: the Spark job SIGKILLed at each phase of a Hudi commit (a landing or a crawl killed:
`test_reliability_landing_crash`).

Hudi promises that readers never see a partial commit and that the next write rolls a failed one
back. These tests hold that promise to the project's own job: a child process runs the production
job (`crash_child.py`), holds at a known phase of the commit (a filesystem hook, not a race with a
poller), and is killed with SIGKILL. The parent then checks, from the files, that the phase was
really reached; that hudi-rs and Spark read exactly the last completed snapshot; and that the next
normal run rolls the failed instant back and ends with the table an uninterrupted run writes.
What the timeline and partitions held at each kill is kept in the test's `user_properties`
(`at_kill`, `rollbacks`: in `--junitxml -o junit_family=legacy` reports).

The data is a small lake of its own (label delay 2 days, so a handful of days has labels): a
baseline commit over 2025-04-05..08, then day 2025-04-09 lands with new labels and one label
correction, so the crashed commit both adds a partition and rewrites an existing file group.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from glue_scripts.joined_fish_data import run
from zfish_assets.partitions import days_between
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.backends.hudi_reader import completed_commits, read_hudi_snapshot
from zfish_assets.resources.lake import LocalLake
from zfish_assets_tests.support.crash import (
    HUDI_CRASH_POINTS, SIM, TABLE, hold_then_kill, job_args, land_and_crawl, start_child, timeline)

pytestmark = pytest.mark.long_module  # minutes of work: scheduled first (conftest)

FIRST_DAYS = days_between("2025-04-05", "2025-04-08")
NEW_DAY = "2025-04-09"
WINDOW = (FIRST_DAYS[0], NEW_DAY)
PER_COMMIT = ("_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_file_name")

# Where each crash point holds the job: the file whose creation it never returns from.


# ---------------------------------------------------------------------------------------------
# The world: a small lake, a baseline table written once, and the table an uninterrupted run makes


@dataclass(frozen=True)
class HeldChild:
    """A child running the job on its own copy of the baseline table, on its way to a crash point."""

    process: subprocess.Popen
    table: Path
    signal: Path
    workdir: Path


@dataclass(frozen=True)
class World:
    catalog_dir: str
    baseline: Path  # the table after the baseline commit (copied per crash point, never written)
    baseline_instant: str
    baseline_rows: list[dict[str, Any]]
    reference: Path  # baseline + an uninterrupted run over WINDOW
    reference_instant: str
    reference_rows: list[dict[str, Any]]
    children: dict[str, HeldChild]


def plain(value: Any) -> Any:
    """A value comparable across readers: timestamps as UTC ISO strings (Spark hands back naive local times)."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return value


def rows_by_hudi_rs(table: Path) -> list[dict[str, Any]]:
    """The snapshot hudi-rs reads (the project's reader), rows sorted by image_id."""
    rows = read_hudi_snapshot(f"file://{table}", {}).to_pylist()
    return sorted(({k: plain(v) for k, v in r.items()} for r in rows), key=lambda r: r["image_id"])


def rows_by_spark(spark, table: Path) -> list[dict[str, Any]]:
    """The snapshot Spark's Hudi datasource reads, rows sorted by image_id."""
    rows = spark.read.format("hudi").load(f"file://{table}").collect()
    return sorted(({k: plain(v) for k, v in r.asDict().items()} for r in rows), key=lambda r: r["image_id"])


def without_per_commit(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in PER_COMMIT} for r in rows]


def flipped_label(lake: LocalLake, fish_day: str) -> str:
    """A correction: the first label of the fish imaged on `fish_day`, inverted (arrives on NEW_DAY)."""
    label_day = (date.fromisoformat(fish_day) + timedelta(days=SIM["label_delay_days"])).isoformat()
    source = next(lake.local_day_dir("outcomes", label_day).glob("*.json"))
    first = json.loads(source.read_text().splitlines()[0])
    return json.dumps({**first, "condition_developed": not first["condition_developed"]})


@pytest.fixture(scope="module")
def world(request, tmp_path_factory) -> Iterator[World]:
    """The lake through NEW_DAY, the baseline table (FIRST_DAYS), one child per crash point, the reference.

    The children start first and warm up their Spark sessions while this process starts its own
    and writes the baseline; they run the job once their copy of the baseline is in place, and each
    then holds at its crash point until its test kills it.
    """
    from zfish_assets_tests.support.crash_child import compile_hold_fs

    root = tmp_path_factory.mktemp("crash")
    lake, catalog = LocalLake(root=str(root / "lake")), LocalCatalog(root=str(root / "catalog"))
    catalog_dir = str(root / "catalog")
    classes, go = compile_hold_fs(root / "java"), root / "go"
    children = {}
    try:
        for number, (phase, pattern) in enumerate(HUDI_CRASH_POINTS.items()):
            workdir = root / f"crash-{number}"
            table = workdir / TABLE
            args = asdict(job_args(catalog_dir, table, *WINDOW))
            env = {"ZFISH_CRASH_HOLD": pattern, "ZFISH_CRASH_SIGNAL": str(workdir / "held"),
                   "ZFISH_CRASH_LOG": str(workdir / "created.log"), "ZFISH_CRASH_GO": str(go),
                   # C1 only and a serial GC: a JVM that lives a minute spends less CPU compiling
                   "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
            children[phase] = HeldChild(start_child(["join", json.dumps(args), str(classes)], env, workdir / "child"),
                                        table, workdir / "held", workdir / "child")
        spark = request.getfixturevalue("spark")
        for day in FIRST_DAYS:
            for table in ("observations", "outcomes"):
                land_and_crawl(lake, catalog, table, day)
        baseline = root / "baseline" / TABLE
        first = run(spark, job_args(catalog_dir, baseline, FIRST_DAYS[0], FIRST_DAYS[-1]))
        land_and_crawl(lake, catalog, "observations", NEW_DAY)
        land_and_crawl(lake, catalog, "outcomes", NEW_DAY, [flipped_label(lake, FIRST_DAYS[0])])
        for child in children.values():
            shutil.copytree(baseline, child.table)
        go.touch()
        reference = root / "reference" / TABLE
        shutil.copytree(baseline, reference)
        second = run(spark, job_args(catalog_dir, reference, *WINDOW))
        assert first.commit_instant and second.commit_instant
        # The crashed commit is a real upsert: it rewrites a file group of the baseline and adds a partition.
        baseline_days = {p.parent.name for p in data_files(baseline, first.commit_instant)}
        crashed_days = {p.parent.name for p in data_files(reference, second.commit_instant)}
        assert crashed_days & baseline_days and crashed_days - baseline_days, (baseline_days, crashed_days)
        yield World(catalog_dir, baseline, first.commit_instant, rows_by_hudi_rs(baseline), reference,
                    second.commit_instant, rows_by_hudi_rs(reference), children)
    finally:
        for child in children.values():  # a test that failed early leaves its child holding
            if child.process.poll() is None:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()


# ---------------------------------------------------------------------------------------------
# The child process, held and killed


# ---------------------------------------------------------------------------------------------
# The timeline and partitions, read from the files


def data_files(table: Path, instant: str) -> list[Path]:
    """Base files the instant wrote, in the partitions (Hudi names them `<fileId>_<token>_<instant>.parquet`)."""
    return sorted(table.glob(f"day=*/*_{instant}.parquet"))


def instant_files(names: list[str], instant: str) -> list[str]:
    return [n for n in names if n.startswith(instant + ".")]


def rolled_back(spark, folder: Path) -> dict[str, list[str]]:
    """Each completed rollback in the timeline `folder` and the instants it rolled back (Hudi's own Avro reader).

    Hudi 1.0 (Glue 5.1) reads a version-6 timeline's Avro files with its `...Legacy` reader.
    """
    from zfish_assets.settings import glue_runtime

    jvm = spark.sparkContext._jvm
    utils = jvm.org.apache.hudi.common.table.timeline.TimelineMetadataUtils
    rollback = jvm.org.apache.hudi.avro.model.HoodieRollbackMetadata().getClass()
    found = {}
    for path in sorted(folder.glob("*.rollback")):
        data = bytearray(path.read_bytes())
        metadata = utils.deserializeHoodieRollbackMetadata(data) if glue_runtime().hudi.startswith("0.") \
            else utils.deserializeAvroMetadataLegacy(data, rollback)
        instants = metadata.getCommitsRollback()  # an Avro array: py4j's iterator overruns it, so index
        found[path.name.removesuffix(".rollback")] = sorted(str(instants.get(i)) for i in range(instants.size()))
    return found


def duplicates(rows: list[dict[str, Any]]) -> int:
    return len(rows) - len({r["image_id"] for r in rows})


# ---------------------------------------------------------------------------------------------
# Hudi commit crash points


def crashed_instant(before: list[str], after: list[str]) -> str:
    """The one instant the killed job started: its `.commit.requested` is new on the timeline."""
    new = sorted({n.removesuffix(".commit.requested") for n in after if n.endswith(".commit.requested")} -
                 {n.removesuffix(".commit.requested") for n in before if n.endswith(".commit.requested")})
    assert len(new) == 1, f"expected one new requested commit, timeline: {after}"
    return new[0]


def check_phase(phase: str, table: Path, instant: str, world: World) -> dict[str, Any]:
    """Verify from the files that the crash point was reached, and return what the table held."""
    data_timeline = instant_files(timeline(table), instant)
    written = data_files(table, instant)
    reference_files = data_files(world.reference, world.reference_instant)
    held = {"timeline": data_timeline, "metadata_table": (table / ".hoodie" / "metadata").exists(),
            "data_files": [str(p.relative_to(table)) for p in written],
            "markers": sorted(p.name for p in (table / ".hoodie" / ".temp" / instant).glob("*"))}
    assert f"{instant}.commit" not in data_timeline, held  # never completed, in every phase
    assert not held["metadata_table"], held  # HUDI_OPTIONS keep no metadata table
    if phase == "before write":
        assert data_timeline == [f"{instant}.commit.requested"] and not written, held
    elif phase == "after .inflight":
        assert data_timeline == [f"{instant}.commit.requested", f"{instant}.inflight"] and held["markers"], held
        assert not written, held
    else:
        assert data_timeline == [f"{instant}.commit.requested", f"{instant}.inflight"] and held["markers"], held
        # Every data file of the commit is there and whole: as many as the uninterrupted commit
        # wrote, each with a readable footer, holding as many rows.
        assert len(written) == len(reference_files), held
        assert sum(pq.read_metadata(p).num_rows for p in written) == \
            sum(pq.read_metadata(p).num_rows for p in reference_files), held
    return held


@pytest.mark.parametrize("phase", list(HUDI_CRASH_POINTS))
def test_hudi_commit_killed(phase: str, world: World, spark, reliability, request) -> None:
    """Kill the job at `phase` of its commit: readers keep the last snapshot; the next run heals the table."""
    child = world.children[phase]
    table = child.table
    killed = hold_then_kill(child.process, child.signal, child.workdir)
    instant = crashed_instant(timeline(world.baseline), timeline(table))
    held = check_phase(phase, table, instant, world)
    request.node.user_properties.append(("held_on", killed.held_on))
    request.node.user_properties.append(("seconds_to_hold", round(killed.seconds, 1)))
    request.node.user_properties.append(("at_kill", json.dumps(held)))

    # Readers see the last completed snapshot, exactly: same rows, same file slices, same commit.
    assert completed_commits(f"file://{table}", {}) == [world.baseline_instant]
    assert rows_by_hudi_rs(table) == world.baseline_rows
    assert rows_by_spark(spark, table) == world.baseline_rows

    # The next normal run rolls the failed instant back, then commits the table an uninterrupted run makes.
    result = run(spark, job_args(world.catalog_dir, table, *WINDOW))
    hoodie = table / ".hoodie"
    rollbacks = rolled_back(spark, hoodie)
    request.node.user_properties.append(("rollbacks", json.dumps(rollbacks)))
    assert list(rollbacks.values()) == [[instant]], rollbacks  # one rollback, of the crashed instant
    (rollback,) = rollbacks
    # Hudi rolls back before it starts its own commit: the rollback completed before the new
    # commit was requested (though its instant time is later: the writer took its time first).
    assert (hoodie / f"{rollback}.rollback").stat().st_mtime_ns <= \
        (hoodie / f"{result.commit_instant}.commit.requested").stat().st_mtime_ns
    assert instant_files(timeline(table), instant) == []
    assert data_files(table, instant) == [] and not (hoodie / ".temp" / instant).exists()
    assert completed_commits(f"file://{table}", {}) == [world.baseline_instant, result.commit_instant]
    recovered = rows_by_hudi_rs(table)
    assert without_per_commit(recovered) == without_per_commit(world.reference_rows)
    assert without_per_commit(rows_by_spark(spark, table)) == without_per_commit(world.reference_rows)

    expected_ids = {r["image_id"] for r in world.reference_rows}
    reliability.add("crash", f"hudi commit: {phase}", rows_in=len(world.reference_rows), rows_out=len(recovered),
                    quarantined=0, lost=len(expected_ids - {r["image_id"] for r in recovered}),
                    duplicates=duplicates(recovered))
