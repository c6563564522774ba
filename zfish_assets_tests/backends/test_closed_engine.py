"""The warm engine is closed: bound to loopback, refusing clients without its per-start secret, and
refusing (in a network namespace of its own) a client from outside loopback; its port is the one asked
for, or a free one, with no race between data dirs starting at once.

Two servers serve the module, started at once in two data dirs (a Connect server's start costs tens of
seconds): `a` on a port the kernel picks, `b` on a port asked for. They are started without the
warm-up job, which these tests do not need.
"""

from __future__ import annotations

import gc
import json
import os
import re
import secrets
import shutil
import socket
import stat
import string
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zfish_assets.backends import connect_guard, connect_server
from zfish_assets.backends.spark_session import (
    CODE_CONF,
    SparkEnvironmentError,
    StaleEngineError,
    masked_url,
    remote_session,
)
from zfish_assets.tools.cli import main as zfish
from zfish_assets_tests.support.ports import free_port

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def connect_pass(request) -> None:
    """This module's clients are Spark Connect sessions, which pyspark refuses in a process that already
    holds a classic session (a pytest worker that ran other Spark modules): it runs in `make test`'s
    Connect pass (`--spark-connect`), a process of its own."""
    if not request.config.getoption("--spark-connect"):
        pytest.skip("Spark Connect clients: runs in the Connect pass (pytest --spark-connect)")


@pytest.fixture(scope="module")
def engines(tmp_path_factory, connect_pass):
    """Servers `a` (no port asked) and `b` (a free port asked for), started at the same time."""
    root = tmp_path_factory.mktemp("closed-engine")
    homes = {"a": root / "data-a" / "engine", "b": root / "data-b" / "engine"}
    asked = free_port()
    with ThreadPoolExecutor(2) as pool:
        futures = {"a": pool.submit(connect_server.start, None, homes["a"]),
                   "b": pool.submit(connect_server.start, asked, homes["b"])}
        try:
            states = {name: future.result() for name, future in futures.items()}
            yield {"asked": asked, "homes": homes, **states}
        finally:
            for home in homes.values():
                connect_server.stop(home)


def _stop(spark) -> None:
    """Stop a session with no other session left to collect: pyspark 3.5 deadlocks when a collected
    session's `__del__` runs on its release pool's thread while this thread stops one."""
    gc.collect()
    spark.stop()
    gc.collect()


@pytest.fixture(autouse=True)
def _collected_sessions(connect_pass):
    yield
    gc.collect()


def _query(url: str) -> int:
    spark = remote_session(url)
    try:
        return int(spark.range(7).count())
    finally:
        _stop(spark)


def _secret(state) -> str:
    return Path(state.secret_file).read_text().strip()


def test_engines_started_at_once_each_get_a_port_and_the_one_asked_for_is_honoured(engines):
    a, b = engines["a"], engines["b"]
    assert b.port == engines["asked"]
    assert a.port not in (0, b.port)
    assert _query(a.url) == 7 and _query(b.url) == 7


def test_a_client_without_the_secret_is_refused_naming_the_fix(engines):
    port = engines["a"].port
    with pytest.raises(StaleEngineError, match=r"refused this client: .*needs its secret.*`zfish engine start`"):
        _query(f"sc://127.0.0.1:{port}")


def test_a_wrong_secret_is_refused_and_secrets_differ_per_server(engines):
    a, b = engines["a"], engines["b"]
    assert _secret(a) != _secret(b) and len(_secret(a)) >= 32
    for wrong in (_secret(b), secrets.token_hex(32), _secret(a)[:-1]):
        with pytest.raises(StaleEngineError, match=r"refused this client: wrong x-zfish-token") as refused:
            _query(f"sc://127.0.0.1:{a.port}/;x-zfish-token={wrong}")
        assert wrong not in str(refused.value)


def test_the_right_secret_is_served_this_checkouts_code(engines):
    a = engines["a"]
    spark = remote_session(a.url)
    try:
        assert spark.conf.get(CODE_CONF) == a.code_sha256
        assert spark.range(3).selectExpr("sum(id)").first()[0] == 3
    finally:
        _stop(spark)


def test_the_server_works_in_its_engine_folder_and_keeps_no_url_in_its_settings(engines):
    """Spark's Connect server makes its artifact folder (and Spark SQL its warehouse) in its working directory:
    the engine folder, not the checkout or wherever `make dev` was typed. A session's settings on the server
    hold no `spark.remote` (pyspark's builder copied the URL there, secret included)."""
    a, home = engines["a"], engines["homes"]["a"]
    spark = remote_session(a.url)
    try:
        assert spark.range(3).count() == 3
        assert spark.conf.get("spark.remote", None) is None
    finally:
        _stop(spark)
    assert Path(f"/proc/{a.pid}/cwd").resolve() == home.resolve()
    assert [p.name for p in (home / "artifacts").iterdir()], "no artifact folder in the engine folder"


def test_the_secret_is_readable_by_its_user_only_and_written_nowhere_else(engines):
    a, home = engines["a"], engines["homes"]["a"]
    assert stat.S_IMODE(os.stat(a.secret_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    secret = _secret(a)
    for path in home.iterdir():
        if path.is_file() and path.name != "secret":
            assert secret not in path.read_text(errors="replace"), path
    for pid in _process_group(a.pid):
        assert secret not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")


def _process_group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getpgid(int(entry.name)) == pgid:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_every_socket_the_server_listens_on_is_loopback(engines):
    """Read with `ss`, not with the code under test: the listening TCP sockets of the server's processes."""
    if shutil.which("ss") is None:
        pytest.skip("needs `ss` (iproute2) to list listening sockets")
    a = engines["a"]
    group = set(_process_group(a.pid))
    listed = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    ours = [line.split()[3] for line in listed.splitlines()
            if any(int(pid) in group for pid in re.findall(r"pid=(\d+)", line))]
    assert f"{a.port}" in {address.rpartition(":")[2] for address in ours}, ours
    for address in ours:
        host = address.rpartition(":")[0].strip("[]")
        assert host in ("127.0.0.1", "::ffff:127.0.0.1", "::1"), f"{address} listens beyond loopback"


def test_a_taken_port_is_refused_naming_the_port_and_its_holder(engines, tmp_path):
    a = engines["a"]
    with pytest.raises(SparkEnvironmentError,
                       match=rf"port {a.port} on 127.0.0.1 is taken by pid {a.pid} \(a zfish warm engine of another"):
        connect_server.start(port=a.port, home=tmp_path / "engine")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(SparkEnvironmentError, match=rf"port {port} on 127.0.0.1 is taken by pid {os.getpid()} "):
            connect_server.start(port=port, home=tmp_path / "engine")
    assert connect_server.read_state(tmp_path / "engine") is None  # nothing was started


def test_the_command_refuses_a_taken_port_in_one_line(engines, tmp_path, monkeypatch, capsys):
    a = engines["a"]
    monkeypatch.setenv("ZFISH_DATA_DIR", str(tmp_path))
    assert zfish(["engine", "start", "--port", str(a.port)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"zfish: port {a.port} on 127.0.0.1 is taken by pid {a.pid} (a zfish warm engine")


def test_a_data_dirs_engine_is_not_moved_to_another_port_silently(engines):
    b, home = engines["b"], engines["homes"]["b"]
    assert connect_server.start(port=b.port, home=home) == b
    assert connect_server.start(home=home) == b
    other = free_port()
    with pytest.raises(SparkEnvironmentError, match=rf"already runs on port {b.port} .*to start one on port {other}"):
        connect_server.start(port=other, home=home)


def test_status_and_start_show_the_url_with_its_secret_masked(engines, monkeypatch, capsys):
    a = engines["a"]
    monkeypatch.setenv("ZFISH_DATA_DIR", str(engines["homes"]["a"].parent))
    assert zfish(["engine", "status"]) == 0
    shown = capsys.readouterr().out
    assert f"sc://127.0.0.1:{a.port}/;x-zfish-token=***" in shown and _secret(a) not in shown
    assert zfish(["engine", "start"]) == 0  # the running server: returned at once
    out, err = capsys.readouterr()
    assert out.strip() == a.url and _secret(a) in out  # stdout is for `export ZFISH_SPARK_REMOTE=$(...)`
    assert _secret(a) not in err


def test_a_client_from_outside_loopback_is_refused(tmp_path):
    """In a network namespace of the test's own, a server bound to every interface (the fallback, as if
    the loopback binding were lost) refuses a client whose address is not loopback, even with the secret."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs `unshare` and `ip` (util-linux, iproute2) to make a network namespace")
    for flags in (["-n"], ["-rn"]):
        probe = subprocess.run(["unshare", *flags, "true"], capture_output=True)
        if probe.returncode == 0:
            break
    else:
        pytest.skip(f"this user may not create a network namespace: {probe.stderr.decode().strip()}")
    done = subprocess.run(["unshare", *flags, sys.executable, str(HERE.parent / "support" / "outside_client.py"), str(tmp_path / "engine")],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "ZFISH_SPARK_REMOTE": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["peer"] == "10.200.0.1"
    assert "refused this client: zfish's warm engine serves clients on this machine's loopback only" in seen["outside"]
    assert seen["loopback"] == 7


@given(secret=st.text(alphabet=string.ascii_letters + string.digits + "-_.~", min_size=8, max_size=80),
       port=st.integers(1, 65535))
def test_a_url_is_shown_with_its_secret_masked(secret, port):
    url = f"sc://127.0.0.1:{port}/;user_id=zfish;x-zfish-token={secret};token={secret[::-1]}"
    shown = masked_url(url)
    assert shown == f"sc://127.0.0.1:{port}/;user_id=zfish;x-zfish-token=***;token=***"


def test_the_guard_is_compiled_once_per_source_and_spark(tmp_path):
    from zfish_assets.runtimes import jar_name
    from zfish_assets.settings import glue_runtime, jars_dir

    connect_jar = jars_dir() / jar_name(glue_runtime().connect_coordinate)
    built = connect_guard.guard_jar(tmp_path, connect_jar)
    with zipfile.ZipFile(built) as jar:
        names = set(jar.namelist())
    assert {"zfish/connect/SecretInterceptor.class", "zfish/connect/LoopbackConnectServer.class"} <= names
    stamp = built.stat().st_mtime_ns
    assert connect_guard.guard_jar(tmp_path, connect_jar) == built and built.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [built.name]  # no build folder left behind


def test_a_machine_without_javac_is_told_to_install_a_jdk(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jre"))  # a Java with no bin/javac
    with pytest.raises(SparkEnvironmentError, match=r"javac.*JAVA_HOME=.*jre.*install a JDK 17"):
        connect_guard.guard_jar(tmp_path, tmp_path / "spark-connect_2.12-3.5.4.jar")
