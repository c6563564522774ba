"""The local Dagster instance: `DAGSTER_HOME` under the data dir, so the demo's runs show in `dagster dev`."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterInstance

from zfish_assets import settings

DAGSTER_YAML = """\
# zfish's local instance settings (written once; edit freely).
telemetry:
  enabled: false
"""


def dagster_home() -> Path:
    """`DAGSTER_HOME`, defaulting to `$ZFISH_DATA_DIR/dagster`, created with zfish's settings."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir() / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


def local_instance() -> DagsterInstance:
    """A persistent instance in `dagster_home()`."""
    return DagsterInstance.from_config(str(dagster_home()))
