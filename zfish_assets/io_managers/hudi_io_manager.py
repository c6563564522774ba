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

Each day's own figures (its rows, what the run redid and deleted there) and the run's figures
(once, on the window's last day) go through the asset's context: Dagster 1.13 gives an IO manager
no call for partition-scoped metadata of its own (see `_running_asset`). The metadata (`metadata.py`) says which days were redone, what the commit
rewrote, and how many rows each day lost to the run's delete commit (images a re-delivery no
longer holds, fish whose label was withdrawn). Days outside the range that the run's commits
touched (a label that arrived late reaching old images, a corrected label) are registered too and
recorded with an `AssetMaterialization` each (Dagster records the range's days only), so the UI and
the run's checks (`check_specs.run_days`) see them.

A run whose inputs (the window's observation days, every outcome day, the join mode, the job's
code) and table are as the window's last successful run left them does not call the engine at all
(`news.py`): it records what the table holds as any run does, registers nothing, and says so
(`engine_skipped`); its checks run as ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any

from dagster import AssetExecutionContext, AssetMaterialization, ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field

from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.job_args import JobArgs
from glue_scripts.zfish_etl.modes import JoinMode
from zfish_assets.backends.hudi_reader import HudiSnapshot, read_hudi_snapshot, table_exists
from zfish_assets.backends.job_code import script_sha256
from zfish_assets.io_managers.metadata import Written, day_metadata, hive_type, news_metadata, run_metadata
from zfish_assets.io_managers.news import NewsLedger, read_inputs, skipped_result
from zfish_assets.dagster_names import META_COLUMNS
from zfish_assets.partitions import DayRange, days_between
from zfish_assets.resources.data_catalog import Catalog
from zfish_assets.resources.engine import Engine
from zfish_assets.resources.lake import Lake
from zfish_assets.retries import retry_transient
from zfish_assets.lazy import lazy_module

pa = lazy_module("pyarrow")

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame


WRITER_WAIT_S = 600.0
"""A second writer's wait for the table: an evening's join takes under a minute, a long backfill minutes."""


@dataclass(frozen=True)
class SourceTables:
    """The crawled tables a join reads, by their catalog names."""

    observations: str
    outcomes: str


@dataclass(frozen=True)
class JoinRequest:
    """What joined_fish_data's asset decided for a run: the days to build, how, and from which tables."""

    window: DayRange  # the run's partition range, parsed where it entered
    mode: JoinMode
    sources: SourceTables

    @property
    def first_day(self) -> str:
        return self.window.first_key

    @property
    def last_day(self) -> str:
        return self.window.last_key

    def days(self) -> tuple[str, ...]:
        return self.window.keys


@dataclass(frozen=True)
class TableSlice:
    """Which days of which Hudi table an output or input is, and where the table lives."""

    table: str
    uri: str  # as hudi-rs and the catalog address it
    spark_uri: str  # as the engine's Spark does (s3:// on Glue, s3a:// for local Spark)
    days: tuple[str, ...] | None  # None: the whole table (an input without partitions)


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
    writer_wait_s: float = Field(
        default=WRITER_WAIT_S, ge=0,
        description="How long a run waits for another writer of the table (its lease, named in the log) before it "
                    "refuses, naming that writer.")

    def table_uri(self, table: str) -> str:
        return self.lake.uri(layout.processed(table))

    def _slice(self, context: OutputContext | InputContext) -> TableSlice:
        table = context.asset_key.path[-1]
        days = tuple(window_days(context)) if context.has_asset_partitions else None
        return TableSlice(table, self.table_uri(table), self.lake.spark_uri(layout.processed(table)), days)

    def handle_output(self, context: OutputContext, obj: JoinRequest) -> None:
        """Have the engine build the days the asset asked for, register the table, record what it holds."""
        target, step = self._slice(context), _running_asset()
        if obj.days() != target.days:
            raise ValueError(f"{target.table}'s asset asked to join {obj.first_day}..{obj.last_day}, but the run "
                             f"materializes {target.days}: return the run's partition range")
        context.log.info(f"upserting {target.table} for {obj.first_day}..{obj.last_day} ({len(obj.days())} days, "
                         f"{obj.mode}) into {target.uri}")
        started, ledger, before = time.monotonic(), self._ledger(target), None
        inputs = read_inputs(self.catalog, target.days, obj.mode.value, script_sha256(), astuple(obj.sources),
                             self.lake)
        since = ledger.unchanged_since(inputs)
        if since is not None:
            context.log.info(f"no news for {obj.first_day}..{obj.last_day}: its observation days, every outcome day, "
                             f"the join mode and the job code are as the run that left {target.table} at commit "
                             f"{since} read them: the engine is not called")
            result = skipped_result(obj.first_day, obj.last_day, obj.mode)
        else:
            before = ledger.instant()
            # The step's key, the same on each retry of it: an engine finds the work it started by it.
            run_key = f"{context.run_id}:{context.step_key}"
            with retry_transient(step.retry_number, f"the {target.table} job"):
                result = self.engine.run_job(self._job_args(obj, target, run_key), run_key=run_key, context=context)
        written = Written.read(target.uri, target.days, self.lake.storage_options(), result, time.monotonic() - started)
        if since is None and written.snapshot is not None:
            self._register(target, written)
        recorded = ledger.record(inputs, before, result) if since is None else since
        observed = self.catalog.partition_parameters(obj.sources.observations)
        for day in target.days:
            step.add_asset_metadata(day_metadata(written, day, observed.get(day, {})), partition_key=day)
        for day in written.beyond():  # Dagster records the range only: these days' events are the only ones
            step.log_event(AssetMaterialization(context.asset_key, partition=day, description=(
                f"redone by the run of {target.days[0]}..{target.days[-1]}: a label reached this day's images"
            ), metadata=day_metadata(written, day, observed.get(day, {}))))
        step.add_asset_metadata({**run_metadata(written, f"{self.catalog.database}.{target.table}"),
                                 **news_metadata(since, recorded)}, partition_key=target.days[-1])

    def _ledger(self, target: TableSlice) -> NewsLedger:
        return NewsLedger(self.lake, target.table, target.uri, self.lake.storage_options())

    def _job_args(self, request: JoinRequest, target: TableSlice, run_key: str) -> JobArgs:
        return JobArgs(
            first_day=request.first_day, last_day=request.last_day, database=self.catalog.database,
            observations_table=request.sources.observations, outcomes_table=request.sources.outcomes,
            target_path=target.spark_uri, target_table=target.table, join_mode=request.mode,
            writer=run_key, writer_wait_s=self.writer_wait_s, **self.catalog.job_arguments(),
        )

    def _register(self, target: TableSlice, written: Written) -> None:
        """Register (or refresh) the Hudi table, with the snapshot's schema, and its partitions in the catalog."""
        schema = written.snapshot.schema
        columns = [(f.name, hive_type(f.type)) for f in schema if f.name not in META_COLUMNS and f.name != "day"]
        self.catalog.put_table(target.table, columns, [("day", "string")], target.uri, "hudi")
        self.catalog.put_partitions(target.table, {day: f"{target.uri}/day={day}" for day in written.registered_days()})

    def load_input(self, context: InputContext) -> HudiSnapshot | pa.Table | SparkDataFrame:
        """The days the input maps to, as the type the input declares (an Arrow table when it declares none)."""
        from pyspark.sql import DataFrame as SparkDataFrame  # here: a code load needs no PySpark

        loaders: dict[type, Callable[[InputContext, TableSlice], Any]] = {
            HudiSnapshot: self._load_snapshot, pa.Table: self._load_arrow, SparkDataFrame: self._load_spark}
        wanted = pa.Table if context.dagster_type.is_any else context.dagster_type.typing_type
        if wanted not in loaders:
            names = ", ".join(f"{t.__module__}.{t.__qualname__}" for t in loaders)
            raise TypeError(f"{context.asset_key.to_user_string()} loads as one of {names}, not {wanted!r}: "
                            "declare the input as one of them")
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
        from zfish_assets.backends.connect_server import resolve_remote
        from zfish_assets.backends.spark_session import get_spark_session, remote_url

        df = get_spark_session(remote=resolve_remote(remote_url(), context.log.info)).read.format("hudi").load(source.spark_uri)
        return df.where(df.day.isin(list(source.days))) if source.days is not None else df
