"""Shared fixtures: one Spark session per test process, a fresh data dir and instance per test."""

from __future__ import annotations

import importlib
import os

import pytest

# The walkthrough's clock: partitions run through the evening of 2025-05-11.
os.environ.setdefault("ZFISH_CLOCK", "2025-05-11T18:00:00Z")


@pytest.fixture(scope="session")
def spark():
    from zfish_assets.resources.spark import get_spark_session

    return get_spark_session()


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh `ZFISH_DATA_DIR` (and Dagster home in it)."""
    monkeypatch.setenv("ZFISH_DATA_DIR", str(tmp_path / "zfish"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "zfish" / "dagster"))
    return tmp_path / "zfish"


@pytest.fixture
def defs(data_dir):
    """The project's Definitions, built for this test's data dir and environment."""
    import zfish_assets.definitions

    return importlib.reload(zfish_assets.definitions).defs


@pytest.fixture
def instance(data_dir):
    from zfish_assets.instance import local_instance

    with local_instance() as inst:
        yield inst
