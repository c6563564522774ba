"""`zfish demo`: the walkthrough from a fresh data dir, in two evenings.

Evening of 2025-05-10: land and crawl 2025-04-05..2025-05-10, backfill joined_fish_data over all
days (540 observations, 20 outcomes, 60 joined). Evening of 2025-05-11: land and crawl the day,
run the 36-day window [2025-04-06, 2025-05-11] (25 outcomes, 75 joined).
"""

from __future__ import annotations

import os
import shlex
import time
import warnings

from dagster import BetaWarning, PreviewWarning, build_resources

from zfish_assets import settings
from zfish_assets.partitions import days_between, evening_window, outside_partitions
from zfish_assets.dagster_names import JOINED

FIRST_EVENING, SECOND_EVENING = "2025-05-10", "2025-05-11"


def _say(message: str) -> None:
    print(message, flush=True)


def preflight(resources) -> None:
    """Refuse at once, before anything is written, a deployment the demo cannot finish on.

    The engine must be able to run the job here (local Spark: Java 17 and the jars; the Glue engine:
    the job deployed with this checkout's code, `zfish deploy`); the aws deployment needs the bucket.
    Each failure names its fix.
    """
    from zfish_assets.resources.engine import GlueJobEngine, GlueJobError
    from zfish_assets.resources.lake import S3Lake

    lake, engine = resources.lake, resources.hudi_io_manager.engine
    if isinstance(lake, S3Lake):
        try:  # a listing of the lake prefix: what the runner's policy allows (HeadBucket it does not)
            lake.client().list_objects_v2(Bucket=lake.bucket, Prefix=f"{lake.prefix}/", MaxKeys=1)
        except Exception as exc:  # noqa: BLE001 - whatever the reason, the message names a setting
            from zfish_assets.aws_errors import explain

            raise SystemExit("zfish demo: refusing to start, nothing written: " + (
                explain(exc) or f"bucket {lake.bucket!r} (ZFISH_S3_BUCKET) is not reachable: {exc}")) from None
    from zfish_assets.backends.spark_session import SparkEnvironmentError

    try:
        engine.preflight()
        if isinstance(engine, GlueJobEngine):
            engine.check_deployed_code()
    except (GlueJobError, SparkEnvironmentError) as exc:
        raise SystemExit(f"zfish demo: refusing to start, nothing written: {exc}") from None


def _counts(resources) -> dict[str, int]:
    query, db = resources.query, settings.database()
    found = {name for name in ("observations", "outcomes", JOINED)
             if resources.catalog.get_table(name) is not None}
    return {name: query.scalar(f'SELECT count(*) FROM "{db}"."{name}"', {name: None}) if name in found else 0
            for name in ("observations", "outcomes", JOINED)}


def _report(resources, summary, seconds: float) -> None:
    counts = _counts(resources)
    _say(f"  observations: {counts['observations']}   outcomes: {counts['outcomes']}   "
         f"joined_fish_data: {counts['joined_fish_data']}   ({seconds:.0f}s)")
    for check in summary.checks:
        _say(f"  check {check.asset}/{check.name}: {'PASS' if check.passed else 'FAIL'}  {check.description}")


def _refuse_a_clock_before_its_evenings() -> None:
    """Stop, before anything is written or recorded, when the clock has not reached the demo's second
    evening: its landings would fail on a day that is no partition, naming no clock."""
    why = outside_partitions(SECOND_EVENING)
    if why is not None and not why.startswith(f"day {SECOND_EVENING} is before"):
        raise SystemExit(f"zfish demo: it runs the evenings of {FIRST_EVENING} and {SECOND_EVENING}, but {why}. "
                         f"Unset {settings.CLOCK.name} (the demo then uses {SECOND_EVENING}T18:00:00Z) or set it "
                         f"to {SECOND_EVENING}T18:00:00Z or later; nothing written")


def run_demo() -> int:
    """Run both evenings; returns the exit status (non-zero when a run or a check failed)."""
    os.environ.setdefault(settings.CLOCK.name, f"{SECOND_EVENING}T18:00:00Z")
    _refuse_a_clock_before_its_evenings()
    settings.record_clock()  # the data dir's today from now on, for every command and the UI on it
    # The demo prints its own progress, and a failed run's cause in a line (the run's whole log is in
    # the UI): Dagster's console stays quiet.
    os.environ.setdefault(settings.LOG_LEVEL.name, "CRITICAL")
    warnings.filterwarnings("ignore", category=BetaWarning)
    warnings.filterwarnings("ignore", category=PreviewWarning)
    try:
        from zfish_assets.definitions import build_definitions  # the module builds them too, as it loads

        defs = build_definitions()
    except ValueError as exc:  # settings that disagree (the first day after the clock): nothing written yet
        raise SystemExit(f"zfish demo: {exc}") from None
    with build_resources(defs.resources) as resources:  # EnvVar settings resolved, as a run resolves them
        preflight(resources)
        return _evenings(defs, resources)


def _evenings(defs, resources) -> int:
    """Both evenings, each landed, crawled, joined and reported."""
    from zfish_assets.tools.instance import dagster_home, local_instance
    from zfish_assets.tools.runs import join_range, land_and_crawl_range

    home = dagster_home()
    start = settings.sim_start().isoformat()
    _say(f"zfish demo: data in {settings.data_dir()}, Dagster home {home}")
    total = time.monotonic()
    ok = True
    with local_instance() as instance:
        for evening, days, first in (
            (FIRST_EVENING, days_between(start, FIRST_EVENING), start),
            (SECOND_EVENING, [SECOND_EVENING], evening_window(SECOND_EVENING)[0]),
        ):
            started = time.monotonic()
            _say(f"\nEvening of {evening}: landing and crawling {days[0]}..{days[-1]} ({len(days)} days)")
            crawls = [land_and_crawl_range(defs, instance, days[0], days[-1], raise_on_error=False)]  # one run
            failed = [c for r in crawls for c in r.checks if not c.passed]
            ok &= all(r.success for r in crawls) and not failed
            for check in failed:
                _say(f"  check {check.asset}/{check.name}: FAIL  {check.description}")
            runs = crawls
            if all(r.success for r in crawls):
                _say(f"  joined_fish_data for {first}..{evening} (one Spark run)")
                joined = join_range(defs, instance, first, evening, raise_on_error=False)
                ok &= joined.success and all(c.passed for c in joined.checks)
                _report(resources, joined, time.monotonic() - started)
                runs = [*crawls, joined]
            failed_run = next((r for r in runs if not r.success), None)
            if failed_run is not None:
                _say(f"  run {failed_run.run_id} FAILED: {failed_run.error}")
            if not ok:
                _say(f"Stopped after the evening of {evening}: it failed (its runs are in the UI: `zfish dev`).")
                break
        commits = _commit_instants(resources)
    _say(f"\nHudi commits of joined_fish_data: {', '.join(commits) or 'none'}")
    _say(f"Demo {'finished' if ok else 'FAILED'} in {time.monotonic() - total:.0f}s.")
    _say(open_hint())
    return 0 if ok else 1


def open_hint() -> str:
    """How to open the demo's data in the UI: a command to paste into a shell, the data dir quoted (a path
    with a space or a quote would otherwise split into several words)."""
    return ("Open the same data in Dagster's UI:\n"
            f"  ZFISH_DATA_DIR={shlex.quote(str(settings.data_dir()))} .venv/bin/zfish dev\n  (or simply `make dev`; "
            f"the data dir keeps the demo's clock, {settings.clock_text()})")


def _commit_instants(resources) -> list[str]:
    from zfish_assets.backends.hudi_reader import HudiSnapshot

    uri = resources.hudi_io_manager.table_uri(JOINED)
    return HudiSnapshot(uri, storage_options=resources.lake.storage_options()).commits()
