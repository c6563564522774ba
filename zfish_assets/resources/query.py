"""The query side: SQL over the catalog's tables, reading registered partitions only.

Asset checks speak SQL to a `Query`, never to DuckDB or Athena directly, so they run
unchanged on either (the SQL they use is common to DuckDB and Athena's Trino: `backends/sql.py`).
The caller names the tables a statement reads, each with the days it reads of it: DuckDB builds a
view of exactly those (`backends/duckdb_views.py`), asking the catalog for nothing else; Athena
resolves the names in the Glue Data Catalog itself and prunes partitions on the statement's
`day IN (...)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from zfish_assets import settings
from zfish_assets.backends.duckdb_views import table_view
from zfish_assets.resources.aws_connection import AWSConnection
from zfish_assets.backends.polling import PollTimeout, poll_until
from zfish_assets.backends.sql import identifier
from zfish_assets.resources.data_catalog import Catalog
from zfish_assets.resources.lake import Lake
from zfish_assets.lazy import lazy_module

duckdb = lazy_module("duckdb")
pa = lazy_module("pyarrow")

Tables = Mapping[str, Sequence[str] | None]
"""The tables a statement reads (names in the catalog's database), each with the only days it reads
of it, or None for every registered day."""


class Query(ConfigurableResource, ABC):
    """Answers SQL over `<database>.<table>` names, as Athena does."""

    @abstractmethod
    def query(self, sql: str, tables: Tables) -> pa.Table:
        """The result of one statement, which reads `tables` and nothing else.

        Each table's days, when given, are the only days the statement reads of it, which the
        statement itself restricts with `WHERE day IN (...)`: Athena prunes partitions on that
        condition, DuckDB builds the table's view over those days alone. They let either read
        less; they never change the result of a statement that keeps to its days.
        """

    def scalar(self, sql: str, tables: Tables):
        """The single value of a one-row, one-column query."""
        result = self.query(sql, tables)
        return result.column(0)[0].as_py() if result.num_rows else None


class DuckDBQuery(Query):
    """DuckDB in process over the lake, with views built from the catalog for each query."""

    catalog: Catalog
    lake: Lake

    def query(self, sql: str, tables: Tables) -> pa.Table:
        """The statement over views of `tables`, each over its days if given.

        A table the catalog does not hold gets no view: DuckDB's error then names it. A Hudi
        table's view scans the base files of its latest snapshot (of its days), decoding only the
        columns the statement needs.
        """
        con = duckdb.connect()
        try:
            db = identifier(self.catalog.database)
            con.execute(f"CREATE SCHEMA {db}")
            for name, days in sorted(tables.items()):
                table = self.catalog.get_table(name)
                if table is not None:
                    con.execute(f"CREATE VIEW {db}.{identifier(name)} AS {table_view(con, self.lake, table, days)}")
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


class AthenaQuery(Query):
    """Amazon Athena over the Glue Data Catalog: start the query, poll it, page its typed results.

    dagster-aws's `AthenaClient` does not fit: it returns every value as a string from the result
    CSV, reads that CSV through a default S3 client (no region or endpoint), and its timeout and
    failure errors carry neither the query id nor a console link.
    """

    database: str = Field(default=settings.DATABASE.default, description="Default database (ZFISH_DATABASE).")
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

    def query(self, sql: str, tables: Tables) -> pa.Table:
        """The statement's result; `tables` is not needed: Athena finds them in the Glue Data Catalog
        and prunes partitions on the statement's `day IN`."""
        athena = self.client()
        query_id = self.start(athena, sql)
        execution = self.wait(athena, query_id)
        return self.results(athena, query_id, execution.get("StatementType", "DML"))
