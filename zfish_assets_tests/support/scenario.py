"""A scenario's data dir and Dagster instance, and data dirs kept aside as templates and restored."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster import DagsterInstance


@contextmanager
def scenario_instance(root: Path) -> Iterator[tuple[pytest.MonkeyPatch, DagsterInstance]]:
    """A module's scenario: its data dir and Dagster home under `root`, an ephemeral instance, and a
    quarantine check that warns rather than stops (these deliveries are mostly bad on purpose)."""
    with pytest.MonkeyPatch.context() as mp, DagsterInstance.ephemeral() as instance:
        mp.setenv("ZFISH_DATA_DIR", str(root / "zfish"))
        mp.setenv("DAGSTER_HOME", str(root / "zfish" / "dagster"))
        mp.setenv("ZFISH_QUARANTINE_MAX_RATE", "1")
        yield mp, instance


def keep_as_template(data_dir: Path, tmp_path_factory, name: str) -> Path:
    """A copy of `data_dir` set aside, for `restore` to give each test a fresh one."""
    template = tmp_path_factory.mktemp(name) / "zfish"
    shutil.copytree(data_dir, template)
    return template


def restore(template: Path, data_dir: Path) -> Path:
    """`data_dir` replaced by a copy of `template`."""
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(template, data_dir)
    return data_dir
