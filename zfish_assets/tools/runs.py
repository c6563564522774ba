"""Running the pipeline in process: land and crawl days, then join a range of days in one run.

What `zfish demo` and the tests drive; `dagster dev` runs the same definitions through its UI.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from dagster import AssetKey, AssetSelection, DagsterInstance, Definitions, materialize

from zfish_assets import settings
from zfish_assets.dagster_names import JOIN_JOB, JOINED, LAND_AND_CRAWL_JOB, RANGE_END, RANGE_START, RAW_AND_CRAWLED, TRAINING



@dataclass(frozen=True)
class CheckOutcome:
    asset: str
    name: str
    passed: bool
    description: str


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    success: bool
    checks: list[CheckOutcome]
    seconds: float
    error: str = ""  # a failed run's first step failure, its innermost cause in a line ("" when none failed)


def _first_failure(result) -> str:
    """The innermost cause of the run's first step failure, its last line: the message that names the
    fix (the wrappers around it say only where it happened)."""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    if failure is None:
        return ""
    error = failure.step_failure_data.error
    while error.cause is not None:
        error = error.cause
    lines = error.message.strip().splitlines()
    return f"{failure.step_key}: {lines[-1] if lines else error.cls_name}"


def _run(defs: Definitions, selection: AssetSelection, instance: DagsterInstance, tags: dict[str, str],
         partition_key: str | None = None, raise_on_error: bool = True, ops: dict | None = None,
         job: str | None = None) -> RunSummary:
    """One run of `selection`: as the named `job` of the definitions (what the UI lists it under), or
    as an ad-hoc materialization where no job holds the selection."""
    started = time.monotonic()
    run_config = {"loggers": {"console": {"config": {"log_level": settings.LOG_LEVEL.get() or "INFO"}}},
                  **({"ops": ops} if ops else {})}
    if job:
        keys = list(selection.resolve(defs.resolve_asset_graph()))
        result = defs.resolve_job_def(job).execute_in_process(
            run_config=run_config, instance=instance, partition_key=partition_key, raise_on_error=raise_on_error,
            asset_selection=keys, tags=tags)
    else:
        result = materialize([*defs.assets, *defs.asset_checks], selection=selection, partition_key=partition_key,
                             resources=defs.resources, instance=instance, tags=tags,
                             raise_on_error=raise_on_error, run_config=run_config)
    checks = [
        CheckOutcome(e.asset_key.to_user_string(), e.check_name, e.passed, e.description or "")
        for e in result.get_asset_check_evaluations()
    ]
    return RunSummary(result.run_id, result.success, checks, time.monotonic() - started,
                      "" if result.success else _first_failure(result))


def land_and_crawl(defs: Definitions, instance: DagsterInstance, days: Iterable[str],
                   assets: Iterable[str] = RAW_AND_CRAWLED, raise_on_error: bool = True) -> list[RunSummary]:
    """One run per day (raw and crawled assets are per-day), checks included; without `raise_on_error`,
    the days after a failed run are not run."""
    selection = AssetSelection.assets(*[AssetKey(a) for a in assets])
    summaries: list[RunSummary] = []
    for day in days:
        summaries.append(_run(defs, selection, instance, {}, partition_key=day, raise_on_error=raise_on_error,
                              job=LAND_AND_CRAWL_JOB))
        if not summaries[-1].success:
            break
    return summaries


def land_and_crawl_range(defs: Definitions, instance: DagsterInstance, first: str, last: str,
                         assets: Iterable[str] = RAW_AND_CRAWLED, raise_on_error: bool = True) -> RunSummary:
    """[first, last] landed and crawled in one run, day by day, as a backfill from the UI runs it
    (`assets/each_day.py`), checks included (over the range)."""
    selection = AssetSelection.assets(*[AssetKey(a) for a in assets])
    return _run(defs, selection, instance, {RANGE_START: first, RANGE_END: last}, raise_on_error=raise_on_error,
                job=LAND_AND_CRAWL_JOB)


def join_range(defs: Definitions, instance: DagsterInstance, first: str, last: str,
               raise_on_error: bool = True) -> RunSummary:
    """joined_fish_data for [first, last] in one run, as a single-run backfill does, checks included."""
    selection = AssetSelection.assets(AssetKey(JOINED))
    return _run(defs, selection, instance, {RANGE_START: first, RANGE_END: last}, raise_on_error=raise_on_error,
                job=JOIN_JOB)


def materialize_training(defs: Definitions, instance: DagsterInstance, config: dict | None = None,
                         raise_on_error: bool = True) -> RunSummary:
    """training_set with its run config (`TrainingSetConfig` fields; none: the latest commit), checks included."""
    selection = AssetSelection.assets(AssetKey(TRAINING))
    ops = {TRAINING: {"config": config}} if config else None
    return _run(defs, selection, instance, {}, raise_on_error=raise_on_error, ops=ops)


def run_checks(defs: Definitions, instance: DagsterInstance, assets: Iterable[str],
               tags: dict[str, str] | None = None) -> RunSummary:
    """Only the checks of `assets`, on demand (there is no `dagster asset check` command).

    With a run's partition tags (`dagster/partition`, or the range's `RANGE_START`/`RANGE_END`) the
    checks cover that run's days, as they did in it; without, every day.
    """
    selection = AssetSelection.checks_for_assets(*[AssetKey(a) for a in assets])
    return _run(defs, selection, instance, tags or {}, raise_on_error=False)
