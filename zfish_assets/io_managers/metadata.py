"""What the Hudi IO manager records after a write: the table's state for the written days (`Written`),
read once, and the metadata made of it, as Dagster's UI reads it: each day's own figures (numbers,
`dagster/partition_row_count` among them, so the UI plots them over the days) on every day's
materialization, and the run's figures once, on the window's last day: the materialization the
asset's overview shows, where `dagster/row_count` is the whole table's rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dagster import MetadataValue, TableColumn, TableSchema

from glue_scripts.zfish_etl.contract import OBSERVATIONS, OUTCOMES
from glue_scripts.zfish_etl.job_args import JobResult
from zfish_assets.bounded import bounded_json, shortened
from zfish_assets.backends.hudi_reader import completed_commits, read_hudi_snapshot, snapshot_dataset, table_exists
from zfish_assets.dagster_names import (
    COLUMN_SCHEMA, COMMIT_TIME, FILE_NAME, META_COLUMNS, PARTITION_ROW_COUNT, ROW_COUNT, TABLE_NAME, URI,
)
from zfish_assets.lazy import lazy_module

pa = lazy_module("pyarrow")
pc = lazy_module("pyarrow.compute")

JOINED_DESCRIPTIONS = {
    **OUTCOMES.descriptions(), **OBSERVATIONS.descriptions(),
    "outcome_day": "The day the fish's latest label arrived",
    "day": "The day the image was taken: the table's partition",
}
"""The joined table's columns described by the contracts they come from (genes flattened)."""
PREVIEW_CELL = 60
"""Characters of a value the preview shows (the image ids are 36)."""


@dataclass(frozen=True)
class Written:
    """The job's result and what the table holds for the written slice after it, read once."""

    uri: str  # the table's
    days: tuple[str, ...]  # the written slice's (the run's range)
    result: JobResult
    duration_s: float
    snapshot: pa.Table | None  # None: the table does not exist (nothing was ever written)
    rows_per_day: dict[str, int]  # of the range's days and of `beyond`
    files_rewritten: dict[str, int]
    commits: list[str]
    table_rows: int  # the whole table's, from its base files' footers (no data read)

    @classmethod
    def read(cls, uri: str, days: tuple[str, ...], options: Mapping[str, str], result: JobResult,
             duration_s: float) -> Written:
        exists = table_exists(uri, options)
        snapshot = read_hudi_snapshot(uri, options, days) if exists else None
        beyond = tuple(sorted(set(result.partitions_touched) - set(days)))
        older = read_hudi_snapshot(uri, options, beyond) if exists and beyond else None
        instant = result.commit_instant
        return cls(uri, days, result, duration_s, snapshot,
                   {**_rows_per_day(snapshot, days), **_rows_per_day(older, beyond)},
                   {**_files_rewritten(snapshot, instant), **_files_rewritten(older, instant)},
                   completed_commits(uri, options) if exists else [],
                   snapshot_dataset(uri, options).count_rows() if exists else 0)

    def beyond(self) -> list[str]:
        """The days outside the range the run's commits touched (late labels, stale labels): days the
        run materialized though Dagster did not ask for them."""
        return sorted(set(self.result.partitions_touched) - set(self.days))

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


def run_metadata(written: Written, table_name: str) -> dict[str, Any]:
    """The run's figures, recorded once (on the window's last day); `table_name` as the catalog names it."""
    result, snapshot = written.result, written.snapshot
    return {
        ROW_COUNT: written.table_rows,
        URI: MetadataValue.path(written.uri),
        TABLE_NAME: table_name,
        "window": f"{written.days[0]}..{written.days[-1]}",
        "window_rows_upserted": result.rows_upserted,
        "observations_read": result.observations_read,
        "commit_instant": result.commit_instant or "",
        "latest_commit": written.commits[-1] if written.commits else "",
        "files_written": result.files_written,
        "bytes_written": result.bytes_written,
        "join_mode": result.join_mode.value,
        "rows_labeled": result.rows_labeled,
        "days_redone": len(result.rows_per_day),
        "redone": bounded_json(sorted(result.rows_per_day)),
        "partitions_touched": len(result.partitions_touched),
        "files_replaced": result.files_replaced,
        "bytes_replaced": result.bytes_replaced,
        # the days not read whole (older, or unchanged in the window) the stale-label scan read: only those
        # a label newer than the last commit reaches
        "stale_scan": bounded_json({"all_older_days": result.days_scanned is None,
                                          "days": result.days_scanned or []}),
        # the days outside the window redone for labels that arrived late, and those read to index their fish
        "late_labels": bounded_json({"days": result.days_placed, "indexed": result.days_indexed}),
        "days_beyond_window": bounded_json(written.beyond()),
        # the window's days not read: no news since the last commit built them
        "days_unchanged": len(result.days_unchanged),
        # rows of the days read they no longer make (dropped, moved, label withdrawn), per day
        "window_rows_deleted": result.rows_deleted,
        "deleted": bounded_json(result.deleted_per_day),
        "delete_instant": result.delete_instant or "",
        "duration_s": round(written.duration_s, 2),
        **({COLUMN_SCHEMA: _column_schema(snapshot.schema), "preview": MetadataValue.md(_preview(snapshot))}
           if snapshot is not None else {}),
    }


def news_metadata(since: str | None, recorded: str | None) -> dict[str, Any]:
    """Whether the run called the engine (`io_managers/news.py`): `engine_skipped` with the commit its
    inputs were last read for, or the commit a later run with the same inputs may skip from ("" when the
    run could not record one: an input without fingerprint, another writer's commit since)."""
    return {"engine_skipped": since is not None, "no_news_since": since or recorded or ""}


def day_metadata(written: Written, day: str, observed: Mapping[str, str]) -> dict[str, Any]:
    """One day's figures, numbers so that the UI plots them over the days; `observed` is the
    observations' catalog partition of the day (its crawl's record count)."""
    rows, observations = written.rows_per_day[day], int(observed.get("recordCount", 0))
    return {
        PARTITION_ROW_COUNT: rows,
        "rows_upserted": written.result.rows_per_day.get(day, 0),
        "rows_deleted": written.result.deleted_per_day.get(day, 0),
        "observations": observations,
        "labeled_fraction": round(rows / observations, 4) if observations else 0.0,
        "files_rewritten": written.files_rewritten.get(day, 0),
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


def _cell(value: object) -> str:
    """A value as one markdown table cell: at most `PREVIEW_CELL` characters (a string from the data
    can be any length), its `|` escaped and line breaks shown as spaces, so each row stays one row."""
    text = " ".join(str(value).splitlines())
    return shortened(text, PREVIEW_CELL).replace("|", "\\|")


def _preview(snapshot: pa.Table, limit: int = 5) -> str:
    """A markdown table of a few rows (no Hudi meta columns), for the UI."""
    columns = [c for c in snapshot.column_names if c not in META_COLUMNS]
    rows = snapshot.select(columns).slice(0, limit).to_pylist()
    lines = ["| " + " | ".join(map(_cell, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in rows]
    return f"{snapshot.num_rows} rows in the window; the first {len(rows)}:\n\n" + "\n".join(lines)


def _column_schema(schema: pa.Schema) -> TableSchema:
    return TableSchema(columns=[
        TableColumn(f.name, hive_type(f.type), description=JOINED_DESCRIPTIONS.get(f.name, f"Expression level of gene "
                    f"{f.name} (a member of genetic_markers added as it arrived)"))
        for f in schema if f.name not in META_COLUMNS
    ])
