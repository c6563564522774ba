"""Day by day within one run: the landing and crawling assets materialize a range of days in one run.

A backfill of N days used to be N runs, each a process that loads the code (2-3 s here) and checks
its day; with `BackfillPolicy.single_run()` it is one run per asset (or one for all of them: Dagster
runs parents and children with the same policy together), which does the days in order and gives
each day's materialization its own metadata. The days are independent, so when one fails the days
done before it are recorded as materialized before the run fails naming the day: the UI shows what
holds, and a rerun (idempotent) redoes the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetMaterialization, BackfillPolicy, MaterializeResult

RANGE_POLICY = BackfillPolicy.single_run()


def materialize_each_day(context: AssetExecutionContext, what: str,
                         do_day: Callable[[str], Mapping[str, Any]]) -> MaterializeResult:
    """`do_day` for each day of the run's partition or range, in order; its metadata goes to that day."""
    days = context.partition_keys
    done: list[tuple[str, Mapping[str, Any]]] = []
    for number, day in enumerate(days, 1):
        try:
            done.append((day, do_day(day)))
        except Exception as error:
            for finished, metadata in done:
                context.log_event(AssetMaterialization(context.asset_key, partition=finished, metadata=metadata))
            if len(days) > 1:
                error.add_note(f"{what} day={day} failed ({number} of {len(days)} days of this run); "
                               f"the {len(done)} days before it are recorded as materialized")
            raise
        if len(days) > 1:
            context.log.info(f"{what}: {number} of {len(days)} days done (day={day})")
    for day, metadata in done:
        context.add_asset_metadata(metadata, partition_key=day)
    return MaterializeResult()
