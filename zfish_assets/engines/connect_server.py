"""The warm local engine: Spark's own Spark Connect server, with the Hudi bundle and zfish's session
settings loaded once, shared by every run that sets `ZFISH_SPARK_REMOTE` to its URL.

A fresh JVM per Dagster run paid class loading and code generation on its first jobs (Hudi's first
listing alone 5-7 s, BENCHMARKS.md); a long-lived server pays them once. It is Spark 3.5.4's
`SparkConnectServer` (the `spark-connect_2.12` jar from Maven Central, `bin/fetch-jars`) started
through pyspark's `spark-submit`, with the settings of `spark.spark_conf`, and the digest of the
job code it was started with in its conf (`spark.zfish.code_sha256`): a run refuses a server whose
digest differs from its checkout's, and `start` replaces such a server. Its state (pid, port, code,
log) is `$ZFISH_DATA_DIR/engine/server.json`; `make dev` starts and stops it, as the test suite
does with `--spark-connect`.

Spark 3.5's server has no authentication and listens on every interface of the machine (a binding
address arrives with Spark 4.0): it is for a laptop or a CI box, not for a shared network.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from zfish_assets import settings
from zfish_assets.engines.job_code import script_sha256
from zfish_assets.engines.spark_session import CODE_CONF, SparkEnvironmentError, SparkSettings, check_java, spark_conf
from zfish_assets.engines.warm_up import warm_up
from zfish_assets.runtimes import jar_name, runtime

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DEFAULT_PORT = 15002
START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ServerState:
    """A server this machine started: its process, port, the job code it runs and its log."""

    pid: int
    port: int
    code_sha256: str
    log: str

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"


def state_file(home: Path | None = None) -> Path:
    """Where the server's state is recorded: `home` (default `$ZFISH_DATA_DIR/engine`)/server.json."""
    return (home or settings.data_dir() / "engine") / "server.json"


def read_state(home: Path | None = None) -> ServerState | None:
    """The recorded server, if its process is still alive (a dead one's record is removed)."""
    path = state_file(home)
    if not path.is_file():
        return None
    state = ServerState(**json.loads(path.read_text()))
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    return state


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def server_command(port: int, code: str, spark_settings: SparkSettings | None = None) -> list[str]:
    """`spark-submit` of Spark's Connect server with every zfish session setting and the code digest."""
    import pyspark

    spark_settings = spark_settings or SparkSettings.from_env()
    conf = spark_conf(spark_settings, long_lived=True)
    connect_jar = spark_settings.jars_dir / jar_name(runtime().connect_coordinate)
    if not connect_jar.is_file():
        raise SparkEnvironmentError(
            f"Spark jars missing from {spark_settings.jars_dir}: {connect_jar.name}. "
            "Run `make jars` (or `bin/fetch-jars`) to fetch them with Maven.")
    conf["spark.jars"] = ",".join([conf["spark.jars"], str(connect_jar)])
    conf.update({"spark.connect.grpc.binding.port": str(port), CODE_CONF: code,
                 "spark.app.name": "zfish-spark-connect"})
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    return [str(submit), "--class", SERVER_CLASS, "--master", spark_settings.master,
            *[arg for key, value in sorted(conf.items()) for arg in ("--conf", f"{key}={value}")]]


def start(port: int = DEFAULT_PORT, home: Path | None = None, timeout_s: float = START_TIMEOUT_S,
          warm: bool = True) -> ServerState:
    """The running server for this checkout's code: the recorded one if it runs this code, else a
    new one (a stale server is stopped first). Waits until it accepts connections, then (`warm`)
    until it has run the job's steps once on a throwaway table (`warm_up`), so that the first run
    does not pay the new JVM's first Hudi commit and first plans."""
    code = script_sha256()
    running = read_state(home)
    if running is not None and running.code_sha256 == code and _answers(running.port):
        return running
    if running is not None:
        stop(home)
    if _answers(port):
        raise SparkEnvironmentError(f"port {port} is taken by a process zfish did not start: choose another port")
    check_java()
    path = state_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.with_name("server.log")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    env.pop(settings.SPARK_REMOTE.name, None)
    with log.open("wb") as out:
        process = subprocess.Popen(server_command(port, code), stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    state = ServerState(pid=process.pid, port=port, code_sha256=code, log=str(log))
    path.write_text(json.dumps(asdict(state)))
    deadline = time.monotonic() + timeout_s
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(home)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise SparkEnvironmentError(
                f"the Spark Connect server did not start ({'exited ' + str(process.returncode) if process.returncode is not None else f'not listening after {timeout_s:g}s'}); "
                f"the end of {log}:\n{tail}")
        time.sleep(0.5)
    if warm:
        try:
            warm_up(state.url, path.with_name("warm-up"))
        except Exception as exc:
            stop(home)
            raise SparkEnvironmentError(f"the new Spark Connect server failed its warm-up job ({exc}); see {log}") from exc
    return state


def stop(home: Path | None = None, timeout_s: float = 30.0) -> bool:
    """Stop the recorded server (its whole process group: the JVM and its Python workers); False if none ran."""
    state = read_state(home)
    if state is None:
        return False
    try:
        os.killpg(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.kill(state.pid, 0)
            except ProcessLookupError:
                break
            _reap(state.pid)
            time.sleep(0.2)
        else:
            os.killpg(state.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(state.pid)
    state_file(home).unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when this process started the server (else it lingers as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
