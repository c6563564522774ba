"""Running the pipeline in process: land and crawl days, then join a range of days in one run.

What `zfish demo` and the tests drive; `dagster dev` runs the same definitions through its UI.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from dagster import AssetKey, AssetSelection, DagsterInstance, Definitions, materialize

from zfish_assets import settings
from zfish_assets.names import JOINED, RANGE_END, RANGE_START, RAW_AND_CRAWLED, TRAINING



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


def _run(defs: Definitions, selection: AssetSelection, instance: DagsterInstance, tags: dict[str, str],
         partition_key: str | None = None, raise_on_error: bool = True, ops: dict | None = None) -> RunSummary:
    started = time.monotonic()
    result = materialize(
        [*defs.assets, *defs.asset_checks],
        selection=selection,
        partition_key=partition_key,
        resources=defs.resources,
        instance=instance,
        tags=tags,
        raise_on_error=raise_on_error,
        run_config={"loggers": {"console": {"config": {"log_level": settings.LOG_LEVEL.get() or "INFO"}}},
                    **({"ops": ops} if ops else {})},
    )
    checks = [
        CheckOutcome(e.asset_key.to_user_string(), e.check_name, e.passed, e.description or "")
        for e in result.get_asset_check_evaluations()
    ]
    return RunSummary(result.run_id, result.success, checks, time.monotonic() - started)


def land_and_crawl(defs: Definitions, instance: DagsterInstance, days: Iterable[str],
                   assets: Iterable[str] = RAW_AND_CRAWLED) -> list[RunSummary]:
    """One run per day (raw and crawled assets are per-day), checks included."""
    selection = AssetSelection.assets(*[AssetKey(a) for a in assets])
    return [_run(defs, selection, instance, {}, partition_key=day) for day in days]


def join_range(defs: Definitions, instance: DagsterInstance, first: str, last: str,
               raise_on_error: bool = True) -> RunSummary:
    """joined_fish_data for [first, last] in one run, as a single-run backfill does, checks included."""
    selection = AssetSelection.assets(AssetKey(JOINED))
    return _run(defs, selection, instance, {RANGE_START: first, RANGE_END: last}, raise_on_error=raise_on_error)


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
