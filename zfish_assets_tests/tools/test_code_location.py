"""The code location loads the way `dg dev` (the project's [tool.dg]) and `dagster dev -w workspace.yaml` load it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the repository (this file: zfish_assets_tests/tools/)


def test_dagster_definitions_validate_loads_the_workspace(tmp_path):
    env = {**os.environ, "ZFISH_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_dg_lists_the_projects_definitions(tmp_path):
    """`dg list defs` (the `dg` project of pyproject.toml) sees the assets, jobs and schedules."""
    env = {**os.environ, "ZFISH_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path), "VIRTUAL_ENV": sys.prefix}
    dg = Path(sys.executable).parent / "dg"
    result = subprocess.run([str(dg), "list", "defs", "--json"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = result.stdout
    for name in ("joined_fish_data", "raw_observations", "join_window", "evening"):
        assert name in listed, f"{name} not in `dg list defs`:\n{listed[:2000]}"


def test_a_code_load_warns_of_nothing(tmp_path):
    """Loading the definitions prints no Beta/Preview/Deprecation warning: the beta APIs chosen on
    purpose are filtered once in definitions.py, deprecated parameters are not used."""
    env = {**os.environ, "ZFISH_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-W", "always", "-c", "import zfish_assets.definitions"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr


def test_a_code_load_imports_no_data_library(tmp_path):
    """A code load (each run's process, `dg dev`, the daemon) builds every definition without importing
    the libraries that only reading or writing data needs (`zfish_assets.lazy`), nor dagster-aws, which
    only an AWS client needs (`resources/aws_connection.py`)."""
    heavy = ("pyarrow", "pandas", "numpy", "duckdb", "hudi", "pyspark", "py4j", "dagster_aws", "alembic")
    load = ("import sys\nfrom zfish_assets.definitions import defs\ndefs.get_repository_def().load_all_definitions()\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    env = {**os.environ, "ZFISH_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", load], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"a code load imported {result.stdout.strip()}"


def test_definitions_hold_the_walkthrough_assets_and_checks(defs):
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.assets_defs_by_key}
    assert keys == {"raw_observations", "raw_outcomes", "observations", "outcomes", "joined_fish_data", "training_set"}
    checks = {(k.asset_key.to_user_string(), k.name) for k in repo.asset_checks_defs_by_key}
    assert ("joined_fish_data", "labeled_rows") in checks and ("observations", "partitions_match_lake") in checks
    assert ("training_set", "rows_match_snapshot") in checks
    days = defs.get_assets_def("joined_fish_data").partitions_def.get_partition_keys()
    assert (days[0], days[-1], len(days)) == ("2025-04-05", "2025-05-11", 37)
