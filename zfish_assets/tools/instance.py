"""The local Dagster instance: `DAGSTER_HOME` under the data dir, so the demo's runs show in `dagster dev`."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from dagster import DagsterInstance

from zfish_assets import settings

DAGSTER_YAML = """\
# zfish's local instance settings (written once; edit freely).
telemetry:
  enabled: false
# No community sign-up dialog greeting the first visit of the UI (the webserver's `shouldShowNux`
# is `nux.enabled` and no `.nux/nux.yaml` in DAGSTER_HOME); a data dir is often new.
nux:
  enabled: false
# Runs launched from the UI, schedules, sensors and backfills wait in a queue; the daemon starts them.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    # The daemon looks at the queue each second (Dagster's default, 5 s, was up to 5 s of a click's
    # wait for a run that runs in a few); a look at a local sqlite queue costs nothing.
    dequeue_interval_seconds: 1
concurrency:
  runs:
    max_concurrent_runs: 3  # each run is a process (and, for the join, a JVM): 2 cores
  pools:
    # joined_fish_data is in pool `hudi_writer`: Hudi here has one writer at a time. The only pool,
    # so the default limit is its limit; with run granularity a second run touching the table
    # stays queued until the first one finished.
    default_limit: 1
    granularity: run
# One sqlite file for every run's events (the default keeps one per run): local runs spend most of
# their time storing events, and this was ~20% faster per land-and-crawl run here.
event_log_storage:
  module: dagster.core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir: {history}
"""


def dagster_home() -> Path:
    """`DAGSTER_HOME`, defaulting to `$ZFISH_DATA_DIR/dagster`, created with zfish's settings."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir() / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        from glue_scripts.zfish_etl.write_errors import writing

        with writing(config):
            config.write_text(DAGSTER_YAML.format(history=json.dumps(str(home / "history"))))
    return home


def local_instance() -> DagsterInstance:
    """A persistent instance in `dagster_home()`."""
    return DagsterInstance.from_config(str(dagster_home()))


SQLITE_MACHINE_ERRORS = {
    "database or disk is full": errno.ENOSPC,
    "disk i/o error": errno.EIO,  # what sqlite says of a full tmpfs, among other causes
    "attempt to write a readonly database": errno.EROFS,
    "unable to open database file": errno.EACCES,
}
"""sqlite's words for a machine's failure, each with the OS error it stands for: the instance's storage is
sqlite under DAGSTER_HOME, and SQLAlchemy reports such a failure as a screen of traceback naming no file."""


def instance_storage_error(exc: BaseException) -> OSError | None:
    """An OSError naming DAGSTER_HOME, the room left and the cause, when `exc` (or what it was raised from)
    is sqlite failing for a reason of the machine's (`SQLITE_MACHINE_ERRORS`); None otherwise."""
    from glue_scripts.zfish_etl.write_errors import room

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__module__ == "sqlite3":
            text = str(exc)
            code = next((c for words, c in SQLITE_MACHINE_ERRORS.items() if words in text.lower()), None)
            if code is not None:
                home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir() / "dagster")
                return OSError(code, f"Dagster's instance storage failed ({text}) in DAGSTER_HOME={home}; "
                                     f"{room(home)} there", str(home))
        exc = exc.__cause__ or exc.__context__
    return None
