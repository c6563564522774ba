"""The Hudi IO manager: owns joined_fish_data, a copy-on-write table partitioned by `day`.

The asset returns what it decided (a `JoinRequest`: the window, the join mode, the source tables);
storing it hands the request to an engine (local Spark, or a Glue job) that runs the shared job
code and upserts. The IO manager then registers the table and its partitions in the catalog (the
one place that does, whichever engine wrote) and records, per day, what the table holds. Loading
reads the requested days as the input declares: a `HudiSnapshot` handle (for a consumer that must
choose or record the commit it reads), an Arrow table through hudi-rs (no JVM; also for an input
declared without a type), or a Spark DataFrame.

As in Dagster's `DbIOManager`, a `TableSlice` says which days of which table an output or input
is. Unlike dagster-deltalake's IO manager, which reads only a window's first day, the whole mapped
window is read, and a range run writes once for the whole range (single-run backfills).

The run's figures go on every day's materialization (`OutputContext.add_output_metadata`); each
day's own figures (its rows, what the run redid and deleted there) through the asset's context:
Dagster 1.13 gives an IO manager no call for partition-scoped metadata of its own (see
`_running_asset`). The metadata says which days were redone, what the commit rewrote, and how many
rows each day lost to the run's delete commit (images a re-delivery no longer holds, fish whose
label was withdrawn).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)
from pyspark.sql import DataFrame as SparkDataFrame

from glue_scripts.joined_fish_data import JobArgs, JobResult
from glue_scripts.zfish_etl.modes import JoinMode
from zfish_assets.engines.hudi_reader import HudiSnapshot, completed_commits, read_hudi_snapshot, table_exists
from zfish_assets.names import COLUMN_SCHEMA, COMMIT_TIME, FILE_NAME, META_COLUMNS, ROW_COUNT
from zfish_assets.partitions import days_between
from zfish_assets.resources.catalog import Catalog
from zfish_assets.resources.engines import Engine
from zfish_assets.resources.lake import Lake
from zfish_assets.retries import retry_transient


@dataclass(frozen=True)
class SourceTables:
    """The crawled tables a join reads, by their catalog names."""

    observations: str
    outcomes: str


@dataclass(frozen=True)
class JoinRequest:
    """What joined_fish_data's asset decided for a run: the days to build, how, and from which tables."""

    first_day: str
    last_day: str
    mode: JoinMode
    sources: SourceTables

    def days(self) -> tuple[str, ...]:
        return tuple(days_between(self.first_day, self.last_day))


@dataclass(frozen=True)
class TableSlice:
    """Which days of which Hudi table an output or input is, and where the table lives."""

    table: str
    uri: str  # as hudi-rs and the catalog address it
    spark_uri: str  # as the engine's Spark does (s3:// on Glue, s3a:// for local Spark)
    days: tuple[str, ...] | None  # None: the whole table (an input without partitions)


@dataclass(frozen=True)
class Written:
    """The job's result and what the table holds for the written slice after it, read once."""

    result: JobResult
    duration_s: float
    snapshot: pa.Table | None  # None: the table does not exist (nothing was ever written)
    rows_per_day: dict[str, int]
    files_rewritten: dict[str, int]
    commits: list[str]

    @classmethod
    def read(cls, target: TableSlice, options: Mapping[str, str], result: JobResult, duration_s: float) -> Written:
        days = target.days or ()
        snapshot = read_hudi_snapshot(target.uri, options, days) if table_exists(target.uri, options) else None
        return cls(result, duration_s, snapshot, _rows_per_day(snapshot, days),
                   _files_rewritten(snapshot, result.commit_instant),
                   completed_commits(target.uri, options) if snapshot is not None else [])

    def registered_days(self) -> list[str]:
        """The days the catalog must list (Athena reads registered partitions only): those of the
        slice with rows, and the earlier days the commit redid."""
        return sorted({d for d, n in self.rows_per_day.items() if n} | set(self.result.partitions_touched))


def hive_type(arrow_type: pa.DataType) -> str:
    """The catalog type of an Arrow column of the Hudi table."""
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "bigint" if arrow_type.bit_width == 64 else "int"
    if pa.types.is_floating(arrow_type):
        return "double"
    return "string"


def window_days(context: OutputContext | InputContext) -> list[str]:
    """The days of the run's (or the mapped upstream) partition range."""
    key_range = context.asset_partition_key_range
    return days_between(key_range.start, key_range.end)


def _running_asset() -> AssetExecutionContext:
    """The context of the asset step whose output is being stored.

    What an IO manager cannot do through its OutputContext in Dagster 1.13: add metadata to one
    partition's materialization (`add_output_metadata` reaches every partition of the output alike,
    and an `AssetMaterialization` logged here is a second event per partition, recorded before
    Dagster's own, which then reads as the latest), and know the step's retry number. The asset's
    context has both (`add_asset_metadata(partition_key=...)`, `retry_number`); Dagster keeps it
    current while the step stores its outputs, where `AssetExecutionContext.get()` returns it.
    """
    return AssetExecutionContext.get()


class HudiIOManager(ConfigurableIOManager):
    """Writes through an engine, reads through hudi-rs (or Spark); the table lives in the lake under `processed/`."""

    engine: Engine
    catalog: Catalog
    lake: Lake

    def table_uri(self, table: str) -> str:
        return self.lake.uri(f"processed/{table}")

    def _slice(self, context: OutputContext | InputContext) -> TableSlice:
        table = context.asset_key.path[-1]
        days = tuple(window_days(context)) if context.has_asset_partitions else None
        return TableSlice(table, self.table_uri(table), self.lake.spark_uri(f"processed/{table}"), days)

    def handle_output(self, context: OutputContext, obj: JoinRequest) -> None:
        """Have the engine build the days the asset asked for, register the table, record what it holds."""
        target, step = self._slice(context), _running_asset()
        if obj.days() != target.days:
            raise ValueError(f"{target.table}'s asset asked to join {obj.first_day}..{obj.last_day}, but the run "
                             f"materializes {target.days}: return the run's partition range")
        context.log.info(f"upserting {target.table} for {obj.first_day}..{obj.last_day} ({len(obj.days())} days, "
                         f"{obj.mode}) into {target.uri}")
        started = time.monotonic()
        # The step's key, the same on each retry of it: an engine finds the work it started by it.
        with retry_transient(step.retry_number, f"the {target.table} job"):
            result = self.engine.run_job(self._job_args(obj, target), run_key=f"{context.run_id}:{context.step_key}")
        written = Written.read(target, self.lake.storage_options(), result, time.monotonic() - started)
        if written.snapshot is not None:
            self._register(target, written)
        context.add_output_metadata(run_metadata(target, written))
        observed = self.catalog.partition_parameters(obj.sources.observations)
        for day in target.days:
            step.add_asset_metadata(day_metadata(written, day, observed.get(day, {})), partition_key=day)

    def _job_args(self, request: JoinRequest, target: TableSlice) -> JobArgs:
        return JobArgs(
            first_day=request.first_day, last_day=request.last_day, database=self.catalog.database,
            observations_table=request.sources.observations, outcomes_table=request.sources.outcomes,
            target_path=target.spark_uri, target_table=target.table, join_mode=request.mode,
            **self.catalog.job_arguments(),
        )

    def _register(self, target: TableSlice, written: Written) -> None:
        """Register (or refresh) the Hudi table, with the snapshot's schema, and its partitions in the catalog."""
        schema = written.snapshot.schema
        columns = [(f.name, hive_type(f.type)) for f in schema if f.name not in META_COLUMNS and f.name != "day"]
        self.catalog.put_table(target.table, columns, [("day", "string")], target.uri, "hudi")
        self.catalog.put_partitions(target.table, {day: f"{target.uri}/day={day}" for day in written.registered_days()})

    def load_input(self, context: InputContext) -> HudiSnapshot | pa.Table | SparkDataFrame:
        """The days the input maps to, as the type the input declares (an Arrow table when it declares none)."""
        loaders: dict[type, Callable[[InputContext, TableSlice], Any]] = {
            HudiSnapshot: self._load_snapshot, pa.Table: self._load_arrow, SparkDataFrame: self._load_spark}
        wanted = pa.Table if context.dagster_type.is_any else context.dagster_type.typing_type
        if wanted not in loaders:
            raise TypeError(f"{context.asset_key.to_user_string()} loads as one of "
                            f"{', '.join(t.__qualname__ for t in loaders)}, not {wanted!r}: declare the input so")
        return loaders[wanted](context, self._slice(context))

    def _load_snapshot(self, context: InputContext, source: TableSlice) -> HudiSnapshot:
        return HudiSnapshot(source.uri, source.days, self.lake.storage_options())

    def _load_arrow(self, context: InputContext, source: TableSlice) -> pa.Table:
        options = self.lake.storage_options()
        if not table_exists(source.uri, options):
            context.log.warning(f"{source.table} has no Hudi table at {source.uri} yet: reading 0 rows")
            return pa.table({})
        return read_hudi_snapshot(source.uri, options, source.days)

    def _load_spark(self, context: InputContext, source: TableSlice) -> SparkDataFrame:
        from zfish_assets.engines.spark_session import get_spark_session

        df = get_spark_session().read.format("hudi").load(source.spark_uri)
        return df.where(df.day.isin(list(source.days))) if source.days is not None else df


def run_metadata(target: TableSlice, written: Written) -> dict[str, Any]:
    """The run's figures, the same on every day's materialization."""
    result, snapshot = written.result, written.snapshot
    return {
        "table_uri": MetadataValue.path(target.uri),
        "window": f"{target.days[0]}..{target.days[-1]}",
        "rows_upserted": result.rows_upserted,
        "observations_read": result.observations_read,
        "commit_instant": result.commit_instant or "",
        "latest_commit": written.commits[-1] if written.commits else "",
        "files_written": result.files_written,
        "bytes_written": result.bytes_written,
        "join_mode": result.join_mode.value,
        "rows_labeled": result.rows_labeled,
        "days_redone": len(result.rows_per_day),
        "redone": MetadataValue.json(sorted(result.rows_per_day)),
        "partitions_touched": len(result.partitions_touched),
        "files_replaced": result.files_replaced,
        "bytes_replaced": result.bytes_replaced,
        # the older days read for stale labels: only those a label newer than the last commit reaches
        "stale_scan": MetadataValue.json({"all_older_days": result.days_scanned is None,
                                          "days": result.days_scanned or []}),
        # rows of the days read they no longer make (dropped, moved, label withdrawn), per day
        "rows_deleted": result.rows_deleted,
        "deleted": MetadataValue.json(result.deleted_per_day),
        "delete_instant": result.delete_instant or "",
        "duration_s": round(written.duration_s, 2),
        **({COLUMN_SCHEMA: _column_schema(snapshot.schema), "preview": MetadataValue.md(_preview(snapshot))}
           if snapshot is not None else {}),
    }


def day_metadata(written: Written, day: str, observed: Mapping[str, str]) -> dict[str, Any]:
    """One day's figures, numbers so that the UI plots them over the days; `observed` is the
    observations' catalog partition of the day (its crawl's record count)."""
    rows, observations = written.rows_per_day[day], int(observed.get("recordCount", 0))
    return {
        ROW_COUNT: rows,
        "rows_upserted": written.result.rows_per_day.get(day, 0),
        "rows_deleted": written.result.deleted_per_day.get(day, 0),
        "observations": observations,
        "labeled_fraction": round(rows / observations, 4) if observations else 0.0,
        "files_rewritten": written.files_rewritten.get(day, 0),
        "job_duration_s": round(written.duration_s, 2),
    }


def _rows_per_day(snapshot: pa.Table | None, days: tuple[str, ...]) -> dict[str, int]:
    counts = dict.fromkeys(days, 0)
    if snapshot is not None and snapshot.num_rows:
        for row in snapshot.group_by("day").aggregate([("day", "count")]).to_pylist():
            counts[row["day"]] = row["day_count"]
    return counts


def _files_rewritten(snapshot: pa.Table | None, instant: str | None) -> dict[str, int]:
    """Per day, the base files the commit `instant` (re)wrote: the files its rows now live in."""
    if snapshot is None or not instant or not snapshot.num_rows:
        return {}
    written = snapshot.filter(pc.equal(snapshot[COMMIT_TIME], instant))
    pairs = {(d, f) for d, f in zip(written["day"].to_pylist(), written[FILE_NAME].to_pylist())}
    counts: dict[str, int] = {}
    for day, _ in pairs:
        counts[day] = counts.get(day, 0) + 1
    return counts


def _preview(snapshot: pa.Table, limit: int = 5) -> str:
    """A markdown table of a few rows (no Hudi meta columns), for the UI."""
    columns = [c for c in snapshot.column_names if c not in META_COLUMNS]
    rows = snapshot.select(columns).slice(0, limit).to_pylist()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return f"{snapshot.num_rows} rows in the window; the first {len(rows)}:\n\n" + "\n".join(lines)


def _column_schema(schema: pa.Schema) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(f.name, hive_type(f.type)) for f in schema if f.name not in META_COLUMNS]
    )
