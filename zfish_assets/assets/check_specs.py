"""Checks as pure functions wired by specs: what every step's checks share, written once.

A check is a plain function that takes what it reads, by parameter name (`INPUTS`: the run's days,
the lake, the catalog, the query side, a lookup of catalog tables, of landed rows, of recorded
column schemas), and returns an `AssetCheckResult`. A `CheckSpec` names it with its asset, name,
description, blocking flag and an optional guard (a function of the same inputs that answers
first, e.g. "no table yet"); `asset_checks` turns specs into Dagster's `@asset_check`s, each
requiring the resources its function and guard read, nothing else. So a check can be called in a
test with plain values, and the wiring (tags, resources, the instance) is in one place.

Checks are not partitioned (a preview feature that runs partition-less in range runs): they cover
the days of the run that triggered them (`days`: its range, and any day outside it its commits
touched), and every day when run on their own (`days` is None), so that an evening's checks cost
what its days cost, however long the history. Their SQL
says its days (`day IN (...)`, on which Athena prunes partitions) and names the tables it reads
with their days (`query(sql, {table: days})`), over which DuckDB builds its views.
"""

# No `from __future__ import annotations`: Dagster reads the check's `context` annotation at runtime.
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, NamedTuple

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    asset_check,
)

from glue_scripts.zfish_etl.catalog import CatalogTable
from zfish_assets.dagster_names import (
    COLUMN_SCHEMA, LANDED_FILES, PARTITION, PARTITION_ROW_COUNT, RANGE_END, RANGE_START, ROW_COUNT,
)
from zfish_assets.partitions import days_between, validate_day

MAX_LISTED = 20
NO_TABLE_YET = "no table yet"

TableLookup = Callable[[str], CatalogTable | None]
"""A catalog table by name (None when it is not registered yet), fetched once per check run."""
LandedLookup = Callable[[str, str, str | None], int | None]
"""Rows the latest landing of (raw asset, day) recorded, given the data fingerprint of the files a crawl read
(None when the day never landed here, or that landing landed other files: `landed_rows`)."""
Schemas = list[tuple[str, dict[str, str]]]
"""(run id, {column: type}) of the asset's materializations that recorded a column schema, latest first."""
Guard = Callable[..., AssetCheckResult | None]


def run_days(tags: Mapping[str, str]) -> list[str] | None:
    """The days of the run's partition or partition range; None for a run without partitions."""
    if PARTITION in tags:
        return [validate_day(tags[PARTITION])]
    start, end = tags.get(RANGE_START), tags.get(RANGE_END)
    return days_between(start, end) if start and end else None


def touched_days(instance: DagsterInstance, run_id: str, asset: str) -> list[str]:
    """The partitions of `asset` the run materialized: its range, and the days outside it that the
    run's commits touched (the Hudi IO manager records those too)."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    events = [r.event_log_entry.dagster_event for r in records]
    return sorted({e.partition for e in events if e is not None and e.asset_key == AssetKey(asset) and e.partition})


def checked_days(context: AssetCheckExecutionContext, asset: str) -> list[str] | None:
    """The days a check of `asset` covers in this run: the run's partition or range (None: every day),
    with the days outside it the run materialized, so a day a late label reached is checked too."""
    days = run_days(context.run.tags)
    return days if days is None else sorted(set(days) | set(touched_days(context.instance, context.run.run_id, asset)))


def listed(items: Sequence[object]) -> str:
    """The first `MAX_LISTED` items, comma-separated, and how many more there are."""
    shown = ", ".join(str(i) for i in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def landed_rows(instance: DagsterInstance, raw_asset: str, day: str, crawled_files: str | None = None) -> int | None:
    """Rows the latest landing of `day` recorded; None when the day never landed here, or when the data
    files a crawl read (`crawled_files`, their `data_fingerprint`) are not the ones that landing landed:
    a delivery through `zfish upload` (which runs no landing) replaced them since, and the landing's
    count says nothing of the files read. A landing that recorded no fingerprint counts as before."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(raw_asset), asset_partitions=[day]), limit=1
    ).records
    if not records:
        return None
    metadata = records[0].asset_materialization.metadata
    files = metadata.get(LANDED_FILES)
    if files is not None and crawled_files is not None and files.value != crawled_files:
        return None
    value = metadata.get(PARTITION_ROW_COUNT, metadata.get(ROW_COUNT))  # ROW_COUNT: landings recorded before
    return None if value is None else int(value.value)


def recorded_schemas(instance: DagsterInstance, asset: str) -> Schemas:
    """The column schemas (`dagster/column_schema`) of `asset`'s latest 200 materializations that have one."""
    records = instance.fetch_materializations(AssetKey(asset), limit=200).records
    return [(r.run_id, {c.name: c.type for c in r.asset_materialization.metadata[COLUMN_SCHEMA].value.columns})
            for r in records if COLUMN_SCHEMA in r.asset_materialization.metadata]


def tables_exist(*names: str, otherwise: str = NO_TABLE_YET) -> Guard:
    """A guard passing the check with `otherwise` while any of `names` is not in the catalog yet."""
    def guard(tables: TableLookup) -> AssetCheckResult | None:
        if all(tables(name) is not None for name in names):
            return None
        return AssetCheckResult(passed=True, description=otherwise)

    return guard


class Input(NamedTuple):
    """One thing a check may read: the resource it needs (if any), and how a run provides it."""

    resource: str | None
    make: Callable[[AssetCheckExecutionContext, str], Any]  # (the run's context, the checked asset)


def _resource(key: str) -> Input:
    return Input(key, lambda context, asset: getattr(context.resources, key))


INPUTS: dict[str, Input] = {
    "asset": Input(None, lambda context, asset: asset),
    "days": Input(None, checked_days),
    "lake": _resource("lake"),
    "catalog": _resource("catalog"),
    "query": _resource("query"),
    "tables": Input("catalog", lambda context, asset: cache(context.resources.catalog.get_table)),
    "landed": Input(None, lambda context, asset: partial(landed_rows, context.instance)),
    "schemas": Input(None, lambda context, asset: recorded_schemas(context.instance, asset)),
}
"""What a check function or guard may name as a parameter (on Glue a table lookup is a GetTable and
GetPartitions, so `tables` fetches each table once per check run, for the guard and the check)."""


@dataclass(frozen=True)
class CheckSpec:
    """One asset check: its asset, name, description and blocking flag (as the UI and `zfish check`
    show them), the pure function computing its result, and a guard answering first if it can."""

    asset: str
    name: str
    description: str
    blocking: bool
    function: Callable[..., AssetCheckResult]
    guard: Guard | None = None

    def reads(self) -> list[str]:
        """The inputs the function and the guard name, checked to be inputs there are."""
        names = [*_parameters(self.function), *(_parameters(self.guard) if self.guard else ())]
        unknown = sorted(set(names) - INPUTS.keys())
        if unknown:
            raise TypeError(f"check {self.asset}/{self.name} reads {', '.join(unknown)}: "
                            f"not among the inputs a check gets ({', '.join(INPUTS)})")
        return list(dict.fromkeys(names))


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def evaluate(spec: CheckSpec, context: AssetCheckExecutionContext) -> AssetCheckResult:
    """The spec's result in this run: its guard's answer if it has one, else its function's."""
    made: dict[str, Any] = {}

    def arguments(function: Callable[..., Any]) -> dict[str, Any]:
        for name in _parameters(function):
            if name not in made:
                made[name] = INPUTS[name].make(context, spec.asset)
        return {name: made[name] for name in _parameters(function)}

    early = spec.guard(**arguments(spec.guard)) if spec.guard is not None else None
    return early if early is not None else spec.function(**arguments(spec.function))


def asset_check_of(spec: CheckSpec) -> AssetChecksDefinition:
    """Dagster's `@asset_check` of one spec, requiring the resources it reads."""
    resources = {INPUTS[name].resource for name in spec.reads()} - {None}

    @asset_check(asset=spec.asset, name=spec.name, description=spec.description, blocking=spec.blocking,
                 required_resource_keys=resources)
    def _check(context: AssetCheckExecutionContext) -> AssetCheckResult:
        return evaluate(spec, context)

    return _check


def asset_checks(specs: Iterable[CheckSpec]) -> list[AssetChecksDefinition]:
    """The `@asset_check`s of `specs`, in their order."""
    return [asset_check_of(spec) for spec in specs]
