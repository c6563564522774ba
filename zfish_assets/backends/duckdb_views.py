"""DuckDB views of catalog tables: what `DuckDBQuery` reads, built per query from the catalog.

The JSON days are read with the catalog's schema (no inference) where the catalog's partitions
point: the day's accepted rows, as Athena reads them (`glue_scripts/zfish_etl/accepted.py`). A day
registered at its raw folder (crawled before the accepted rows existed) is read minus the lines
its crawl quarantined, the same rows; Hudi tables through the files hudi-rs names as the latest snapshot (never a parquet
glob, which would see superseded files). A view may cover some days only, so that a check of one
evening reads that evening. The lake is whatever answers `LakeFiles` (the lake resource does).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol


from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.accepted import rows_key
from glue_scripts.zfish_etl.catalog import CatalogTable
from glue_scripts.zfish_etl.contract import struct_fields
from glue_scripts.zfish_etl.judging import data_lines, is_data_file
from glue_scripts.zfish_etl.ledger import read_ledger
from zfish_assets.backends.hudi_reader import snapshot_dataset
from zfish_assets.backends.sql import identifier, sql_string
from zfish_assets.lazy import lazy_module

duckdb = lazy_module("duckdb")
pa = lazy_module("pyarrow")
pafs = lazy_module("pyarrow.fs")

_SIMPLE = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE",
           "boolean": "BOOLEAN", "timestamp": "TIMESTAMP", "date": "DATE"}


class LakeFiles(Protocol):
    """What the views read of the lake: a day's folder on local disk, an object's bytes, storage options."""

    def local_day_dir(self, table: str, day: str) -> Path: ...

    def uri(self, key: str = "") -> str: ...

    def local_object(self, key: str) -> Path: ...

    def get_bytes(self, key: str) -> bytes: ...

    def storage_options(self) -> dict[str, str]: ...


def duckdb_type(hive: str) -> str:
    """DuckDB's spelling of a Glue/Hive column type (`struct<a:double>` -> `STRUCT("a" DOUBLE)`)."""
    hive = hive.strip()
    if hive in _SIMPLE:
        return _SIMPLE[hive]
    if hive.startswith("struct<") and hive.endswith(">"):
        inner = ", ".join(f"{identifier(name)} {duckdb_type(ftype)}" for name, ftype in struct_fields(hive))
        return f"STRUCT({inner})"
    if hive.startswith("array<") and hive.endswith(">"):
        return f"{duckdb_type(hive[len('array<'):-1])}[]"
    raise ValueError(f"no DuckDB type for catalog type {hive!r}")


def json_structure(columns: list[tuple[str, str]]) -> str:
    """The `json_transform` structure of catalog columns: undeclared keys are ignored, as the contract does."""
    def shape(hive: str) -> object:
        hive = hive.strip()
        return {n: shape(t) for n, t in struct_fields(hive)} if hive.startswith("struct<") else duckdb_type(hive)

    return json.dumps({name: shape(hive) for name, hive in columns})


def table_view(con: duckdb.DuckDBPyConnection, lake: LakeFiles, table: CatalogTable,
               days: Sequence[str] | None) -> str:
    """The SELECT of `table`'s view over `days` (every registered day when None)."""
    view = hudi_view if table.classification == "hudi" else json_view
    return view(con, lake, table, days)


def accepted_file(lake: LakeFiles, location: str) -> Path | None:
    """The local file of the accepted rows a partition `location` names (None: a raw day folder)."""
    base = lake.uri().rstrip("/") + "/"
    key = location.removeprefix(base).strip("/") if location.startswith(base) else ""
    return lake.local_object(rows_key(key)) if key.startswith(layout.accepted_dir() + "/") else None


def json_view(con: duckdb.DuckDBPyConnection, lake: LakeFiles, table: CatalogTable,
              days: Sequence[str] | None) -> str:
    """The registered days' rows (of `days` only, if given): the accepted rows the partitions point
    at (`accepted_view`), and for days registered at their raw folder `raw_view`'s."""
    wanted = [day for day in table.partitions if days is None or day in set(days)]
    accepted = {day: accepted_file(lake, table.partitions[day]) for day in wanted}
    views = [v for v in (accepted_view(table, [f for f in accepted.values() if f is not None]),
                         raw_view(con, lake, table, [d for d, f in accepted.items() if f is None])) if v]
    return " UNION ALL ".join(views) if views else empty_view(table)


def accepted_view(table: CatalogTable, files: list[Path]) -> str:
    """The rows of accepted objects through DuckDB's JSON reader, `day` from their `day=` folder
    ("" when there are none). Every line is one the contract accepted and normalized."""
    if not files:
        return ""
    columns = ", ".join(f"{identifier(n)}: '{duckdb_type(t)}'" for n, t in table.columns)
    paths = ", ".join(sql_string(str(f)) for f in files)
    return (f"SELECT {', '.join(identifier(n) for n, _ in table.columns)}, day FROM read_json([{paths}], "
            f"columns={{{columns}}}, format='newline_delimited', hive_partitioning=true, "
            "hive_types={'day': 'VARCHAR'})")


def raw_view(con: duckdb.DuckDBPyConnection, lake: LakeFiles, table: CatalogTable, wanted: Sequence[str]) -> str:
    """The rows of days registered at their raw folder (`wanted`), minus the lines the crawl
    quarantined ("" when there are none).

    Days with an empty quarantine (nearly all) go through DuckDB's JSON reader: every line of
    theirs passed the contract, whose domains DuckDB carries. Days with one are cut into lines
    by the contract's `data_lines` (`kept_lines`), their quarantined lines left out by (day,
    file, line) as the Spark job does, so bytes DuckDB would choke on (not UTF-8, a field twice)
    never reach it; the rest cast cleanly. Columns are the catalog's.
    """
    # A registered day whose files are gone holds no rows, as Athena reads an empty partition
    # (DuckDB's readers refuse a path that matches nothing); `partitions_match_lake` names the day.
    folders = {day: lake.local_day_dir(table.name, day) for day in wanted}
    partitions = [day for day, folder in folders.items() if next(folder.glob("*.json"), None) is not None]
    if not partitions:
        return ""
    ledgers = {day: read_ledger(lake.get_bytes, table.name, day) or [] for day in partitions}
    entries = [e for found in ledgers.values() for e in found]

    def files(days: list[str]) -> str:
        globs = [str(folders[day] / "*.json") for day in days]
        return ", ".join(sql_string(g) for g in globs)  # DuckDB's glob skips subfolders, as the job does

    views = []
    clean = [day for day, found in ledgers.items() if not found]
    if clean:
        columns = ", ".join(f"{identifier(n)}: '{duckdb_type(t)}'" for n, t in table.columns)
        views.append(
            f"SELECT {', '.join(identifier(n) for n, _ in table.columns)}, day FROM read_json([{files(clean)}], "
            f"columns={{{columns}}}, format='newline_delimited', hive_partitioning=true, hive_types={{'day': 'VARCHAR'}})"
        )
    if entries:
        kept = f"__kept_{table.name}"
        con.register(kept, kept_lines(table.name, {day: (folders[day], found)
                                                   for day, found in ledgers.items() if found}))
        structure = json_structure(list(table.columns)).replace("'", "''")
        views.append(
            f"SELECT {', '.join(f'r.{identifier(n)} AS {identifier(n)}' for n, _ in table.columns)}, day FROM "
            f"(SELECT day, json_transform(text, '{structure}') AS r FROM {kept})"
        )
    return " UNION ALL ".join(views)


def empty_view(table: CatalogTable) -> str:
    """No rows, with the table's columns and types."""
    nulls = ", ".join(f"CAST(NULL AS {duckdb_type(t)}) AS {identifier(n)}" for n, t in table.columns)
    return f"SELECT {nulls}, CAST(NULL AS VARCHAR) AS day WHERE false"


def kept_lines(table: str, ledgers: Mapping[str, tuple[Path, list]]) -> pa.Table:
    """(day, text) of the lines of days with a quarantine (day -> its local folder and quarantine
    entries) that the quarantine does not name.

    Cut and decoded by the contract's own `data_lines` (bytes, strict UTF-8), as the crawl and the
    job cut them: DuckDB never sees bytes the crawl refused.
    """
    days, texts = [], []
    for day, (folder, entries) in ledgers.items():
        excluded = {(e.file, e.line) for e in entries}
        for path in sorted(p for p in folder.iterdir() if p.is_file() and is_data_file(p.name)):
            for number, raw in data_lines(path.read_bytes()):
                if (path.name, number) in excluded:
                    continue
                try:
                    texts.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    raise ValueError(f"{table} day={day} {path.name}:{number} is not UTF-8 and not in the "
                                     "quarantine: the file changed after the crawl. Re-crawl the day.") from None
                days.append(day)
    return pa.table({"day": pa.array(days, pa.string()), "text": pa.array(texts, pa.string())})


def hudi_view(con: duckdb.DuckDBPyConnection, lake: LakeFiles, table: CatalogTable,
              days: Sequence[str] | None) -> str:
    """The latest snapshot's rows (of `days` only, if given), from the base files hudi-rs names.

    Local files go to DuckDB's own Parquet reader, which also skips files by their statistics
    (a day's file for another day); files elsewhere (S3) through the Arrow dataset.
    """
    dataset = snapshot_dataset(table.location, lake.storage_options(), days)
    if isinstance(dataset.filesystem, pafs.LocalFileSystem) and dataset.files:
        files = ", ".join(sql_string(f) for f in dataset.files)
        return f"SELECT * FROM read_parquet([{files}], union_by_name=true, hive_partitioning=false)"
    con.register(f"__{table.name}", dataset)
    return f"SELECT * FROM __{table.name}"
