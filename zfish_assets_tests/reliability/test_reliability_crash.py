"""Crashes: the Spark job SIGKILLed at each phase of a Hudi commit, and a landing killed before its crawl.

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
from zfish_assets.domain.crawl import crawl_day
from zfish_assets.partitions import days_between
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.backends.hudi_reader import completed_commits, read_hudi_snapshot
from zfish_assets.resources.lake import STAGING, LocalLake
from zfish_assets_tests.support.crash import (
    HUDI_CRASH_POINTS, SIM, TABLE, hold_then_kill, job_args, land_and_crawl, simulator, start_child, timeline)

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


# ---------------------------------------------------------------------------------------------
# Landing crash points, local: killed while a day lands (a new day, or one replaced), or after it
# landed and before its crawl


def lake_state(root: Path) -> dict[str, Any]:
    """What a reader can see: every file of the lake outside staging folders (bytes), and the catalog.

    Catalog timestamps and the crawl's file fingerprint (it includes modification times) are left
    out: they differ between any two runs, interrupted or not.
    """
    lake = root / "lake"
    files = {str(p.relative_to(lake)): p.read_bytes() for p in sorted(lake.rglob("*"))
             if p.is_file() and not any(part.startswith(STAGING) for part in p.relative_to(lake).parts)}

    def steady(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: steady(v) for k, v in value.items() if not k.endswith("Time") and "fingerprint" not in k}
        if isinstance(value, list):
            return [steady(v) for v in value]
        return value

    catalog = {str(p.relative_to(root)): steady(json.loads(p.read_text()))
               for p in sorted((root / "catalog").rglob("*.json"))}
    return {"files": files, "catalog": catalog}


def orphans(root: Path) -> list[str]:
    """Staging folders a killed landing left behind (invisible to readers; the next landing removes them)."""
    return sorted(str(p.relative_to(root)) for p in (root / "lake").rglob(f"{STAGING}*"))


def registered_records(catalog: LocalCatalog, table: str, day: str) -> list[dict[str, Any]]:
    """The JSON objects in the registered partition `day` (none when it is not registered): what queries read."""
    found = catalog.get_table(table)
    location = found.partitions.get(day) if found else None
    if location is None:
        return []
    folder = Path(location.removeprefix("file://"))
    return [json.loads(line) for f in sorted(folder.glob("*.json"))
            for line in f.read_text().splitlines() if line.strip()]


def old_version(folder: Path) -> None:
    """An earlier delivery of NEW_DAY: the simulator's files without the first, plus an image of its own."""
    simulator().write_day("observations", NEW_DAY, folder)
    first = sorted(folder.glob("*.json"))[0]
    record = json.loads(first.read_text())
    first.unlink()
    (folder / "old-only.json").write_text(json.dumps({**record, "image_id": "old-only-image"}))


def fresh_lake(root: Path, replaced: bool) -> tuple[LocalLake, LocalCatalog]:
    """FIRST_DAYS of observations landed and crawled at `root` (always the same path: locations are
    absolute), and with `replaced` an earlier delivery of NEW_DAY."""
    shutil.rmtree(root, ignore_errors=True)
    lake, catalog = LocalLake(root=str(root / "lake")), LocalCatalog(root=str(root / "catalog"))
    for day in FIRST_DAYS:
        land_and_crawl(lake, catalog, "observations", day)
    if replaced:
        lake.land_day("observations", NEW_DAY, old_version)
        crawl_day(lake, catalog, "observations", NEW_DAY)
    return lake, catalog


def kill_landing(lake: LocalLake, catalog: LocalCatalog, table: str, crash: str, tmp_path: Path, request) -> None:
    """Land (and crawl) NEW_DAY in a child process held at `crash`, then kill it there."""
    signal_file = tmp_path / "held"
    spec = {"lake_root": lake.root, "catalog_root": catalog.root, "table": table, "day": NEW_DAY,
            "signal": str(signal_file), "crash": crash, "simulator": SIM}
    killed = hold_then_kill(start_child(["land", json.dumps(spec)], {}, tmp_path / "child"), signal_file,
                            tmp_path / "child")
    request.node.user_properties.append(("held_on", killed.held_on))


def day_files(state: dict[str, Any], prefix: str) -> dict[str, bytes]:
    return {k: v for k, v in state["files"].items() if k.startswith(prefix)}


LOCAL_LANDINGS = [("mid-landing", False), ("before-registering", False), ("mid-landing", True),
                  ("before-swap", True), ("after-swap", True), ("before-registering", True)]


@pytest.mark.parametrize(("crash", "replaced"), LOCAL_LANDINGS,
                         ids=[f"{c}-{'replaced' if r else 'new'}" for c, r in LOCAL_LANDINGS])
def test_landing_killed(crash: str, replaced: bool, tmp_path, reliability, request) -> None:
    """Kill the landing of NEW_DAY at each step: readers see one whole version of the day; a rerun completes it
    and removes what the killed landing left."""
    table, root = "observations", tmp_path / "data"
    lake, catalog = fresh_lake(root, replaced)
    land_and_crawl(lake, catalog, table, NEW_DAY)
    uninterrupted = lake_state(root)
    expected = registered_records(catalog, table, NEW_DAY)
    assert expected

    lake, catalog = fresh_lake(root, replaced)
    before = lake_state(root)
    old_records = registered_records(catalog, table, NEW_DAY)
    assert bool(old_records) == replaced
    kill_landing(lake, catalog, table, crash, tmp_path, request)
    at_kill = lake_state(root)
    request.node.user_properties.append(("orphans", json.dumps(orphans(root))))

    # The catalog is untouched. Queries read the registered partition, the accepted rows of the day's
    # last crawl: the old day whole, before the exchange and after it (a new day: nothing, as it is not
    # registered yet); the new day once it is crawled.
    assert at_kill["catalog"] == before["catalog"]
    assert registered_records(catalog, table, NEW_DAY) == old_records
    day_prefix = f"{lake.prefix}/{table}/day={NEW_DAY}/"
    if crash in ("mid-landing", "before-swap"):
        # The new files are all in staging: the lake shows exactly what it showed before.
        assert at_kill["files"] == before["files"] and (NEW_DAY in lake.list_days(table)) == replaced
        assert orphans(root), "the killed landing wrote its files into a staging folder"
    else:
        # The day is in the lake whole (the exchange is one step), only not registered yet.
        assert day_files(at_kill, day_prefix) == day_files(uninterrupted, day_prefix)
        assert NEW_DAY in lake.list_days(table)
        assert bool(orphans(root)) == (crash == "after-swap")  # the old day, swapped out, not yet removed

    # The rerun (landing again, then the crawl) ends where the uninterrupted run ended, staging removed.
    land_and_crawl(lake, catalog, table, NEW_DAY)
    assert lake_state(root) == uninterrupted and orphans(root) == []
    got = registered_records(catalog, table, NEW_DAY)
    got_ids = [r["image_id"] for r in got]
    reliability.add("crash", f"local {'re-' if replaced else ''}landing: {crash}", rows_in=len(expected),
                    rows_out=len(got), quarantined=0, lost=len({r["image_id"] for r in expected} - set(got_ids)),
                    duplicates=len(got_ids) - len(set(got_ids)))


@pytest.mark.parametrize("crash", ["crawl-before-registering", "crawl-before-cleanup"])
def test_crawl_killed(crash: str, tmp_path, reliability, request) -> None:
    """Kill the crawl of a re-delivered NEW_DAY after it wrote the day's accepted rows, and after it pointed the
    partition at them: queries read one whole version (the old day, then the new one), never both, never
    none; the rerun ends where the uninterrupted run ended, the replaced version gone."""
    table, root = "observations", tmp_path / "data"
    lake, catalog = fresh_lake(root, replaced=True)
    land_and_crawl(lake, catalog, table, NEW_DAY)
    uninterrupted, expected = lake_state(root), registered_records(catalog, table, NEW_DAY)

    lake, catalog = fresh_lake(root, replaced=True)
    old_records = registered_records(catalog, table, NEW_DAY)
    assert old_records and old_records != expected
    kill_landing(lake, catalog, table, crash, tmp_path, request)
    accepted = lake.list_keys(f"_zfish/accepted/{table}/day={NEW_DAY}")
    assert len(accepted) == 2, accepted  # the old version and the new one, both whole
    assert registered_records(catalog, table, NEW_DAY) == (old_records if crash == "crawl-before-registering"
                                                           else expected)

    land_and_crawl(lake, catalog, table, NEW_DAY)
    assert lake_state(root) == uninterrupted
    got = registered_records(catalog, table, NEW_DAY)
    got_ids = [r["image_id"] for r in got]
    reliability.add("crash", f"local crawl: {crash}", rows_in=len(expected), rows_out=len(got), quarantined=0,
                    lost=len({r["image_id"] for r in expected} - set(got_ids)), duplicates=len(got_ids) - len(set(got_ids)))


# ---------------------------------------------------------------------------------------------
# Landing crash points, S3 (moto's server): killed before each request of the landing


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_BUCKET, S3_REGION = "zfish-crash", "us-east-1"
DAY_KEY = rf"observations/day={NEW_DAY}"
LANDING_KEY = rf"_zfish/landing/observations/day={NEW_DAY}"
# Each step of S3Lake.land_day: (operation, key pattern under the prefix, which matching request).
S3_STEPS = {
    "copying the old day aside": ("CopyObject", rf"{LANDING_KEY}/[0-9a-f]{{32}}\.previous/[^/]+$", 2),
    "writing the marker": ("PutObject", rf"{LANDING_KEY}\.json$", 1),
    "uploading into place": ("PutObject", rf"{DAY_KEY}/[^/]+$", 2),
    "deleting files the delivery dropped": ("DeleteObjects", rf"{DAY_KEY}/[^/]+$", 1),
    "deleting the marker": ("DeleteObject", rf"{LANDING_KEY}\.json$", 1),
    "removing the copy": ("DeleteObjects", rf"{LANDING_KEY}/", 1),
}
AFTER_COMMIT = ("removing the copy",)  # the marker is gone: the new day is what readers read
S3_LANDINGS = [(step, True) for step in S3_STEPS] + [
    (step, False) for step in ("writing the marker", "uploading into place", "deleting the marker")]


def written(write) -> dict[str, bytes]:
    """name -> bytes of what `write(folder)` puts in a folder."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())}


def what_readers_see(lake, catalog: LocalCatalog, table: str) -> dict[str, Any]:
    """NEW_DAY as each reader sees it: listed (the sensor), downloaded (the crawl, DuckDB), through the job's
    read path (`readable_folders`), and registered after a crawl (catalog records)."""
    from glue_scripts.zfish_etl.files import join, list_folders, read_files
    from glue_scripts.zfish_etl.landing import readable_folders
    from zfish_assets.domain.crawl import fingerprint

    listed = lake.list_day(table, NEW_DAY)
    local = lake.local_day_dir(table, NEW_DAY)
    (folder,) = readable_folders([lake.day_uri(table, NEW_DAY)])
    names = list_folders([folder])[0] if folder else []
    by_job = {uri.rsplit("/", 1)[1]: data for uri, data in read_files([join(folder, n) for n in names])} if folder else {}
    crawl_day(lake, catalog, table, NEW_DAY)
    found = catalog.get_table(table)
    registered = NEW_DAY in (found.partitions if found else {})
    return {"listed": NEW_DAY in lake.list_days(table), "fingerprint": fingerprint(listed),
            "downloaded": {p.name: p.read_bytes() for p in sorted(local.iterdir()) if p.name.endswith(".json")},
            "job": by_job, "registered": registered,
            "records": int(catalog.partition_parameters(table).get(NEW_DAY, {}).get("recordCount", 0))}


@pytest.mark.parametrize(("step", "replaced"), S3_LANDINGS,
                         ids=[f"{s.replace(' ', '-')}-{'replaced' if r else 'new'}" for s, r in S3_LANDINGS])
def test_s3_landing_killed(step: str, replaced: bool, s3_endpoint, tmp_path, monkeypatch, reliability, request):
    """Kill S3Lake.land_day before one of its requests: every reader sees the old day whole (none, for a new
    day) until the marker is deleted, then the new one; the next landing (the dead one's lease taken over)
    completes and leaves no copy or marker."""
    import boto3

    from zfish_assets.resources.aws_connection import AWSConnection
    from zfish_assets.resources.lake import S3Lake

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": S3_REGION, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)  # the child and the job's own boto3 client (files.py) resolve these
    s3 = boto3.client("s3", region_name=S3_REGION, endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=S3_BUCKET)
    prefix = f"crash-{request.node.callspec.id}"
    settings = {"bucket": S3_BUCKET, "prefix": prefix, "endpoint_url": s3_endpoint, "region": S3_REGION}
    lake = S3Lake(bucket=S3_BUCKET, prefix=prefix, cache_dir=str(tmp_path / "cache"),
                  aws=AWSConnection(region_name=S3_REGION, endpoint_url=s3_endpoint))
    catalog = LocalCatalog(root=str(tmp_path / "catalog"))
    table = "observations"
    old, new = written(old_version), written(lambda f: simulator().write_day(table, NEW_DAY, f))
    if replaced:
        lake.land_day(table, NEW_DAY, old_version)
    before = what_readers_see(lake, catalog, table)
    assert before["downloaded"] == before["job"] == (old if replaced else {})

    operation, key, nth = S3_STEPS[step]
    signal_file = tmp_path / "held"
    spec = {**settings, "cache_dir": str(tmp_path / "child-cache"), "table": table, "day": NEW_DAY,
            "simulator": SIM, "signal": str(signal_file), "operation": operation, "key": f"^{prefix}/{key}", "nth": nth}
    killed = hold_then_kill(start_child(["land-s3", json.dumps(spec)], {}, tmp_path / "child"), signal_file,
                            tmp_path / "child")
    request.node.user_properties.append(("held_on", killed.held_on))
    keys = sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET, Prefix=prefix)
                  for o in page.get("Contents", []))
    request.node.user_properties.append(("keys_at_kill", json.dumps(keys)))

    at_kill = what_readers_see(lake, catalog, table)
    if step in AFTER_COMMIT:
        assert at_kill["downloaded"] == at_kill["job"] == new and at_kill["listed"] and at_kill["registered"]
    else:
        # The old day whole, or no day: what every reader saw before, the sensor's fingerprint included.
        assert at_kill == before, (at_kill.keys(), step)
    if replaced or step != "writing the marker":  # the copy aside, or the marker, is left for the next landing
        assert any(k.startswith(f"{prefix}/_zfish/landing/") for k in keys), keys

    # The next landing completes the day and removes every staging key and the marker.
    lake.land_day(table, NEW_DAY, lambda f: simulator().write_day(table, NEW_DAY, f))
    after = what_readers_see(lake, catalog, table)
    assert after["downloaded"] == after["job"] == new and after["listed"] and after["registered"]
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=S3_BUCKET, Prefix=f"{prefix}/").get("Contents", [])]
    assert not [k for k in left if "/_zfish/landing/" in k and not k.endswith(".lease")], left  # the day's lease, released
    assert sorted(k.rsplit("/", 1)[1] for k in left if k.startswith(f"{prefix}/{table}/day={NEW_DAY}/")) == sorted(new)
    rows_in = len(new)
    reliability.add("crash", f"s3 {'re-' if replaced else ''}landing: {step}", rows_in=rows_in,
                    rows_out=after["records"], quarantined=0, lost=len(set(new) - set(after["job"])),
                    duplicates=after["records"] - len(after["job"]))
