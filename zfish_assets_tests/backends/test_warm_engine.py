"""The warm engine (a Spark Connect server): a run refuses a server that is absent or runs other job code.

The refusal of a stale server needs the server the test session starts (`pytest --spark-connect`,
as `make test`'s second pass runs); the absent server is refused before any client is made.
"""

from __future__ import annotations


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
    policy retries for 10 minutes) with the engine named and the fix, not gRPC's UNAVAILABLE after the wait."""
    import os
    import signal
    import time

    from zfish_assets.aws_errors import explain
    from zfish_assets.backends import connect_server
    from zfish_assets.backends.spark_session import naming_a_gone_engine
    from zfish_assets.retries import is_transient

    home = tmp_path / "engine"
    state = connect_server.start(home=home)
    spark = None
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
        with pytest.raises(StaleEngineError, match=r"the warm engine at sc://127\.0\.0\.1:\d+/;x-zfish-token=\*\*\* "
                           r"\(ZFISH_SPARK_REMOTE\) stopped answering during the run .*zfish engine start") as gone:
            with naming_a_gone_engine(state.url):
                spark.range(5).count()
        assert time.monotonic() - began < 60
        # What a run's step does with it (`retries.retry_transient`): no setting of AWS explains it away.
        assert explain(gone.value) is None and not is_transient(gone.value)
    finally:
        if spark is not None:
            spark_module._discard(spark)
        connect_server.stop(home)
