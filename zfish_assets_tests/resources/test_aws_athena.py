"""Athena against moto's server (no boto3 call mocked): result pages and types, the timeout and cancellation.

moto executes no SQL: its queries return what the test queued through
`/moto-api/static/athena/query-results`, and its query states move only as its state manager says. So
these tests prove the control flow and the API calls with their arguments (Athena's SQL itself runs on
Trino in `test_trino.py`).
"""

from __future__ import annotations

import re
import threading

import pytest

from zfish_assets.resources.aws_connection import AWSConnection
from zfish_assets_tests.support.moto import BUCKET, REGION, STUCK, queue_athena_result, transition

QUERY_ID = r"[0-9a-f-]{36}"


class PagesLikeAthena:
    """An Athena client whose GetQueryResults pages as Athena does; every call still goes to moto.

    moto ignores MaxResults and NextToken and answers every call with all rows; Athena answers at
    most MaxResults rows per call (the header row counting on the first page) and a NextToken
    while rows remain. The pages are cut from moto's own answer.
    """

    def __init__(self, client) -> None:
        self._client, self.pages_served = client, 0

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def get_query_results(self, QueryExecutionId: str, MaxResults: int = 1000, NextToken: str | None = None):
        response = self._client.get_query_results(QueryExecutionId=QueryExecutionId)
        rows, start = response["ResultSet"]["Rows"], int(NextToken or 0)
        response["ResultSet"]["Rows"] = rows[start:start + MaxResults]
        if start + MaxResults < len(rows):
            response["NextToken"] = str(start + MaxResults)
        self.pages_served += 1
        return response


def _athena(url: str, paging: PagesLikeAthena | None = None, **kwargs):
    from zfish_assets.resources.query import AthenaQuery

    class Engine(AthenaQuery):
        def client(self):
            client = super().client()
            if paging is not None:
                paging._client = client
                return paging
            return client

    return Engine(database="zebra_fish_demo", output_location=f"s3://{BUCKET}/athena-results/",
                  aws=AWSConnection(region_name=REGION, endpoint_url=url), poll_interval_s=0.05, **kwargs)


COLUMNS = [("day", "varchar"), ("n", "bigint"), ("share", "double"), ("labeled", "boolean"),
           ("seen", "date"), ("at", "timestamp"), ("cost", "decimal"), ("markers", "row")]


def _row(i: int) -> list[str | None]:
    return [f"2025-05-{i:02d}", str(10 * i), f"{i / 4}", "true" if i % 2 else "false", f"2025-05-{i:02d}",
            f"2025-05-{i:02d} 18:00:00.125", f"{i}.50", f"{{a={i}.0}}"]


def test_athena_pages_and_types_results(aws):
    """Seven rows over three pages of three (header included), typed from ColumnInfo; NULLs stay None."""
    import datetime as dt
    from decimal import Decimal

    import boto3
    import pyarrow as pa

    rows = [_row(i) for i in range(1, 8)]
    rows[3][1] = None  # a NULL bigint
    queue_athena_result(aws, COLUMNS, rows)
    paging = PagesLikeAthena(None)
    result = _athena(aws, paging, page_size=3).query('SELECT * FROM "zebra_fish_demo"."observations"', {"observations": None})

    assert paging.pages_served == 3  # 1 header + 7 rows in pages of 3
    assert result.num_rows == 7 and result.column_names == [n for n, _ in COLUMNS]
    assert [result.schema.field(n).type for n in ("day", "n", "share", "labeled", "seen", "at", "cost", "markers")] == [
        pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.date32(), pa.timestamp("ms"), pa.decimal128(10, 2),
        pa.string()]
    first = result.to_pylist()[0]
    assert first == {"day": "2025-05-01", "n": 10, "share": 0.25, "labeled": True, "seen": dt.date(2025, 5, 1),
                     "at": dt.datetime(2025, 5, 1, 18, 0, 0, 125000), "cost": Decimal("1.50"), "markers": "{a=1.0}"}
    assert result.column("n").to_pylist() == [10, 20, 30, None, 50, 60, 70]

    # The request reached Athena with the database, workgroup and output location.
    athena = boto3.client("athena", region_name=REGION, endpoint_url=aws)
    (query_id,) = athena.list_query_executions()["QueryExecutionIds"][-1:]
    execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    assert execution["QueryExecutionContext"]["Database"] == "zebra_fish_demo" and execution["WorkGroup"] == "primary"
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(f"s3://{BUCKET}/athena-results/")

    # Without paging (moto's own single page) and through `scalar`: the header row is skipped.
    queue_athena_result(aws, [("n", "bigint")], [["75"]])
    assert _athena(aws).scalar('SELECT count(*) AS n FROM "zebra_fish_demo"."joined_fish_data"',
                              {"joined_fish_data": None}) == 75


def test_athena_timeout_and_cancellation_name_the_query(aws):
    import boto3

    from zfish_assets.resources.query import AthenaQueryError

    athena = boto3.client("athena", region_name=REGION, endpoint_url=aws)
    link = rf"https://{REGION}\.console\.aws\.amazon\.com/athena/home\?region={REGION}#/query-editor/history/"
    with transition(aws, "athena::execution", STUCK):
        with pytest.raises(AthenaQueryError, match=rf"query ({QUERY_ID}) still QUEUED after 0\.3s: stopped it; {link}") as timed_out:
            _athena(aws, timeout_s=0.3).query("SELECT 1", {})
        query_id = timed_out.value.query_id
        assert re.search(rf"history/{query_id}$", str(timed_out.value))
        assert athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] == "CANCELLED"

        # A query cancelled by someone else while this one waits for it: the canceller looks until the
        # second query is queued (a fixed delay raced its start on a loaded machine).
        done = threading.Event()

        def cancel_running() -> None:
            while not done.wait(0.1):
                for qid in athena.list_query_executions()["QueryExecutionIds"]:
                    state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
                    if qid != query_id and state == "QUEUED":
                        athena.stop_query_execution(QueryExecutionId=qid)
                        return

        canceller = threading.Thread(target=cancel_running, daemon=True)
        canceller.start()
        try:
            with pytest.raises(AthenaQueryError, match=rf"query {QUERY_ID} ended CANCELLED: no reason given; {link}") as cancelled:
                _athena(aws, timeout_s=30).query("SELECT 2", {})
        finally:
            done.set()
            canceller.join(timeout=10)
        assert cancelled.value.query_id != query_id and cancelled.value.query_id in str(cancelled.value)


