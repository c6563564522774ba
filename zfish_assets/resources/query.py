"""The query engine: SQL over the catalog's tables, reading registered partitions only.

Asset checks speak SQL to a `QueryEngine`, never to DuckDB or Athena directly, so they run
unchanged on either. DuckDB reads the JSON days with the catalog's schema (no inference) and Hudi
tables through hudi-rs (the snapshot, never a parquet glob, which would see superseded files).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

import duckdb
import pyarrow as pa
from dagster import ConfigurableResource

from glue_scripts.zfish_etl.catalog import CatalogTable
from zfish_assets.resources.catalog import Catalog
from zfish_assets.resources.hudi_reader import read_hudi_snapshot
from zfish_assets.resources.lake import Lake

_SIMPLE = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE",
           "boolean": "BOOLEAN", "timestamp": "TIMESTAMP", "date": "DATE"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def identifier(name: str) -> str:
    """A table or column name checked to be a plain identifier, quoted for SQL."""
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not a plain SQL identifier")
    return f'"{name}"'


def duckdb_type(hive: str) -> str:
    """DuckDB's spelling of a Glue/Hive column type (`struct<a:double>` -> `STRUCT("a" DOUBLE)`)."""
    hive = hive.strip()
    if hive in _SIMPLE:
        return _SIMPLE[hive]
    if hive.startswith("struct<") and hive.endswith(">"):
        fields, depth, current = [], 0, ""
        for ch in hive[len("struct<"):-1]:
            depth += ch == "<"
            depth -= ch == ">"
            if ch == "," and depth == 0:
                fields.append(current)
                current = ""
            else:
                current += ch
        fields.append(current)
        inner = ", ".join(f"{identifier(f.split(':', 1)[0])} {duckdb_type(f.split(':', 1)[1])}" for f in fields)
        return f"STRUCT({inner})"
    if hive.startswith("array<") and hive.endswith(">"):
        return f"{duckdb_type(hive[len('array<'):-1])}[]"
    raise ValueError(f"no DuckDB type for catalog type {hive!r}")


class QueryEngine(ConfigurableResource, ABC):
    """Answers SQL over `<database>.<table>` names, as Athena does."""

    @abstractmethod
    def query(self, sql: str) -> pa.Table:
        """The result of one statement."""

    def scalar(self, sql: str):
        """The single value of a one-row, one-column query."""
        result = self.query(sql)
        return result.column(0)[0].as_py() if result.num_rows else None


class DuckDBQueryEngine(QueryEngine):
    """DuckDB in process over the lake, with views built from the catalog for each query."""

    catalog: Catalog
    lake: Lake

    def _json_view(self, table: CatalogTable) -> str:
        columns = ", ".join(f"{identifier(n)}: '{duckdb_type(t)}'" for n, t in table.columns)
        select_cols = ", ".join(identifier(n) for n, _ in table.columns)
        if not table.partitions:
            nulls = ", ".join(f"CAST(NULL AS {duckdb_type(t)}) AS {identifier(n)}" for n, t in table.columns)
            return f"SELECT {nulls}, CAST(NULL AS VARCHAR) AS day WHERE false"
        globs = [str(self.lake.local_day_dir(table.name, day) / "*.json") for day in table.partitions]
        files = ", ".join("'" + g.replace("'", "''") + "'" for g in globs)
        return (
            f"SELECT {select_cols}, day FROM read_json([{files}], columns={{{columns}}}, "
            "format='newline_delimited', hive_partitioning=true, hive_types={'day': 'VARCHAR'})"
        )

    def query(self, sql: str) -> pa.Table:
        con = duckdb.connect()
        try:
            db = identifier(self.catalog.database)
            con.execute(f"CREATE SCHEMA {db}")
            for name in sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql))):
                table = self.catalog.get_table(name)
                if table is None:
                    continue
                if table.classification == "hudi":
                    snapshot = read_hudi_snapshot(table.location, self.lake.storage_options())
                    con.register(f"__{name}", snapshot)
                    con.execute(f"CREATE VIEW {db}.{identifier(name)} AS SELECT * FROM __{name}")
                else:
                    con.execute(f"CREATE VIEW {db}.{identifier(name)} AS {self._json_view(table)}")
            return con.sql(sql).to_arrow_table()
        finally:
            con.close()
