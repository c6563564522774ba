"""A newcomer's first commands on a machine that lacks something: one line naming the fix, a non-zero
exit, and nothing written before it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ZFISH = str(Path(sys.executable).parent / "zfish")


def zfish(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("ZFISH_SPARK_REMOTE", "ZFISH_CLOCK")}
    return subprocess.run([ZFISH, *args], env={**environ, **env}, capture_output=True, text=True, timeout=300)


def test_the_demo_without_java_refuses_before_landing_anything(tmp_path):
    data = tmp_path / "data"
    result = zfish("demo", ZFISH_DATA_DIR=str(data), JAVA_HOME=str(tmp_path / "no-jdk"))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Java 17 is required" in lines[0] and "nothing written" in lines[0], result.stderr
    assert not (data / "lake").exists() and "Evening" not in result.stdout


def test_an_unwritable_data_dir_is_one_line_naming_the_setting(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for command in (["demo"], ["check", "--all"]):
        result = zfish(*command, ZFISH_DATA_DIR=str(blocker / "data"))
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and f"ZFISH_DATA_DIR={blocker / 'data'} is not a writable folder" in lines[0], lines
