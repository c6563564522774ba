"""Every entry of a day folder has a fate in `zfish upload`: landed, or named in the refusal (no Spark).

Hypothesis builds day folders from every kind of entry a lab's disk can hold (files, subfolders,
symbolic links to files and to folders, dangling links, links looping back, named pipes) and
uploads each with the installed command's code; the expected fate of every entry comes from the
kind the test made, not from the code: regular files and what links point to land under the
entry's name (a folder's files as a subfolder), and a folder holding any other kind (an empty
subfolder too: it would land as nothing at all) is refused before anything lands, each such entry named. A day after the clock is refused too, naming it.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zfish_assets.tools.cli import main

DAY = "2025-04-05"
LANDS = ("file", "link_to_file", "folder", "link_to_folder")
REFUSED = ("dangling_link", "fifo", "link_loop", "empty_folder", "link_to_empty_folder")


def refused_name(number: int, kind: str) -> str:
    """The name a refused entry of `kind` has in the day folder (`make_entry`)."""
    return f"d{number}" if kind.endswith("empty_folder") else f"e{number}.json"


def make_entry(day: Path, targets: Path, number: int, kind: str) -> dict[str, bytes]:
    """Make entry `number` of `kind` in `day`; return what landing it lands (relative path -> bytes)."""
    body = f'{{"entry": {number}}}\n'.encode()
    name = f"e{number}.json"
    if kind == "file":
        (day / name).write_bytes(body)
        return {name: body}
    if kind == "link_to_file":
        (targets / name).write_bytes(body)
        (day / name).symlink_to(targets / name)
        return {name: body}
    if kind in ("folder", "link_to_folder"):
        folder = (day if kind == "folder" else targets) / f"d{number}"
        folder.mkdir()
        (folder / "inner.json").write_bytes(body)
        if kind == "link_to_folder":
            (day / f"d{number}").symlink_to(folder, target_is_directory=True)
        return {f"d{number}/inner.json": body}
    if kind == "dangling_link":
        (day / name).symlink_to(targets / f"gone{number}.json")
    elif kind == "fifo":
        os.mkfifo(day / name)
    elif kind == "link_loop":
        (day / name).symlink_to(day, target_is_directory=True)
    elif kind == "empty_folder":
        (day / f"d{number}").mkdir()
    elif kind == "link_to_empty_folder":
        (targets / f"d{number}").mkdir()
        (day / f"d{number}").symlink_to(targets / f"d{number}", target_is_directory=True)
    return {}


def upload(root: Path, day: str) -> tuple[int, str]:
    """`zfish upload` as the console script runs it (in process): its exit status and standard error."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(["upload", str(root / "lab"), "--day", day])
        except SystemExit as exc:
            status = exc.code
    return status, err.getvalue()


def landed(root: Path, day: str) -> dict[str, bytes]:
    folder = root / "zfish" / "lake" / "use-cases" / "fish-demo" / "observations" / f"day={day}"
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from(LANDS + REFUSED), min_size=1, max_size=6))
def test_every_entry_of_a_day_folder_is_landed_or_named(kinds):
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        root = Path(tmp)
        mp.setenv("ZFISH_DATA_DIR", str(root / "zfish"))
        mp.setenv("ZFISH_DEPLOYMENT", "local")
        day, targets = root / "lab" / "observations" / f"day={DAY}", root / "targets"
        day.mkdir(parents=True)
        targets.mkdir()
        expected = {}
        for number, kind in enumerate(kinds):
            expected.update(make_entry(day, targets, number, kind))
        status, err = upload(root, DAY)
        refused = [refused_name(n, kind) for n, kind in enumerate(kinds) if kind in REFUSED]
        if refused:
            assert status == 2 and not landed(root, DAY), err
            for name in refused:
                assert f"{name}: " in err, (name, err)
            assert "nothing was landed" in err
        else:
            assert status == 0, err
            assert landed(root, DAY) == expected


def test_each_refused_kind_says_what_it_is(tmp_path, monkeypatch):
    monkeypatch.setenv("ZFISH_DATA_DIR", str(tmp_path / "zfish"))
    day = tmp_path / "lab" / "observations" / f"day={DAY}"
    day.mkdir(parents=True)
    for number, kind in enumerate(REFUSED):
        make_entry(day, tmp_path, number, kind)
    status, err = upload(tmp_path, DAY)
    assert status == 2
    assert f"e0.json: a dangling symbolic link (to '{tmp_path}/gone0.json', which does not exist)" in err
    assert "e1.json: a named pipe (FIFO)" in err
    assert f"e2.json: a symbolic link to '{day}', a folder it is in (a loop)" in err
    assert "d3: an empty folder" in err and "d4: an empty folder" in err


def test_a_day_after_the_clock_is_refused_at_upload_naming_the_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("ZFISH_DATA_DIR", str(tmp_path / "zfish"))
    monkeypatch.setenv("ZFISH_CLOCK", "2025-05-11T18:00:00Z")
    for day in ("2025-05-11", "2025-05-12"):
        folder = tmp_path / "lab" / "observations" / f"day={day}"
        folder.mkdir(parents=True)
        (folder / "a.json").write_text("{}\n")
    assert upload(tmp_path, "2025-05-11")[0] == 0
    status, err = upload(tmp_path, "2025-05-12")
    assert status == 2 and not landed(tmp_path, "2025-05-12")
    assert ("day 2025-05-12 is after the clock: ZFISH_CLOCK=2025-05-11T18:00:00Z makes 2025-05-11 the last day "
            "with a partition") in err, err


def test_a_day_before_the_first_partition_is_refused_at_upload_naming_the_setting_to_change(tmp_path, monkeypatch):
    monkeypatch.setenv("ZFISH_DATA_DIR", str(tmp_path / "zfish"))
    monkeypatch.setenv("ZFISH_CLOCK", "2025-05-11T18:00:00Z")
    folder = tmp_path / "lab" / "observations" / "day=2025-04-04"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text("{}\n")
    status, err = upload(tmp_path, "2025-04-04")
    assert status == 2 and not landed(tmp_path, "2025-04-04")
    assert "day 2025-04-04 is before ZFISH_SIM_START=2025-04-05, the first partition" in err, err
    assert "Set ZFISH_SIM_START to 2025-04-04 or earlier" in err and "evening" not in err, err


def test_a_table_the_folder_has_no_day_of_is_left_in_the_lake_and_said_so(tmp_path, monkeypatch):
    """Re-sending a day's observations without its outcomes folder leaves the lake's outcomes of the day as they
    are (no retraction); the upload said nothing of them, so whether they were kept or dropped was a guess."""
    monkeypatch.setenv("ZFISH_DATA_DIR", str(tmp_path / "zfish"))
    monkeypatch.setenv("ZFISH_CLOCK", "2025-05-11T18:00:00Z")
    for table in ("observations", "outcomes"):
        folder = tmp_path / "lab" / table / f"day={DAY}"
        folder.mkdir(parents=True)
        (folder / "a.json").write_text("{}\n")
    assert upload(tmp_path, DAY)[0] == 0
    shutil.rmtree(tmp_path / "lab" / "outcomes")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["upload", str(tmp_path / "lab"), "--day", DAY]) == 0
    lake_day = tmp_path / "zfish" / "lake" / "use-cases" / "fish-demo" / "outcomes" / f"day={DAY}"
    assert (lake_day / "a.json").read_text() == "{}\n"
    said = [line for line in out.getvalue().splitlines() if line.startswith(f"outcomes day={DAY}")]
    assert said == [f"outcomes day={DAY}: no {tmp_path / 'lab' / 'outcomes' / f'day={DAY}'} folder, so the lake's day "
                    f"is left as it is (it keeps its 1 data files at file://{lake_day}); to retract it, upload an "
                    f"empty outcomes/day={DAY}/ folder"], out.getvalue()
