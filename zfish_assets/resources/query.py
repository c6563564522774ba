"""The query engine: SQL over the catalog's tables, reading registered partitions only.

Asset checks speak SQL to a `QueryEngine`, never to DuckDB or Athena directly, so they run
unchanged on either (the SQL they use is common to DuckDB and Athena's Trino). DuckDB reads the JSON days with the catalog's schema (no inference), minus the lines the crawl quarantined, and Hudi
tables through the files hudi-rs names as the latest snapshot (never a parquet glob, which would
see superseded files). A query may name the days it reads per table, so that a check of one
evening reads that evening.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
from dagster import ConfigurableResource
from pydantic import Field

from glue_scripts.zfish_etl.catalog import CatalogTable
from glue_scripts.zfish_etl.contract import data_lines, is_data_file, struct_fields
from zfish_assets import settings
from zfish_assets.resources.catalog import Catalog
from zfish_assets.engines.hudi_reader import snapshot_dataset
from glue_scripts.zfish_etl.ledger import read_ledger
from zfish_assets.resources.aws import AWSConnection
from zfish_assets.resources.lake import Lake
from zfish_assets.engines.polling import PollTimeout, poll_until

_SIMPLE = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE",
           "boolean": "BOOLEAN", "timestamp": "TIMESTAMP", "date": "DATE"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def identifier(name: str) -> str:
    """A table or column name checked to be a plain identifier, quoted for SQL."""
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not a plain SQL identifier")
    return f'"{name}"'


def sql_string(value: str) -> str:
    """`value` as an SQL string literal (the same in DuckDB and Athena)."""
    return "'" + value.replace("'", "''") + "'"


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


class QueryEngine(ConfigurableResource, ABC):
    """Answers SQL over `<database>.<table>` names, as Athena does."""

    @abstractmethod
    def query(self, sql: str, days: Mapping[str, Sequence[str]] | None = None) -> pa.Table:
        """The result of one statement.

        `days` names, per table, the only days the statement reads, which the statement itself
        restricts with `WHERE day IN (...)`: Athena prunes partitions on that condition, DuckDB
        builds the table's view over those days alone. It lets an engine read less; it never
        changes the result of a statement that keeps to its days.
        """

    def scalar(self, sql: str):
        """The single value of a one-row, one-column query."""
        result = self.query(sql)
        return result.column(0)[0].as_py() if result.num_rows else None


class DuckDBQueryEngine(QueryEngine):
    """DuckDB in process over the lake, with views built from the catalog for each query."""

    catalog: Catalog
    lake: Lake

    def _json_view(self, con: duckdb.DuckDBPyConnection, table: CatalogTable, days: Sequence[str] | None) -> str:
        """The registered days' rows (of `days` only, if given), minus the lines the crawl quarantined.

        Days with an empty quarantine (nearly all) go through DuckDB's JSON reader: every line of
        theirs passed the contract, whose domains DuckDB carries. Days with one are cut into lines
        by the contract's `data_lines` (`_kept_lines`), their quarantined lines left out by (day,
        file, line) as the Spark job does, so bytes DuckDB would choke on (not UTF-8, a field twice)
        never reach it; the rest cast cleanly. Columns are the catalog's.
        """
        wanted = set(table.partitions if days is None else days)
        # A registered day whose files are gone holds no rows, as Athena reads an empty partition
        # (DuckDB's readers refuse a path that matches nothing); `partitions_match_lake` names the day.
        folders = {day: self.lake.local_day_dir(table.name, day) for day in table.partitions if day in wanted}
        partitions = [day for day, folder in folders.items() if next(folder.glob("*.json"), None) is not None]
        if not partitions:
            nulls = ", ".join(f"CAST(NULL AS {duckdb_type(t)}) AS {identifier(n)}" for n, t in table.columns)
            return f"SELECT {nulls}, CAST(NULL AS VARCHAR) AS day WHERE false"
        ledgers = {day: read_ledger(self.lake.get_bytes, table.name, day) or [] for day in partitions}
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
            con.register(kept, self._kept_lines(table.name, {day: (folders[day], found)
                                                             for day, found in ledgers.items() if found}))
            structure = json_structure(list(table.columns)).replace("'", "''")
            views.append(
                f"SELECT {', '.join(f'r.{identifier(n)} AS {identifier(n)}' for n, _ in table.columns)}, day FROM "
                f"(SELECT day, json_transform(text, '{structure}') AS r FROM {kept})"
            )
        return " UNION ALL ".join(views)

    def _kept_lines(self, table: str, ledgers: Mapping[str, tuple[Path, list]]) -> pa.Table:
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

    def _hudi_view(self, con: duckdb.DuckDBPyConnection, table: CatalogTable, days: Sequence[str] | None) -> str:
        """The latest snapshot's rows (of `days` only, if given), from the base files hudi-rs names.

        Local files go to DuckDB's own Parquet reader, which also skips files by their statistics
        (a day's file for another day); files elsewhere (S3) through the Arrow dataset.
        """
        dataset = snapshot_dataset(table.location, self.lake.storage_options(), days)
        if isinstance(dataset.filesystem, pafs.LocalFileSystem) and dataset.files:
            files = ", ".join(sql_string(f) for f in dataset.files)
            return f"SELECT * FROM read_parquet([{files}], union_by_name=true, hive_partitioning=false)"
        con.register(f"__{table.name}", dataset)
        return f"SELECT * FROM __{table.name}"

    def query(self, sql: str, days: Mapping[str, Sequence[str]] | None = None) -> pa.Table:
        """The statement over views of the tables it names, each over its `days` if given.

        A Hudi table's view scans the base files of its latest snapshot (of its days), decoding
        only the columns the statement needs.
        """
        con = duckdb.connect()
        try:
            db = identifier(self.catalog.database)
            con.execute(f"CREATE SCHEMA {db}")
            for name in sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql))):
                table = self.catalog.get_table(name)
                if table is None:
                    continue
                scope = (days or {}).get(name)
                view = self._hudi_view if table.classification == "hudi" else self._json_view
                con.execute(f"CREATE VIEW {db}.{identifier(name)} AS {view(con, table, scope)}")
            return con.sql(sql).to_arrow_table()
        finally:
            con.close()


class AthenaQueryError(RuntimeError):
    """An Athena query failed, was cancelled, or did not finish in time; the message names the query id."""

    def __init__(self, message: str, query_id: str) -> None:
        super().__init__(message)
        self.query_id = query_id


def athena_console_link(region: str, query_id: str) -> str:
    """The query in the Athena console's history (its SQL, state, error and statistics)."""
    return f"https://{region}.console.aws.amazon.com/athena/home?region={region}#/query-editor/history/{query_id}"


def _decimal(precision: int, scale: int) -> pa.DataType:
    return pa.decimal128(precision or 38, scale) if (precision or 38) <= 38 else pa.decimal256(precision, scale)


def athena_arrow_type(column: dict[str, Any]) -> pa.DataType:
    """The Arrow type of a result column from its `ResultSetMetadata.ColumnInfo` entry.

    Scalars are typed; `row`, `array`, `map` and `json` stay strings: Athena renders them as text
    such as `{a=1, b=2}`, which cannot be parsed back reliably.
    """
    name = column["Type"].lower()
    simple = {
        "boolean": pa.bool_(), "tinyint": pa.int8(), "smallint": pa.int16(), "integer": pa.int32(),
        "int": pa.int32(), "bigint": pa.int64(), "real": pa.float32(), "float": pa.float32(),
        "double": pa.float64(), "date": pa.date32(), "timestamp": pa.timestamp("ms"),
    }
    if name in simple:
        return simple[name]
    if name == "decimal":
        return _decimal(int(column.get("Precision", 38)), int(column.get("Scale", 0)))
    return pa.string()


def _athena_value(text: str | None, arrow_type: pa.DataType) -> Any:
    """One `VarCharValue` as a Python value of `arrow_type` (None for SQL NULL: no VarCharValue)."""
    import datetime as dt
    from decimal import Decimal

    if text is None:
        return None
    if pa.types.is_boolean(arrow_type):
        return text == "true"
    if pa.types.is_integer(arrow_type):
        return int(text)
    if pa.types.is_floating(arrow_type):
        return float(text)  # also NaN, Infinity
    if pa.types.is_decimal(arrow_type):
        return Decimal(text)
    if pa.types.is_date(arrow_type):
        return dt.date.fromisoformat(text)
    if pa.types.is_timestamp(arrow_type):
        return dt.datetime.fromisoformat(text)
    return text


class AthenaQueryEngine(QueryEngine):
    """Amazon Athena over the Glue Data Catalog: start the query, poll it, page its typed results.

    dagster-aws's `AthenaClient` does not fit: it returns every value as a string from the result
    CSV, reads that CSV through a default S3 client (no region or endpoint), and its timeout and
    failure errors carry neither the query id nor a console link.
    """

    database: str = Field(default_factory=settings.database, description="Default database (ZFISH_DATABASE).")
    workgroup: str = Field(default=settings.ATHENA_WORKGROUP.default, description=settings.ATHENA_WORKGROUP.description)
    output_location: str = Field(
        default="", description="s3://... folder for result files (ZFISH_ATHENA_OUTPUT); empty: the workgroup's."
    )
    aws: AWSConnection = Field(default_factory=AWSConnection, description="Where the Athena client connects.")
    timeout_s: float = Field(default=600.0, description="Give up (and stop the query) after this many seconds.")
    poll_interval_s: float = Field(default=1.0, description="Seconds between query state polls.")
    page_size: int = Field(default=1000, description="Rows per GetQueryResults page (Athena allows at most 1000).")

    def client(self):
        return self.aws.client("athena")

    def start(self, athena, sql: str) -> str:
        """Start `sql`; returns its query execution id."""
        request: dict[str, Any] = {
            "QueryString": sql,
            "WorkGroup": self.workgroup,
            "QueryExecutionContext": {"Database": self.database, "Catalog": "AwsDataCatalog"},
        }
        if self.output_location:
            request["ResultConfiguration"] = {"OutputLocation": self.output_location}
        return athena.start_query_execution(**request)["QueryExecutionId"]

    def wait(self, athena, query_id: str) -> dict[str, Any]:
        """The query's execution once it succeeded; raise `AthenaQueryError` when it did not."""
        region = self.aws.region_of(athena)
        link = athena_console_link(region, query_id)
        try:
            execution = poll_until(
                lambda: athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"],
                lambda e: e["Status"]["State"] not in ("QUEUED", "RUNNING"),
                self.timeout_s, self.poll_interval_s,
            )
        except PollTimeout as timeout:
            try:
                athena.stop_query_execution(QueryExecutionId=query_id)
                stopped = "stopped it"
            except Exception as exc:  # the timeout is the error to report, not the failed stop
                stopped = f"stopping it failed ({exc})"
            raise AthenaQueryError(
                f"Athena query {query_id} still {timeout.last['Status']['State']} after {self.timeout_s:g}s: "
                f"{stopped}; {link}", query_id) from None
        status = execution["Status"]
        if status["State"] != "SUCCEEDED":
            reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage")
            raise AthenaQueryError(
                f"Athena query {query_id} ended {status['State']}: {reason or 'no reason given'}; {link}", query_id)
        return execution

    def results(self, athena, query_id: str, statement_type: str) -> pa.Table:
        """Every page of the query's results as one typed Arrow table.

        A SELECT's (DML) first page starts with a header row holding the column names: skipped.
        """
        columns: list[dict[str, Any]] | None = None
        rows: list[list[str | None]] = []
        token: str | None = None
        while True:
            page = athena.get_query_results(QueryExecutionId=query_id, MaxResults=self.page_size,
                                            **({"NextToken": token} if token else {}))
            page_rows = [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
            if columns is None:
                columns = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
                names = [c["Name"] for c in columns]
                if statement_type == "DML" and page_rows and page_rows[0] == names:
                    page_rows = page_rows[1:]
            rows.extend(page_rows)
            token = page.get("NextToken")
            if not token:
                break
        types = [athena_arrow_type(c) for c in columns]
        arrays = [pa.array([_athena_value(r[i], t) for r in rows], type=t) for i, t in enumerate(types)]
        return pa.Table.from_arrays(arrays, names=[c["Name"] for c in columns])

    def query(self, sql: str, days: Mapping[str, Sequence[str]] | None = None) -> pa.Table:
        """The statement's result; `days` is not needed: Athena prunes partitions on the statement's `day IN`."""
        athena = self.client()
        query_id = self.start(athena, sql)
        execution = self.wait(athena, query_id)
        return self.results(athena, query_id, execution.get("StatementType", "DML"))
