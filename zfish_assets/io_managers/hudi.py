"""The Hudi IO manager: owns joined_fish_data, a copy-on-write table partitioned by `day`.

Storing the asset for a range of days hands the window to an engine (local Spark, or a Glue job)
that runs the shared job code and upserts; the IO manager then registers the table in the catalog
and records, per day, what the table holds. Loading reads the snapshot of the requested days
through hudi-rs (no JVM), or through Spark for a consumer that asks for a Spark DataFrame; a
consumer that must choose or record the commit it reads asks for a `HudiSnapshot` handle.

Unlike dagster-deltalake's IO manager, which reads only a window's first day, the whole mapped
window is read, and a range run writes once for the whole range (single-run backfills).

`join_mode` (`ZFISH_JOIN_MODE`): `incremental` (default) has the job upsert only the rows that
changed, so a run rewrites only the partitions with news; `full` re-upserts the whole range. The
run still stands for every day of its range (each is verified current either way); the metadata
says which days were redone, what the commit rewrote, and how many rows each day lost to the
run's delete commit (images a re-delivery no longer holds, fish whose label was withdrawn).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext, TableColumn, TableSchema
from pydantic import Field

from glue_scripts.joined_fish_data import JobArgs
from zfish_assets import settings
from zfish_assets.partitions import days_between
from zfish_assets.resources.catalog import Catalog
from zfish_assets.resources.engines import Engine
from zfish_assets.engines.hudi_reader import HudiSnapshot, completed_commits, read_hudi_snapshot, table_exists
from zfish_assets.resources.lake import Lake
from zfish_assets.retries import retry_transient
from zfish_assets.names import COLUMN_SCHEMA, COMMIT_TIME, FILE_NAME, META_COLUMNS, ROW_COUNT


@dataclass(frozen=True)
class JoinPlan:
    """What joined_fish_data is made of: the crawled tables to join (the IO manager owns where)."""

    observations_table: str = "observations"
    outcomes_table: str = "outcomes"


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


class HudiIOManager(ConfigurableIOManager):
    """Writes through an engine, reads through hudi-rs; the table lives in the lake under `processed/`."""

    engine: Engine
    catalog: Catalog
    lake: Lake
    join_mode: str = Field(default_factory=settings.join_mode,
                           description="incremental (upsert the changed rows only) or full (ZFISH_JOIN_MODE).")

    def table_uri(self, table: str) -> str:
        return self.lake.uri(f"processed/{table}")

    def handle_output(self, context: OutputContext, obj: JoinPlan) -> None:
        table = context.asset_key.path[-1]
        days = window_days(context)
        uri = self.table_uri(table)
        args = JobArgs(
            first_day=days[0], last_day=days[-1], database=self.catalog.database,
            observations_table=obj.observations_table, outcomes_table=obj.outcomes_table,
            target_path=self.lake.spark_uri(f"processed/{table}"), target_table=table, join_mode=self.join_mode,
            **{k.removeprefix("--"): v for k, v in self.catalog.job_arguments().items()},
        )
        context.log.info(f"upserting {table} for {days[0]}..{days[-1]} ({len(days)} days, {self.join_mode}) into {uri}")
        started = time.monotonic()
        # The step's key, the same on each retry of it: an engine finds the work it started by it.
        run_key = f"{context.run_id}:{context.step_key}"
        with retry_transient(context.step_context.previous_attempt_count, f"the {table} job"):
            result = self.engine.run_job(args, run_key=run_key)
        duration = time.monotonic() - started
        options = self.lake.storage_options()
        snapshot = read_hudi_snapshot(uri, options, days) if table_exists(uri, options) else None
        per_day = _rows_per_day(snapshot, days)
        if snapshot is not None:
            self._register(table, uri, snapshot.schema,
                           sorted({d for d, n in per_day.items() if n} | set(result.partitions_touched)))
        commits = completed_commits(uri, options) if snapshot is not None else []
        context.add_output_metadata(
            {
                "table_uri": MetadataValue.path(uri),
                "window": f"{days[0]}..{days[-1]}",
                "rows_upserted": result.rows_upserted,
                "observations_read": result.observations_read,
                "commit_instant": result.commit_instant or "",
                "latest_commit": commits[-1] if commits else "",
                "files_written": result.files_written,
                "bytes_written": result.bytes_written,
                "join_mode": result.join_mode,
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
                "duration_s": round(duration, 2),
                **({COLUMN_SCHEMA: _column_schema(snapshot.schema)} if snapshot is not None else {}),
                **({"preview": MetadataValue.md(_preview(snapshot))} if snapshot is not None else {}),
            }
        )
        observed = self.catalog.partition_parameters(obj.observations_table)
        rewritten = _files_rewritten(snapshot, result.commit_instant)
        for day in days:
            observations = int(observed.get(day, {}).get("recordCount", 0))
            context.step_context.add_asset_metadata(
                {ROW_COUNT: per_day[day], "rows_upserted": result.rows_per_day.get(day, 0),
                 "rows_deleted": result.deleted_per_day.get(day, 0),
                 # numbers per partition, so the UI plots them over the days
                 "observations": observations,
                 "labeled_fraction": round(per_day[day] / observations, 4) if observations else 0.0,
                 "files_rewritten": rewritten.get(day, 0),
                 "job_duration_s": round(duration, 2)},
                asset_key=context.asset_key,
                partition_key=day,
            )

    def _register(self, table: str, uri: str, schema: pa.Schema, days: list[str]) -> None:
        """Register (or refresh) the Hudi table and the partitions of `days` in the catalog.

        Whichever engine wrote, the catalog then holds every partition with rows (Athena reads
        registered partitions only): those of the window, and the earlier days the commit redid.
        On Glue, Hudi's hive sync registers them too; registering again is idempotent.
        """
        columns = [(f.name, hive_type(f.type)) for f in schema if f.name not in META_COLUMNS and f.name != "day"]
        self.catalog.put_table(table, columns, [("day", "string")], uri, "hudi")
        self.catalog.put_partitions(table, {day: f"{uri}/day={day}" for day in days})

    def load_input(self, context: InputContext):
        table = context.asset_key.path[-1]
        uri = self.table_uri(table)
        days = window_days(context) if context.has_asset_partitions else None
        if context.dagster_type.typing_type is HudiSnapshot:
            return HudiSnapshot(uri, tuple(days) if days is not None else None, self.lake.storage_options())
        if context.dagster_type.typing_type.__module__.startswith("pyspark"):
            from zfish_assets.engines.spark_session import get_spark_session

            df = get_spark_session().read.format("hudi").load(self.lake.spark_uri(f"processed/{table}"))
            return df.where(df.day.isin(days)) if days is not None else df
        if not table_exists(uri, self.lake.storage_options()):
            context.log.warning(f"{table} has no Hudi table at {uri} yet: reading 0 rows")
            return pa.table({})
        return read_hudi_snapshot(uri, self.lake.storage_options(), days)


def _rows_per_day(snapshot: pa.Table | None, days: list[str]) -> dict[str, int]:
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
