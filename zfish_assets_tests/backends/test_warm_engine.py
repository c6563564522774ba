"""The warm engine (a Spark Connect server): a run refuses a server that is absent or runs other job code.

The refusal of a stale server needs the server the test session starts (`pytest --spark-connect`,
as `make test`'s second pass runs); the absent server is refused before any client is made.
"""

from __future__ import annotations


import re

import pytest

from zfish_assets.backends import spark_session as spark_module
from zfish_assets.backends.spark_session import StaleEngineError, get_spark_session
from zfish_assets_tests.support.ports import free_port


def test_a_run_refuses_an_absent_server_at_once_naming_the_fix(monkeypatch):
    monkeypatch.setenv("ZFISH_SPARK_REMOTE", f"sc://127.0.0.1:{free_port()}")  # a port nothing listens on
    with pytest.raises(StaleEngineError, match=r"no Spark Connect server answers at .*zfish engine start"):
        get_spark_session()


def test_a_run_refuses_a_server_started_with_other_job_code(spark_engine, monkeypatch):
    if spark_engine is None:
        pytest.skip("needs the warm engine: run with --spark-connect")
    assert get_spark_session().conf.get(spark_module.CODE_CONF) == spark_engine.code_sha256
    # This checkout's job code as if edited after the server started.
    monkeypatch.setattr("zfish_assets.backends.job_code.script_sha256", lambda: "0" * 64)
    with pytest.raises(StaleEngineError, match=rf"runs other job code .*{spark_engine.code_sha256}.*zfish engine start"):
        get_spark_session()


def test_a_new_server_leaves_no_warm_up_table_behind(spark_engine):
    """`connect_server.start` warmed the session's server on a throwaway table in the engine's folder
    (`warm_up`); the table and its key digests are gone, and the server still serves this checkout."""
    if spark_engine is None:
        pytest.skip("needs the warm engine: run with --spark-connect")
    from pathlib import Path

    engine_home = Path(spark_engine.log).parent
    assert engine_home.is_dir() and not (engine_home / "warm-up").exists()
    assert get_spark_session().conf.get(spark_module.CODE_CONF) == spark_engine.code_sha256


def test_a_session_whose_engine_dies_mid_run_fails_within_seconds_naming_the_engine(tmp_path):
    """The warm engine killed while a run holds its session: the next action ends in seconds (pyspark's own
    policy retries for 10 minutes) with the engine named and the fix, not gRPC's UNAVAILABLE after the wait.
    In a process of its own: a test worker that ran in-process Spark before cannot open a Connect session."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        outcome = pool.submit(_action_after_the_engine_died, str(tmp_path / "engine")).result(timeout=600)
    assert outcome["type"] == "StaleEngineError", outcome
    assert re.search(r"the warm engine at sc://127\.0\.0\.1:\d+/;x-zfish-token=\*\*\* \(ZFISH_SPARK_REMOTE\) stopped "
                     r"answering during the run .*zfish engine start", outcome["message"]), outcome
    assert outcome["seconds"] < 60
    # What a run's step does with it (`retries.retry_transient`): no setting of AWS explains it away.
    assert outcome["explained"] is None and not outcome["transient"]


def _action_after_the_engine_died(home: str) -> dict:
    """Start a server, run an action on it, kill it, run another: what that second action raised, how fast."""
    import os
    import signal
    import time
    from pathlib import Path

    from zfish_assets.aws_errors import explain
    from zfish_assets.backends import connect_server
    from zfish_assets.backends.spark_session import naming_a_gone_engine
    from zfish_assets.retries import is_transient

    state = connect_server.start(home=Path(home))
    try:
        spark = get_spark_session(remote=state.url)
        assert spark.range(3).count() == 3
        os.kill(state.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until its port closes (the JVM gone)
            try:
                spark_module._connect(state.url)
            except OSError:
                break
            time.sleep(0.2)
        began = time.monotonic()
        try:
            with naming_a_gone_engine(state.url):
                spark.range(5).count()
        except Exception as exc:
            return {"type": type(exc).__name__, "message": str(exc), "seconds": time.monotonic() - began,
                    "explained": explain(exc), "transient": is_transient(exc)}
        return {"type": None}
    finally:
        connect_server.stop(Path(home))


def test_an_engine_killed_while_a_client_makes_its_session_fails_within_seconds_naming_the_fix(tmp_path):
    """The warm engine killed between the client's check that it listens and the session's first call: the
    session is refused in seconds naming the engine and `zfish engine start`. pyspark's session builder makes
    its first call (setting `spark.remote` on the server) with its own 10-minute policy, twice. In a process of
    its own, as above."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        outcome = pool.submit(_session_after_the_engine_died, str(tmp_path / "engine")).result(timeout=600)
    assert outcome["type"] == "StaleEngineError", outcome
    assert re.search(r"the warm engine at sc://127\.0\.0\.1:\d+/;x-zfish-token=\*\*\* \(ZFISH_SPARK_REMOTE\) .*"
                     r"`zfish engine start`", outcome["message"]), outcome
    assert outcome["seconds"] < 60, outcome  # ENGINE_RETRIES: about 10 s


def _session_after_the_engine_died(home: str) -> dict:
    """Start a server; make a session, the server killed (SIGKILL, its port closed) right after the client
    found it listening: what making the session raised, and how fast."""
    import os
    import signal
    import time
    from pathlib import Path

    from zfish_assets.backends import connect_server
    from zfish_assets.backends.spark_session import naming_a_gone_engine

    state = connect_server.start(home=Path(home))
    listens = spark_module._connect

    def listens_then_dies(url: str) -> None:
        listens(url)
        os.kill(state.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until its port closes (the JVM gone)
            try:
                listens(url)
            except OSError:
                break
            time.sleep(0.1)

    spark_module._connect = listens_then_dies
    try:
        began = time.monotonic()
        try:
            with naming_a_gone_engine(state.url):
                get_spark_session(remote=state.url)
        except Exception as exc:
            return {"type": type(exc).__name__, "message": str(exc), "seconds": time.monotonic() - began}
        return {"type": None, "seconds": time.monotonic() - began}
    finally:
        spark_module._connect = listens
        connect_server.stop(Path(home))
