"""A newcomer's first commands on a machine that lacks something: one line naming the fix, a non-zero
exit, and nothing written before it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from zfish_assets_tests.support.ports import free_port

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


def test_the_demo_stops_at_the_first_failed_evening_with_its_cause_in_a_line(tmp_path):
    """The first evening's join cannot reach its engine (a warm engine named but gone): the demo says
    why in one line, stops there (no second evening), and exits non-zero. A short simulation: three
    days from 2025-05-08, labels a day later."""
    port = free_port()  # nothing listens there
    result = zfish("demo", ZFISH_DATA_DIR=str(tmp_path / "data"), ZFISH_SIM_START="2025-05-08",
                   ZFISH_LABEL_DELAY_DAYS="1", ZFISH_SPARK_REMOTE=f"sc://127.0.0.1:{port}/;x-zfish-token=gone")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "Evening of 2025-05-10" in out and "Evening of 2025-05-11" not in out, out
    (failed,) = [line for line in out.splitlines() if "FAILED:" in line]
    assert f"no Spark Connect server answers at sc://127.0.0.1:{port}" in failed and "gone" not in failed, failed
    assert "Stopped after the evening of 2025-05-10" in out and "Traceback" not in out + result.stderr


def test_a_bad_setting_read_late_stops_every_command_before_anything_is_written(tmp_path):
    """Settings read only when Spark starts or a run logs (memory, log levels, master) are checked with all the
    others when a command starts: a usage error naming the variable, not a Java stack trace after the landing."""
    data = tmp_path / "data"
    for variable, value, expected in [("ZFISH_SPARK_DRIVER_MEMORY", "lots", "a memory size such as 4g"),
                                      ("ZFISH_SPARK_LOG_LEVEL", "loud", "a log level: ALL, TRACE"),
                                      ("ZFISH_LOG_LEVEL", "verbose", "a log level: CRITICAL, ERROR"),
                                      ("ZFISH_SPARK_MASTER", "local[two]", "a Spark master: local[N]"),
                                      ("ZFISH_CRAWLER_POLL_S", "inf", "a number of seconds from 0.01 to 604800"),
                                      ("ZFISH_LABEL_DELAY_SPREAD", "9-3", "`off` or MIN-MAX days")]:
        result = zfish("demo", ZFISH_DATA_DIR=str(data), **{variable: value})
        assert result.returncode == 2, result.stderr
        assert f"zfish demo: error: {variable}={value!r} is not {expected}" in result.stderr, result.stderr
        assert not data.exists() and "Evening" not in result.stdout


def test_the_demos_hint_to_open_the_ui_is_a_command_a_shell_takes_whole(tmp_path, monkeypatch):
    import shlex

    from zfish_assets.tools.demo import open_hint

    data = tmp_path / "dé mo's data"
    monkeypatch.setenv("ZFISH_DATA_DIR", str(data))
    command = next(line for line in open_hint().splitlines() if "zfish dev" in line)
    assert shlex.split(command) == [f"ZFISH_DATA_DIR={data}", ".venv/bin/zfish", "dev"]


def test_an_extra_argument_is_refused_with_the_subcommands_usage():
    for command, usage in [(["demo", "extra"], "usage: zfish demo [-h]"),
                           (["check", "--all", "--bogus"], "usage: zfish check [-h]")]:
        result = zfish(*command)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(usage), result.stderr
        assert f"zfish {command[0]}: error: unrecognized arguments: {command[-1]}" in result.stderr, result.stderr


def test_a_first_day_after_the_clock_is_refused_naming_both(tmp_path):
    """ZFISH_SIM_START after the clock's last evening leaves no day a partition: said at once, not an empty UI."""
    data = tmp_path / "data"
    for command, status in ((["check", "--all"], 2), (["demo"], 1)):
        result = zfish(*command, ZFISH_DATA_DIR=str(data), ZFISH_SIM_START="2030-01-01",
                       ZFISH_CLOCK="2025-05-11T18:00:00Z")
        assert result.returncode == status, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        assert ("ZFISH_SIM_START=2030-01-01 is after the clock's last evening, 2025-05-11 "
                "(ZFISH_CLOCK=2025-05-11T18:00:00Z): no day would be a partition") in result.stderr, result.stderr
        assert not (data / "lake").exists()


def test_a_demo_before_its_evenings_on_the_clock_is_refused_naming_the_clock(tmp_path):
    """The demo runs the evenings of 2025-05-10 and 2025-05-11: a ZFISH_CLOCK before the second landed days
    until an internal CheckError ("Partition key range end ... is after the partitions definition end
    time") and recorded that clock in the data dir. Now: one line naming the clock, nothing written."""
    data = tmp_path / "data"
    result = zfish("demo", ZFISH_DATA_DIR=str(data), ZFISH_CLOCK="2025-05-01T19:00:00Z")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "ZFISH_CLOCK=2025-05-01T19:00:00Z makes 2025-05-01 the last day" in lines[0], lines
    assert "evenings of 2025-05-10 and 2025-05-11" in lines[0] and "nothing written" in lines[0], lines
    assert not (data / "lake").exists() and not (data / "clock").exists()


@pytest.mark.parametrize("parts", [{"ZFISH_DEPLOYMENT": "aws"}, {"ZFISH_DEPLOYMENT": "aws", "ZFISH_ENGINE": "spark"}])
def test_no_warm_engine_for_a_deployment_whose_joins_cannot_use_one(tmp_path, parts):
    """The warm engine serves Spark runs on this machine's disk; a run given one for a lake on S3 refuses
    it. So `make dev`'s background start starts nothing and prints no URL (runs keep their own engine),
    and an explicit start is refused naming the settings."""
    env = {"ZFISH_DATA_DIR": str(tmp_path / "data"), "ZFISH_S3_BUCKET": "zfish-lake", "ZFISH_AWS_REGION": "us-east-1",
           **parts}
    background = zfish("engine", "start", "--background", **env)
    assert background.returncode == 0 and background.stdout.strip() == "", background
    engine = parts.get("ZFISH_ENGINE", "glue")
    assert "no warm engine started" in background.stderr and f"ZFISH_ENGINE={engine} on ZFISH_LAKE=s3" in background.stderr
    assert not (tmp_path / "data" / "engine").exists()
    foreground = zfish("engine", "start", **env)
    assert foreground.returncode == 1 and "ZFISH_LAKE=s3" in foreground.stderr and "Traceback" not in foreground.stderr


def test_a_first_day_after_today_on_the_real_clock_is_refused_naming_it(tmp_path):
    """The same with no simulated clock: a check of the first day crashed with an IndexError (no partition)."""
    data = tmp_path / "data"
    for command in (["check", "--all"], ["check", "--day", "2262-04-10"]):
        result = zfish(*command, ZFISH_DATA_DIR=str(data), ZFISH_SIM_START="2262-04-10")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "ZFISH_SIM_START=2262-04-10 is after today, " in result.stderr, result.stderr
        assert f"(the real clock (ZFISH_CLOCK unset, no clock recorded in {data / 'clock'})): no day would be a " \
               "partition" in result.stderr, result.stderr
