"""The command line's frictions: a range with no simulated day, progress on a terminal and in a log.

No Spark: `zfish generate` and `zfish upload` into a local lake, run as the installed script (in a
pseudo-terminal for the bar), their output read back and compared with counts made here.
"""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zfish_assets.tools.cli import main
from zfish_assets.tools.progress import Progress

ZFISH = str(Path(sys.executable).parent / "zfish")


@pytest.fixture
def sim_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("ZFISH_SIM_START", "ZFISH_FISH_PER_DAY", "ZFISH_IMAGES_PER_FISH", "ZFISH_LABEL_DELAY_DAYS",
                 "ZFISH_SEED", "ZFISH_LABEL_DELAY_SPREAD"):
        monkeypatch.delenv(name, raising=False)
    return {k: v for k, v in os.environ.items() if not k.startswith("ZFISH_SIM")}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_a_line_every_interval_and_one_at_the_end() -> None:
    clock, out = FakeClock(), io.StringIO()
    with Progress("work", 100, "files", stream=out, interval_s=10, clock=clock) as bar:
        for _ in range(100):
            clock.now += 0.5  # 50 s in all: a line at 10, 20, 30, 40 and 50 s
            bar.advance()
    lines = out.getvalue().splitlines()
    assert lines[:5] == [f"work: {n}/100 files ({n}%), 2 files/s" + (f", {(100 - n) // 2}s left" if n < 100 else "")
                         for n in (20, 40, 60, 80, 100)]
    assert lines[5:] == ["work: 100 files in 50s"] and "\r" not in out.getvalue()


def test_a_range_before_the_simulation_start_is_refused_saying_why_and_what_can_be(tmp_path, sim_env, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exited:
        main(["generate", "--out", str(out), "--start", "2025-01-01", "--end", "2025-02-20"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "2025-01-01..2025-02-20 holds no simulated day" in err
    assert "ZFISH_SIM_START=2025-04-05 and days before it hold no fish" in err
    assert "--start 2025-04-05 --end 2025-05-25" in err  # the same 51 days, from the start on
    assert not out.exists()


def test_a_range_reaching_before_the_start_writes_from_the_start_and_says_so(tmp_path, sim_env, capsys):
    out = tmp_path / "out"
    assert main(["generate", "--out", str(out), "--start", "2025-04-01", "--end", "2025-04-06", "--fish-per-day", "2"]) == 0
    captured = capsys.readouterr()
    assert "note: 2025-04-01..2025-04-04 is before ZFISH_SIM_START=2025-04-05" in captured.err
    assert sorted(p.name for p in (out / "observations").iterdir()) == ["day=2025-04-05", "day=2025-04-06"]
    assert "no outcomes yet: a label arrives 32 days after" in captured.out and "the first on 2025-05-07" in captured.out


def test_generate_logs_progress_lines_off_a_terminal(tmp_path, sim_env):
    # 2,500 fish a day are three blocks of photos: with no interval, a line per block, then the total.
    env = {**sim_env, "ZFISH_PROGRESS_INTERVAL_S": "0"}
    result = subprocess.run([ZFISH, "generate", "--out", str(tmp_path), "--start", "2025-04-05", "--end", "2025-04-06",
                             "--fish-per-day", "2500", "--images-per-fish", "1", "--workers", "1"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    photos = len(list(tmp_path.glob("observations/day=*/*.json")))
    assert photos == 5000
    counts = [int(n.replace(",", "")) for n in re.findall(r"^generate 2025-04-05\.\.2025-04-06: ([\d,]+)/5,000 photos",
                                                          result.stderr, re.M)]
    assert counts == [1000, 2000, 2500, 3500, 4500, 5000]
    assert re.search(r"^generate 2025-04-05\.\.2025-04-06: 5,000 photos in \d+s$", result.stderr, re.M)


def test_generate_draws_a_bar_on_a_terminal(tmp_path, sim_env):
    primary, secondary = pty.openpty()
    process = subprocess.Popen([ZFISH, "generate", "--out", str(tmp_path), "--start", "2025-04-05", "--end",
                                "2025-04-05", "--fish-per-day", "3000", "--images-per-fish", "1", "--workers", "1"],
                               stdout=subprocess.DEVNULL, stderr=secondary, env=sim_env)
    os.close(secondary)
    screen = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        screen += chunk
    assert process.wait(timeout=300) == 0
    os.close(primary)
    redraws = screen.decode().split("\r")
    assert redraws[-1].strip() == "" and "[" + "#" * 30 + "] 3,000/3,000 photos (100%)" in redraws[-2]
    assert "\n" not in "".join(redraws[1:-1])  # drawn in place, one line


def test_upload_logs_files_copied_and_stored(tmp_path, sim_env):
    source = tmp_path / "lab"
    assert main(["generate", "--out", str(source), "--start", "2025-04-05", "--end", "2025-04-05",
                 "--fish-per-day", "40", "--workers", "1"]) == 0
    env = {**sim_env, "ZFISH_DATA_DIR": str(tmp_path / "zfish"), "ZFISH_DEPLOYMENT": "local",
           "ZFISH_PROGRESS_INTERVAL_S": "3600"}
    result = subprocess.run([ZFISH, "upload", str(source), "--day", "2025-04-05"], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    files = len(list((source / "observations" / "day=2025-04-05").iterdir()))
    landed = tmp_path / "zfish" / "lake" / "use-cases" / "fish-demo" / "observations" / "day=2025-04-05"
    assert len(list(landed.iterdir())) == files == 120
    assert re.search(rf"^observations day=2025-04-05: copied: {files} files in \d+s$", result.stderr, re.M)
    assert re.search(rf"^observations day=2025-04-05: stored in file://\S+: {files} files in \d+s$", result.stderr, re.M)


def test_an_out_folder_that_cannot_be_written_is_a_usage_error_naming_it(tmp_path, sim_env, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in (blocker, blocker / "sub"):
        with pytest.raises(SystemExit) as exited:
            main(["generate", "--out", str(out), "--start", "2025-04-05", "--end", "2025-04-05"])
        assert exited.value.code == 2
        assert f"--out {out} is not a writable folder" in capsys.readouterr().err
