"""The warm local engine: Spark's own Spark Connect server, with the Hudi bundle and zfish's session
settings loaded once, shared by every run that sets `ZFISH_SPARK_REMOTE` to its URL.

A fresh JVM per Dagster run paid class loading and code generation on its first jobs (Hudi's first
listing alone 5-7 s, BENCHMARKS.md); a long-lived server pays them once. It is Spark 3.5.4's
Connect service (the `spark-connect_2.12` jar from Maven Central, `bin/fetch-jars`) started
through pyspark's `spark-submit`, with the settings of `spark.spark_conf`, and the digest of the
job code it was started with in its conf (`spark.zfish.code_sha256`): a run refuses a server whose
digest differs from its checkout's, and `start` replaces such a server. Its state (pid, port, code,
log, secret file) is `$ZFISH_DATA_DIR/engine/server.json`; `make dev` starts and stops it, as the
test suite does with `--spark-connect`.

The server is closed (`connect_guard`): it listens on 127.0.0.1 only, and refuses any call that
does not come from loopback or lacks its secret, a random value made at each start and kept in
`$ZFISH_DATA_DIR/engine/secret` (mode 0600); the URL `start` returns carries it, and everything
that shows the URL masks it. Without `port`, the kernel picks a free port as the server binds, so
engines of several data dirs started at once never race for one; a port asked for and taken is
refused naming what holds it.
"""

from __future__ import annotations

import fcntl
import importlib
import logging
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterator

from zfish_assets import settings
from zfish_assets.backends import connect_guard, ports
from zfish_assets.backends.job_code import script_sha256
from zfish_assets.backends.spark_session import (
    CODE_CONF, WARM, SparkEnvironmentError, SparkSettings, check_java, spark_conf)
from zfish_assets.runtimes import jar_name

SERVER_CLASS = connect_guard.MAIN_CLASS
START_TIMEOUT_S = 180.0
STARTER = "starter.pid"  # a background start's pid, while it runs
WARM_UP_ARG = "--warm-up"
_LABELS = {SERVER_CLASS: "a zfish warm engine of another data dir"}
WarmUp = Callable[[str, Path], object]
"""A new server's warm-up: given its URL and a folder of its own, runs the job's evenings on it and removes
the folder (`domain/warm_evenings.warm_up`, which lands and crawls: a layer above this one, so the
callers above pass it in)."""


@dataclass(frozen=True)
class ServerState:
    """A server this machine started: its process, port, the job code it runs, its log and secret's file."""

    pid: int
    port: int
    code_sha256: str
    log: str
    secret_file: str = ""
    ready: bool = False  # listening and warmed: what runs of `ZFISH_SPARK_REMOTE=warm` wait for

    @property
    def url(self) -> str:
        """What runs connect with (`ZFISH_SPARK_REMOTE`), secret included: print `masked_url` instead."""
        return connect_guard.url(self.port, self.secret_file)

    @property
    def masked_url(self) -> str:
        return connect_guard.masked(self.url)


def state_file(home: Path | None = None) -> Path:
    """Where the server's state is recorded: `home` (default `$ZFISH_DATA_DIR/engine`)/server.json."""
    return (home or settings.data_dir() / "engine") / "server.json"


def read_state(home: Path | None = None) -> ServerState | None:
    """The recorded server, if its process is still alive (a dead one's record is removed)."""
    path = state_file(home)
    if not path.is_file():
        return None
    known = {f.name for f in fields(ServerState)}
    state = ServerState(**{k: v for k, v in json.loads(path.read_text()).items() if k in known})
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    return state


def _serves(state: ServerState, code: str) -> bool:
    """Whether a recorded server is closed, runs this job code and answers."""
    closed = bool(state.secret_file) and Path(state.secret_file).is_file()
    return closed and state.code_sha256 == code and state.port > 0 and ports.answers(state.port)


def server_command(port: int, code: str, home: Path, spark_settings: SparkSettings | None = None) -> list[str]:
    """`spark-submit` of the closed Connect server (`connect_guard`'s jar, the application) with every
    zfish session setting, the code digest, and where it reads its secret and writes the port it bound."""
    import pyspark

    spark_settings = spark_settings or SparkSettings.from_env()
    conf = {connect_guard.BIND_CONF: ports.LOOPBACK, **spark_conf(spark_settings, long_lived=True)}  # extra_conf may move it
    connect_jar = spark_settings.jars_dir / jar_name(settings.glue_runtime().connect_coordinate)
    if not connect_jar.is_file():
        raise SparkEnvironmentError(
            f"Spark jars missing from {spark_settings.jars_dir}: {connect_jar.name}. "
            "Run `make jars` (or `bin/fetch-jars`) to fetch them with Maven.")
    guard = connect_guard.guard_jar(spark_settings.jars_dir, connect_jar)
    conf["spark.jars"] = ",".join([conf["spark.jars"], str(connect_jar)])
    conf.update({"spark.connect.grpc.binding.port": str(port), CODE_CONF: code,
                 connect_guard.SECRET_FILE_CONF: str(home / "secret"),
                 connect_guard.PORT_FILE_CONF: str(home / "port"),
                 "spark.app.name": "zfish-spark-connect"})
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    return [str(submit), "--class", SERVER_CLASS, "--master", spark_settings.master,
            *[arg for key, value in sorted(conf.items()) for arg in ("--conf", f"{key}={value}")], str(guard)]


def start(port: int | None = None, home: Path | None = None, timeout_s: float = START_TIMEOUT_S,
          warm_up: WarmUp | None = None, spark_settings: SparkSettings | None = None) -> ServerState:
    """The running server for this checkout's code: the recorded one if it runs this code (on `port`,
    when asked for), else a new one (a stale server is stopped first) on `port`, or without it on a
    free port. Waits until it listens, then until `warm_up` has run the job on a throwaway lake, so
    that the first run does not pay the new JVM's first Hudi commit and first plans. Starts in one
    data dir wait for each other (a lock), so they share one warmed server."""
    path = state_file(home)
    with _locked(path.with_name("start.lock")):
        code = script_sha256()
        running = read_state(home)
        if running is not None and _serves(running, code):
            if port in (None, running.port):
                if not running.ready:  # recorded by an older zfish: a start that held this lock warmed it
                    running = ServerState(**{**asdict(running), "ready": True})
                    path.write_text(json.dumps(asdict(running)))
                return running
            raise SparkEnvironmentError(
                f"this data dir's warm engine already runs on port {running.port} (pid {running.pid}): stop it "
                f"with `zfish engine stop` to start one on port {port}, or use it as it is")
        if running is not None:
            stop(home)
        if port is not None and ports.answers(port):
            raise _port_taken(port)
        check_java()
        process, state = _launch(port or 0, code, path, spark_settings)
        try:
            state = _wait_listening(process, state, home, timeout_s, asked=port)
            if warm_up is not None:
                _warm(state, home, warm_up)
        except BaseException:  # Ctrl-C or SIGTERM too: the server has its own session, so nothing else stops it
            stop(home)
            raise
        state = ServerState(**{**asdict(state), "ready": True})
        path.write_text(json.dumps(asdict(state)))
    return state


def sigterm_interrupts() -> None:
    """SIGTERM (a service manager, `timeout`, CI) raises KeyboardInterrupt in this process, as Ctrl-C does, so a
    start under way stops the server it launched (`start`) instead of dying and leaving the JVM running."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupt)


def _warm(state: ServerState, home: Path | None, warm_up: WarmUp) -> None:
    try:
        warm_up(state.url, state_file(home).with_name("warm-up"))
    except Exception as exc:
        raise SparkEnvironmentError(
            f"the new Spark Connect server failed its warm-up job ({connect_guard.masked(str(exc))}); "
            f"see {state.log}") from exc


def start_in_background(home: Path | None = None, warm_up: WarmUp | None = None) -> int:
    """`start` in a process of its own, detached (`make dev` serves the UI meanwhile); its pid.

    Its output goes to `start.log` beside the state; `starter.pid` names it until it ends, so that
    runs waiting for the engine (`wait_ready`) know it is coming and `stop` stops it too. `warm_up`
    reaches that process by its name (`module:function`), as an entry point does.
    """
    check_java()  # what would fail every start, refused here at once rather than in the log
    connect_jar = SparkSettings.from_env().jars_dir / jar_name(settings.glue_runtime().connect_coordinate)
    if not connect_jar.is_file():
        raise SparkEnvironmentError(f"Spark jars missing: {connect_jar}. Run `make jars` (or `bin/fetch-jars`).")
    folder = state_file(home).parent
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != settings.SPARK_REMOTE.name}
    with (folder / "start.log").open("wb") as out:
        named = [WARM_UP_ARG, f"{warm_up.__module__}:{warm_up.__qualname__}"] if warm_up else []
        command = [sys.executable, "-m", __name__, *named, *([str(home)] if home else [])]
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    (folder / STARTER).write_text(str(process.pid))
    return process.pid


def _starter(home: Path | None) -> int | None:
    """The pid of a background start still running, if any."""
    try:
        pid = int(state_file(home).with_name(STARTER).read_text())
    except (OSError, ValueError):
        return None
    _reap(pid)  # one this process made and that has ended stays a zombie until collected
    try:  # a pid reused since by another process is not the start: never signal it
        ours = __name__.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if ours and not _exited(pid) else None


def _exited(pid: int) -> bool:
    """Whether `pid` is a zombie (ended, not yet collected by a parent that is not this process)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def wait_ready(log: Callable[[str], object], home: Path | None = None,
               timeout_s: float = 2 * START_TIMEOUT_S) -> ServerState:
    """The warm engine once it listens and has warmed, waiting (and saying so, once) while it starts.

    Fails at once, naming the fix, when no engine runs and none is starting; after `timeout_s`, naming
    the start's log.
    """
    deadline, said = time.monotonic() + timeout_s, False
    start_log = state_file(home).with_name("start.log")
    while True:
        state, starter = read_state(home), _starter(home)
        if state is not None and state.ready and state.port:
            return state
        if state is None and starter is None:
            raise SparkEnvironmentError(
                f"{settings.SPARK_REMOTE.name}=warm, but no warm engine runs or is starting for this data dir: start "
                f"it with `zfish engine start` (`make dev` starts it); the last background start's log: {start_log}")
        if time.monotonic() > deadline:
            raise SparkEnvironmentError(f"the warm engine is not ready after {timeout_s:g}s: see {start_log}")
        if not said:
            log(f"waiting for the warm engine to finish starting and warming (pid {starter or state.pid}; "
                f"log {start_log}); runs that need Spark start when it is ready")
            said = True
        time.sleep(0.5)


def resolve_remote(url: str, log: Callable[[str], object] = logging.getLogger("zfish").info) -> str:
    """The Spark Connect URL to use for `url`: itself, or for `warm`, the warm engine's once it is ready."""
    if url != WARM:
        return url
    began = time.monotonic()
    state = wait_ready(log)
    if time.monotonic() - began > 1:
        log(f"the warm engine is ready (waited {time.monotonic() - began:.0f}s)")
    return state.url


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_taken(port: int) -> SparkEnvironmentError:
    return SparkEnvironmentError(
        f"port {port} on {ports.LOOPBACK} is taken by {ports.holder(port, _LABELS)}: choose another `--port`, "
        "or leave it out and the engine takes a free port")


def _launch(port: int, code: str, path: Path, spark_settings: SparkSettings | None):
    """Start the server process with a new secret; its state is recorded at once (port 0 until bound).

    It runs in its engine folder: Spark's Connect server makes its artifact folder (`artifacts/spark-<uuid>`,
    what clients upload) and Spark SQL its `spark-warehouse/` in the working directory, which was the
    checkout or wherever `make dev` was typed."""
    folder = path.parent.resolve()  # the server's paths hold in its own working directory
    command = server_command(port, code, folder, spark_settings)
    secret = connect_guard.new_secret(path.parent)
    path.with_name("port").unlink(missing_ok=True)
    log = path.with_name("server.log")
    env = {**os.environ, "SPARK_LOCAL_IP": ports.LOOPBACK, "PYSPARK_PYTHON": sys.executable}
    env.pop(settings.SPARK_REMOTE.name, None)
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    state = ServerState(pid=process.pid, port=0, code_sha256=code, log=str(log), secret_file=str(secret))
    path.write_text(json.dumps(asdict(state)))
    return process, state


def _wait_listening(process: subprocess.Popen, state: ServerState, home: Path | None, timeout_s: float,
                    asked: int | None) -> ServerState:
    """The state once the server has written the port it bound and answers there; else the server is
    stopped and the error says why (the port taken, its exit, or the time out) with its log's end."""
    path, port_file = state_file(home), Path(state.log).with_name("port")
    deadline = time.monotonic() + timeout_s
    while True:
        bound = int(port_file.read_text()) if port_file.is_file() else 0
        if bound and ports.answers(bound):
            state = ServerState(**{**asdict(state), "port": bound})
            path.write_text(json.dumps(asdict(state)))
            return state
        if process.poll() is not None or time.monotonic() > deadline:
            stop(home)
            if process.returncode == connect_guard.PORT_TAKEN_EXIT and asked:
                raise _port_taken(asked)
            tail = "\n".join(Path(state.log).read_text(errors="replace").splitlines()[-20:])
            why = f"exited {process.returncode}" if process.returncode is not None else f"not listening after {timeout_s:g}s"
            raise SparkEnvironmentError(f"the Spark Connect server did not start ({why}); the end of {state.log}:\n{tail}")
        time.sleep(0.5)


def stop(home: Path | None = None, timeout_s: float = 30.0) -> bool:
    """Stop a background start (`start_in_background`) still running, then the recorded server (its whole
    process group: the JVM and its Python workers); False if none ran."""
    pid = _starter(home)
    if pid is not None and pid != os.getpid():  # not when the background start itself stops a stale server
        _terminate(pid, timeout_s)
        state_file(home).with_name(STARTER).unlink(missing_ok=True)
    state = read_state(home)
    state_file(home).with_name("secret").unlink(missing_ok=True)  # the server read it at its start
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


def _terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM a background start's process group, and wait for it to end (a server it launched meanwhile
    has recorded its state by then, for `stop` to stop)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not _exited(pid):
        _reap(pid)
        time.sleep(0.1)


def _reap(pid: int) -> None:
    """Collect the exit status when this process started the server (else it lingers as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _main() -> int:
    """A background start (`start_in_background`): start, warm, record; the error in the log if it fails."""
    argv, warm_up = sys.argv[1:], None
    if argv[:1] == [WARM_UP_ARG]:
        module, _, name = argv[1].partition(":")
        warm_up, argv = getattr(importlib.import_module(module), name), argv[2:]
    home = Path(argv[0]) if argv else None  # `start_in_background`'s `home`
    began = time.perf_counter()
    sigterm_interrupts()
    try:
        state = start(home=home, warm_up=warm_up)
    except SparkEnvironmentError as exc:
        print(f"zfish: {exc}", flush=True)
        return 1
    finally:
        state_file(home).with_name(STARTER).unlink(missing_ok=True)
    print(f"zfish: warm engine pid {state.pid} on 127.0.0.1:{state.port} ready in {time.perf_counter() - began:.1f}s",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
