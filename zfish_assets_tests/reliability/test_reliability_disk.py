"""A full disk under joined_fish_data: the run ends within seconds naming the cause and the path, and the
next run, given room, recovers with nothing lost.

The table lives on a filesystem of its own that the test mounts (a 32 MiB tmpfs: root only, else
skipped, saying so). Before a commit the job checks the room the commit may take and refuses
without writing; when the disk fills during the commit (a thread fills it as soon as the commit's
`.commit.requested` appears), the run fails with "No space left on device" and the table's path
instead of waiting out the embedded timeline server's 5-minute read timeout. Readers keep the last
commit meanwhile; the next run rolls the failed one back and the table equals the raw files' join.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from glue_scripts.joined_fish_data import run
from glue_scripts.zfish_etl.write_errors import ROOM_MARGIN, TableWriteError
from zfish_assets.partitions import days_between
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.lake import LocalLake
from zfish_assets_tests.support import crawl_lake
from zfish_assets_tests.support.tables import as_expected, raw_expected, table_rows
from zfish_assets_tests.support.crash import job_args, land_and_crawl, simulator, timeline

DAYS = days_between("2025-04-05", "2025-04-09")
SIZE_MIB = 32


@pytest.fixture
def small_fs(tmp_path) -> Iterator[Path]:
    """A tmpfs of SIZE_MIB mounted for the test (skipped where mounting is not permitted)."""
    mount = tmp_path / "small-fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MIB}m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path, leave: int = 0) -> None:
    """Write zeros into `path` until its filesystem has `leave` bytes free (or none)."""
    with open(path, "ab") as handle:
        while (free := shutil.disk_usage(path.parent).free - leave) > 0:
            try:
                handle.write(b"\0" * min(free, 2**20))
                handle.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return


def fill_when_a_commit_starts(table: Path, filler: Path) -> threading.Thread:
    """A thread that fills the disk as soon as a new `.commit.requested` appears in the table's timeline."""
    before = set(timeline(table))

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if any(n.endswith(".commit.requested") for n in set(timeline(table)) - before):
                fill(filler)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_full_disk_fails_the_join_in_seconds_naming_the_cause_and_the_next_run_recovers(
        tmp_path, small_fs, spark, reliability):
    lake, catalog = LocalLake(root=str(tmp_path / "lake")), LocalCatalog(root=str(tmp_path / "catalog"))
    table, filler = small_fs / "joined_fish_data", small_fs / "filler"
    for day in DAYS[:-1]:
        for raw in ("observations", "outcomes"):
            land_and_crawl(lake, catalog, raw, day)
    assert run(spark, job_args(str(tmp_path / "catalog"), table, DAYS[0], DAYS[-2])).commit_instant
    baseline, baseline_rows = timeline(table), table_rows(f"file://{table}")
    for raw in ("observations", "outcomes"):
        land_and_crawl(lake, catalog, raw, DAYS[-1])
    args = job_args(str(tmp_path / "catalog"), table, DAYS[0], DAYS[-1])

    fill(filler, leave=ROOM_MARGIN // 2)  # less room than a commit may take: refused before writing
    started = time.monotonic()
    with pytest.raises(TableWriteError) as refused:
        run(spark, args)
    assert refused.value.errno == errno.ENOSPC and time.monotonic() - started < 60
    assert "not enough room" in str(refused.value) and str(table) in str(refused.value), refused.value
    assert timeline(table) == baseline

    filler.unlink()  # room for the check, then the disk fills during the commit
    watcher = fill_when_a_commit_starts(table, filler)
    started = time.monotonic()
    with pytest.raises(TableWriteError) as failed:
        run(spark, args)
    took = time.monotonic() - started
    watcher.join(5)
    message = str(failed.value)
    assert failed.value.errno == errno.ENOSPC and took < 120, (took, message)
    assert os.strerror(errno.ENOSPC) in message and str(table) in message and "MiB free" in message, message
    assert table_rows(f"file://{table}") == baseline_rows  # readers keep the last commit

    filler.unlink()
    assert run(spark, args).commit_instant
    expected = raw_expected(tmp_path / "lake" / "use-cases/fish-demo")
    stored = as_expected(table_rows(f"file://{table}"))
    assert stored == expected and len(expected) == 3 * 15
    reliability.add("disk", f"disk full during the commit (failed in {took:.0f} s), then room", rows_in=len(expected),
                    rows_out=len(stored), quarantined=0, lost=len(set(expected) - set(stored)),
                    duplicates=len(stored) - len(set(stored) & set(expected)))


def test_a_full_disk_fails_landing_and_upload_at_once_naming_the_file_being_written(tmp_path, small_fs, monkeypatch,
                                                                                    capsys):
    """Python's writes fail at once but name no path (or, for shutil.copy2, the source): each names the target,
    once, and `zfish upload` ends with that one line (exit 1), not a traceback."""
    from zfish_assets.tools.cli import main

    monkeypatch.setenv("ZFISH_DATA_DIR", str(small_fs / "zfish"))
    lab = tmp_path / "lab" / "observations" / f"day={DAYS[0]}"
    lab.mkdir(parents=True)
    (lab / "big.json").write_bytes(b"{}\n" * (SIZE_MIB * 2**20 // 3 + 1))  # more than the whole filesystem
    started = time.monotonic()
    assert main(["upload", str(tmp_path / "lab"), "--day", DAYS[0]]) == 1
    assert time.monotonic() - started < 30
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("zfish upload:")]
    assert len(lines) == 1, lines
    message = lines[0]
    assert os.strerror(errno.ENOSPC) in message and f"writing {small_fs / 'zfish' / 'lake'}" in message, message
    assert message.count("big.json") == 1 and str(lab) not in message and message.count("MiB free of") == 1, message
    assert not list((small_fs / "zfish" / "lake").rglob("*.json")), "nothing landed"

    lake = LocalLake(root=str(small_fs / "lake"))
    fill(small_fs / "filler")
    with pytest.raises(OSError) as full:
        lake.put_bytes("use-cases/fish-demo/_zfish/note.json", b"{}" * 4096)
    assert full.value.errno == errno.ENOSPC and "note.json" in str(full.value), full.value


def test_a_full_catalog_disk_fails_the_crawl_naming_the_file_leaves_no_part_and_the_rerun_completes(tmp_path, small_fs):
    """The local catalog's file is written beside it and renamed: on a full disk the write fails naming the
    file and leaves no partial copy behind; the crawl given room completes."""
    from zfish_assets.domain.glue_crawler import crawl

    lake, catalog = LocalLake(root=str(tmp_path / "lake")), LocalCatalog(root=str(small_fs / "catalog"))
    lake.land_day("observations", DAYS[0], lambda folder: simulator().write_day("observations", DAYS[0], folder))
    fill(small_fs / "filler")
    started = time.monotonic()
    with pytest.raises(OSError) as full:
        crawl(lake, catalog, "observations", DAYS[0])
    assert time.monotonic() - started < 30
    assert full.value.errno == errno.ENOSPC and f"writing {small_fs / 'catalog'}" in str(full.value), full.value
    assert sorted(p.name for p in (small_fs / "catalog").rglob("*") if p.is_file()) == ["observations.lock"]
    (small_fs / "filler").unlink()
    assert crawl(lake, catalog, "observations", DAYS[0]).registered
    assert sorted(p.name for p in (small_fs / "catalog").rglob("*") if p.is_file()) == [
        "observations.json", "observations.lock"]


def test_a_full_dagster_home_ends_a_zfish_command_with_one_line_naming_it(tmp_path, small_fs, monkeypatch, capsys):
    """Dagster's instance is sqlite under DAGSTER_HOME: a full disk there was a screen of SQLAlchemy traceback
    ending in `disk I/O error`, naming neither DAGSTER_HOME nor the room left."""
    from zfish_assets.tools.cli import main
    from zfish_assets.tools.instance import local_instance

    monkeypatch.setenv("ZFISH_DATA_DIR", str(tmp_path / "zfish"))
    monkeypatch.setenv("DAGSTER_HOME", str(small_fs / "dagster"))
    monkeypatch.setenv("ZFISH_CLOCK", f"{DAYS[-1]}T18:00:00Z")
    lake, catalog = LocalLake(root=str(tmp_path / "zfish" / "lake")), LocalCatalog(root=str(tmp_path / "zfish" / "catalog"))
    for raw in ("observations", "outcomes"):
        land_and_crawl(lake, catalog, raw, DAYS[0])
    local_instance().dispose()  # the instance made while there was room
    fill(small_fs / "filler")
    capsys.readouterr()
    started = time.monotonic()
    assert main(["check", "--day", DAYS[0]]) == 1
    assert time.monotonic() - started < 60
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("zfish check:")]
    assert len(lines) == 1, lines
    assert f"DAGSTER_HOME={small_fs / 'dagster'}" in lines[0] and "MiB free of" in lines[0], lines[0]
    assert "disk I/O error" in lines[0] or "database or disk is full" in lines[0], lines[0]


def test_a_crawl_failing_between_its_records_and_its_registration_is_finished_by_the_next_crawl(tmp_path):
    """Day 25 re-delivered without X; its crawl writes the day's ledger and keys, then cannot write its
    accepted rows (their folder read-only: EROFS, named). Its partition still says X, its keys say not:
    the next crawl of any day, given a writable lake, tells them apart by the keys digest the partition
    records and finishes: X on day 26 only, as the final lake implies."""
    from zfish_assets.domain.glue_crawler import crawl

    deliver, expected, outcome, KEY_DAYS = crawl_lake.deliver, crawl_lake.expected, crawl_lake.outcome, crawl_lake.DAYS
    lake, catalog = crawl_lake.make_lake(tmp_path)
    delivered = {KEY_DAYS[0]: ["X", "Y"], KEY_DAYS[1]: ["X", "Z"], KEY_DAYS[2]: []}
    for day, keys in delivered.items():
        deliver(lake, "observations", day, keys)
        crawl(lake, catalog, "observations", day)
    delivered[KEY_DAYS[0]] = ["Y"]
    deliver(lake, "observations", KEY_DAYS[0], ["Y"])
    accepted = tmp_path / "lake" / "p" / "_zfish" / "accepted"
    done = subprocess.run(["mount", "--bind", str(accepted), str(accepted)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount a folder read-only here (needs root): {done.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(accepted)], check=True)
        with pytest.raises(OSError) as refused:
            crawl(lake, catalog, "observations", KEY_DAYS[0])
        assert refused.value.errno == errno.EROFS and str(accepted) in str(refused.value), refused.value
    finally:
        subprocess.run(["umount", str(accepted)], check=False)
    assert outcome(lake, catalog) != expected(delivered)  # half: the partition is the old verdict
    deliver(lake, "observations", KEY_DAYS[2], ["W"])
    delivered[KEY_DAYS[2]] = ["W"]
    assert KEY_DAYS[0] in crawl(lake, catalog, "observations", KEY_DAYS[2]).rejudged
    assert outcome(lake, catalog) == expected(delivered)
