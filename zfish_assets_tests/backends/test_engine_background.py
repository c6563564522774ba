"""The warm engine started in the background (`make dev`): runs with `ZFISH_SPARK_REMOTE=warm` wait for it
with one log line, fail at once naming the fix when none is coming, and `zfish engine stop` stops a start
still under way as well as the server. Stand-in processes (`sleep`) play the starter and the server: what is
tested is the state files and the waiting, not Spark (the walkthrough on the warm engine covers that)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import asdict

import pytest

from zfish_assets.backends import connect_server
from zfish_assets.backends.connect_server import STARTER, ServerState, state_file, stop, wait_ready
from zfish_assets.backends.spark_session import SparkEnvironmentError


def sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def starter_stand_in() -> subprocess.Popen:
    """A process that looks like a background start (`python -m zfish_assets.backends.connect_server`)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", connect_server.__name__],
                            start_new_session=True)


def gone(process: subprocess.Popen, within_s: float = 10.0) -> bool:
    try:
        process.wait(within_s)
    except subprocess.TimeoutExpired:
        return False
    return True


def record(home, process: subprocess.Popen, ready: bool) -> ServerState:
    secret = home / "secret"
    secret.write_text("s3cr3t")
    state = ServerState(pid=process.pid, port=1, code_sha256="x", log=str(home / "server.log"),
                        secret_file=str(secret), ready=ready)
    state_file(home).write_text(json.dumps(asdict(state)))
    return state


def test_a_run_waits_for_the_engine_that_is_starting_and_says_so_once(tmp_path):
    starter, server = starter_stand_in(), sleeper()
    try:
        (tmp_path / STARTER).write_text(str(starter.pid))
        record(tmp_path, server, ready=False)
        threading.Timer(1.5, lambda: record(tmp_path, server, ready=True)).start()
        lines: list[str] = []
        began = time.monotonic()
        state = wait_ready(lines.append, home=tmp_path, timeout_s=30)
        assert state.ready and state.pid == server.pid and time.monotonic() - began >= 1.0
        assert len(lines) == 1 and "waiting for the warm engine" in lines[0] and str(starter.pid) in lines[0]
        assert "s3cr3t" not in lines[0]
    finally:
        starter.kill(), server.kill(), starter.wait(), server.wait()


def test_without_an_engine_running_or_starting_a_run_fails_at_once_naming_the_fix(tmp_path):
    began = time.monotonic()
    with pytest.raises(SparkEnvironmentError, match=r"ZFISH_SPARK_REMOTE=warm.*`zfish engine start`.*start\.log"):
        wait_ready(print, home=tmp_path, timeout_s=30)
    assert time.monotonic() - began < 2
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / STARTER).write_text(str(dead.pid))  # a start that ended without a server: its log says why
    with pytest.raises(SparkEnvironmentError, match=r"no warm engine runs or is starting"):
        wait_ready(print, home=tmp_path, timeout_s=30)


def test_stop_stops_a_start_under_way_and_the_server(tmp_path):
    starter, server = starter_stand_in(), sleeper()
    (tmp_path / STARTER).write_text(str(starter.pid))
    record(tmp_path, server, ready=False)
    assert stop(tmp_path, timeout_s=10)
    assert gone(starter) and gone(server)
    assert not (tmp_path / STARTER).exists() and not state_file(tmp_path).exists()
    assert not (tmp_path / "secret").exists()


def test_stop_never_signals_a_process_that_is_not_a_start(tmp_path):
    """A `starter.pid` left behind whose pid a different process took since: that process is left alone."""
    other = sleeper()
    try:
        (tmp_path / STARTER).write_text(str(other.pid))
        assert connect_server._starter(tmp_path) is None
        assert stop(tmp_path, timeout_s=2) is False
        assert other.poll() is None
    finally:
        other.kill(), other.wait()


def _launch_stand_in(home, monkeypatch, wait_listening) -> None:
    """`start` with a stand-in server (`sleep`, in its own session as the JVM is) and `wait_listening` in
    place of the wait for its port: no Java."""
    def launch(port, code, path, spark_settings):
        process = sleeper()
        state = ServerState(pid=process.pid, port=0, code_sha256=code, log=str(path.with_name("server.log")))
        path.write_text(json.dumps(asdict(state)))
        path.with_name("stand-in.pid").write_text(str(process.pid))
        return process, state

    monkeypatch.setattr(connect_server, "check_java", lambda: None)
    monkeypatch.setattr(connect_server, "_launch", launch)
    monkeypatch.setattr(connect_server, "_wait_listening", wait_listening)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_an_interrupted_start_stops_the_server_it_launched(tmp_path, monkeypatch):
    """The server runs in its own session (Ctrl-C in the terminal does not reach it): a start interrupted
    while it waits stops it, and leaves no record of a server."""
    def interrupted(process, state, home, timeout_s, asked):
        raise KeyboardInterrupt

    _launch_stand_in(tmp_path, monkeypatch, interrupted)
    with pytest.raises(KeyboardInterrupt):
        connect_server.start(home=tmp_path)
    pid = int((tmp_path / "stand-in.pid").read_text())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid) and connect_server.read_state(tmp_path) is None


STARTS_AND_WAITS = """
import sys, time
from zfish_assets_tests.backends import test_engine_background as t
from zfish_assets.backends import connect_server
class Patch:
    def setattr(self, target, name, value):
        setattr(target, name, value)
t._launch_stand_in(None, Patch(), lambda *args: time.sleep(120))
from zfish_assets.tools.cli import main
sys.exit(main(["engine", "start"]))
"""


def test_sigterm_to_zfish_engine_start_stops_the_server_it_launched(tmp_path):
    import os
    import signal

    env = {**os.environ, "ZFISH_DATA_DIR": str(tmp_path)}
    starting = subprocess.Popen([sys.executable, "-c", STARTS_AND_WAITS], env=env, cwd=connect_server.settings.REPO_ROOT)
    marker = tmp_path / "engine" / "stand-in.pid"
    deadline = time.monotonic() + 60
    while not marker.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(marker.read_text())
    starting.send_signal(signal.SIGTERM)
    assert gone(starting, 20)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the server outlived the start that launched it"
