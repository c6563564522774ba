"""Athena, Glue crawlers and the Glue job's arguments against moto's server (no boto3 call mocked).

moto executes no SQL, crawls nothing and runs no job: its queries return what the test queued
through `/moto-api/static/athena/query-results`, and its crawls and query states move only as its
state manager (`/moto-api/state-manager/set-transition`) says. So these tests prove the control
flow and the API calls with their arguments; what the services would compute is not proven here.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from zfish_assets.resources.aws_connection import AWSConnection
from zfish_assets_tests.support.moto import BUCKET, REGION, _moto_api, queue_athena_result
from zfish_assets_tests.support.deploy import run_deploy


ROLE = "arn:aws:iam::000000000000:role/zfish-test"  # moto accepts any role; no real account
QUERY_ID = r"[0-9a-f-]{36}"


@contextmanager
def transition(url: str, model: str, progression: dict[str, Any]) -> Iterator[None]:
    """moto's state manager: how `model`'s resources advance, for the duration of the block."""
    _moto_api(url, "state-manager/set-transition", {"model_name": model, "transition": progression})
    try:
        yield
    finally:
        _moto_api(url, "state-manager/unset-transition", {"model_name": model})


STUCK = {"progression": "manual", "times": 10**9}
IMMEDIATE = {"progression": "immediate"}


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


def test_crawler_mode_needs_the_deployed_crawler_waits_and_needs_the_day_registered(aws, instance, monkeypatch, tmp_path):
    """The crawled asset in crawler mode, through Dagster: before `zfish deploy` the run fails naming the
    fix and creates nothing (runs never change infrastructure); after it, day D1 registered (by the
    in-process crawl, standing in for what a real crawler would have registered) passes with its
    checks; day D2, which moto's crawler does not register, fails naming the day."""
    import boto3

    from zfish_assets.domain.crawl import fingerprint
    from zfish_assets.definitions import build_definitions
    from zfish_assets.resources.lake import S3Lake
    from zfish_assets.tools.runs import land_and_crawl

    d1, d2 = "2025-04-05", "2025-04-06"
    defs = build_definitions()
    (first,) = land_and_crawl(defs, instance, [d1], assets=["raw_observations", "observations"])
    (second,) = land_and_crawl(defs, instance, [d2], assets=["raw_observations"])
    assert first.success and second.success
    # What a real crawler leaves on the partition: the raw folder, its own statistics, not zfish's fingerprint.
    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    registered = glue.get_partition(DatabaseName="zebra_fish_demo", TableName="observations", PartitionValues=[d1])
    crawler_made = {k: v for k, v in registered["Partition"].items() if k in ("Values", "StorageDescriptor")}
    crawler_made["StorageDescriptor"]["Location"] = f"s3://{BUCKET}/use-cases/fish-demo/observations/day={d1}"
    crawler_made["Parameters"] = {k: v for k, v in registered["Partition"]["Parameters"].items()
                                  if not k.startswith("zfish.")}
    glue.update_partition(DatabaseName="zebra_fish_demo", TableName="observations", PartitionValueList=[d1],
                          PartitionInput=crawler_made)

    for name, value in {"ZFISH_CRAWL_MODE": "crawler", "ZFISH_GLUE_ROLE_ARN": ROLE, "ZFISH_CRAWLER_POLL_S": "0.05",
                        "ZFISH_CRAWLER_TIMEOUT_S": "20"}.items():
        monkeypatch.setenv(name, value)
    crawler = "zebra_fish_demo-observations"
    defs = build_definitions()
    success, error = _run_failing(defs, instance, d1)
    assert not success and f"crawler {crawler} does not exist: run `zfish deploy`" in error, error
    assert glue.list_crawlers()["CrawlerNames"] == []
    run_deploy()
    with transition(aws, "glue::crawl", IMMEDIATE):
        (ok,) = land_and_crawl(defs, instance, [d1], assets=["observations"])
        assert ok.success and ok.checks and all(c.passed for c in ok.checks), ok.checks
        created = glue.get_crawler(Name=crawler)["Crawler"]
        assert created["Targets"]["S3Targets"] == [{"Path": f"s3://{BUCKET}/use-cases/fish-demo/observations/"}]
        assert created["DatabaseName"] == "zebra_fish_demo" and "Schedule" not in created
        files = S3Lake(bucket=BUCKET, aws=AWSConnection(region_name=REGION, endpoint_url=aws),
                       cache_dir=str(tmp_path / "cache")).list_day("observations", d1)
        partition = glue.get_partition(DatabaseName="zebra_fish_demo", TableName="observations", PartitionValues=[d1])
        assert partition["Partition"]["Parameters"]["zfish.fingerprint"] == fingerprint(files)
        # Pointed from the raw folder the crawler registered to the day's accepted rows (the checks passed).
        assert partition["Partition"]["StorageDescriptor"]["Location"].startswith(
            f"s3://{BUCKET}/use-cases/fish-demo/_zfish/accepted/observations/day={d1}/")

        success, error = _run_failing(defs, instance, d2)
    assert not success
    assert re.search(rf"crawler {crawler} finished but zebra_fish_demo\.observations has no partition day={d2}", error)
    assert glue.list_crawlers()["CrawlerNames"].count(crawler) == 1  # deployed once, used twice
    assert len(glue.list_crawls(CrawlerName=crawler)["Crawls"]) == 2


def test_crawler_mode_judges_the_day_by_the_contract_as_partitions_mode_does(aws, instance, monkeypatch, tmp_path):
    """A day of good and bad lines: the quarantine ledger, the accepted keys and the quarantined count
    the crawler-mode run leaves are byte for byte those of the in-process crawl, so the job leaves out
    the same lines and both modes give the same table for the same lake."""
    import boto3

    from zfish_assets.tools.cli import main as zfish
    from zfish_assets.definitions import build_definitions
    from zfish_assets.domain.quarantine import keys_key
    from zfish_assets.resources.lake import S3Lake
    from zfish_assets.tools.runs import land_and_crawl
    from glue_scripts.zfish_etl.ledger import ledger_key

    monkeypatch.setenv("ZFISH_QUARANTINE_MAX_RATE", "1")  # mostly bad on purpose: warn, do not stop
    day = "2025-04-07"
    folder = tmp_path / "lab" / "observations" / f"day={day}"
    folder.mkdir(parents=True)
    good = {"fish_id": "f1", "image_id": "img-1", "timestamp": "2025-04-07T09:00:00Z", "age_days": 3,
            "treatment": "t", "genetic_markers": {"gene_a": 1, "gene_b": 2, "gene_c": 3}, "length_mm": 4.5, "sex": "M"}
    (folder / "a.json").write_bytes(json.dumps(good).encode() + b"\n{broken\n" + json.dumps({**good, "length_mm": "4"}).encode())
    (folder / "b.json").write_bytes(json.dumps({**good, "image_id": "img 2"}).encode() + b"\n\xff\n")
    assert zfish(["upload", str(tmp_path / "lab"), "--day", day]) == 0
    lake = S3Lake(bucket=BUCKET, aws=AWSConnection(region_name=REGION, endpoint_url=aws), cache_dir=str(tmp_path / "cache"))
    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)

    (in_process,) = land_and_crawl(build_definitions(), instance, [day], assets=["observations"])
    assert in_process.success
    recorded = {key: lake.get_bytes(key) for key in (ledger_key("observations", day), keys_key("observations", day))}
    assert b"malformed_json" in recorded[ledger_key("observations", day)]
    params = glue.get_partition(DatabaseName="zebra_fish_demo", TableName="observations",
                                PartitionValues=[day])["Partition"]
    # What a crawler alone would leave: the raw folder, its partition statistics, no ledger, no keys.
    raw_folder = f"s3://{BUCKET}/use-cases/fish-demo/observations/day={day}"
    stripped = {"Values": params["Values"], "StorageDescriptor": {**params["StorageDescriptor"], "Location": raw_folder},
                "Parameters": {k: v for k, v in params["Parameters"].items() if not k.startswith("zfish.")}}
    glue.update_partition(DatabaseName="zebra_fish_demo", TableName="observations", PartitionValueList=[day],
                          PartitionInput=stripped)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)
    for key in recorded:
        s3.delete_object(Bucket=BUCKET, Key=f"use-cases/fish-demo/{key}")

    for name, value in {"ZFISH_CRAWL_MODE": "crawler", "ZFISH_GLUE_ROLE_ARN": ROLE, "ZFISH_CRAWLER_POLL_S": "0.05",
                        "ZFISH_CRAWLER_TIMEOUT_S": "20"}.items():
        monkeypatch.setenv(name, value)
    run_deploy()
    with transition(aws, "glue::crawl", IMMEDIATE):
        (by_crawler,) = land_and_crawl(build_definitions(), instance, [day], assets=["observations"])
    assert by_crawler.success
    assert {key: lake.get_bytes(key) for key in recorded} == recorded
    after = glue.get_partition(DatabaseName="zebra_fish_demo", TableName="observations", PartitionValues=[day])
    assert after["Partition"]["Parameters"]["zfish.quarantinedRows"] == params["Parameters"]["zfish.quarantinedRows"] == "3"
    # Athena reads the accepted rows in crawler mode too: the partition points where the in-process crawl pointed it.
    location = after["Partition"]["StorageDescriptor"]["Location"]
    assert location == params["StorageDescriptor"]["Location"] != raw_folder
    served = lake.get_bytes(location.removeprefix(f"s3://{BUCKET}/use-cases/fish-demo/") + "/rows.json")
    assert [json.loads(line)["image_id"] for line in served.decode().splitlines()] == ["img-1", "img 2"]
    assert after["Partition"]["Parameters"]["recordCount"] == "2"


def _run_failing(defs, instance, day: str) -> tuple[bool, str]:
    """Materialize `observations` for `day` without raising; (success, the step's error message)."""
    from dagster import AssetKey, AssetSelection, DagsterEventType, materialize

    result = materialize([*defs.assets, *defs.asset_checks], selection=AssetSelection.assets(AssetKey("observations")),
                         partition_key=day, resources=defs.resources, instance=instance, raise_on_error=False)
    errors = [e.step_failure_data.error.to_string() for e in result.all_events
              if e.event_type == DagsterEventType.STEP_FAILURE]
    return result.success, " ".join(errors)


def test_crawler_waits_for_a_running_crawl_reports_a_stopped_one_and_times_out(aws):
    import boto3

    from zfish_assets.domain.glue_crawler import CrawlerError, crawler_definition, require_crawler, run_crawler

    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    name = "zebra_fish_demo-outcomes"
    definition = crawler_definition(name, ROLE, "zebra_fish_demo", f"s3://{BUCKET}/use-cases/fish-demo/outcomes/")
    with pytest.raises(CrawlerError, match=rf"crawler {name} does not exist: run `zfish deploy`"):
        require_crawler(glue, definition)
    glue.create_crawler(**definition)  # as `zfish deploy` does
    require_crawler(glue, definition)
    with pytest.raises(CrawlerError, match="crawls .* into zebra_fish_demo, not .*elsewhere/.*run `zfish deploy`"):
        require_crawler(glue, {**definition, "Targets": {"S3Targets": [{"Path": f"s3://{BUCKET}/elsewhere/"}]}})

    def stop_then_release() -> None:
        glue.stop_crawler(Name=name)
        _moto_api(aws, "state-manager/set-transition", {"model_name": "glue::crawl", "transition": IMMEDIATE})

    with transition(aws, "glue::crawl", STUCK):
        # Someone else's crawl is running: waited for until the timeout, and left running.
        glue.start_crawler(Name=name)
        with pytest.raises(CrawlerError, match=rf"crawler {name} still RUNNING after 0\.3s \(left running\); "
                                               rf"logs: CloudWatch /aws-glue/crawlers stream {name}"):
            run_crawler(glue, name, timeout_s=0.3, poll_interval_s=0.05)
        assert glue.get_crawler(Name=name)["Crawler"]["State"] == "RUNNING"

        # That crawl ends (stopped); then this run's own crawl is started and succeeds.
        timer = threading.Timer(0.3, stop_then_release)
        timer.start()
        last = run_crawler(glue, name, timeout_s=20, poll_interval_s=0.05)
        timer.join()
        crawls = glue.list_crawls(CrawlerName=name)["Crawls"]
        assert len(crawls) == 2 and last["MessagePrefix"] == crawls[-1]["CrawlId"]

    with transition(aws, "glue::crawl", STUCK):
        # This run's own crawl is stopped: the error carries the crawl's status and where its logs are.
        timer = threading.Timer(0.3, stop_then_release)
        timer.start()
        with pytest.raises(CrawlerError, match=rf"crawler {name}'s crawl ended STOPPED: no error message; "
                                               rf"logs: CloudWatch /aws-glue/crawlers stream {name} \(messages [0-9a-f-]{{36}}\); "
                                               rf"console: https://{REGION}\.console\.aws\.amazon\.com/glue/"):
            run_crawler(glue, name, timeout_s=20, poll_interval_s=0.05)
        timer.join()


def test_a_glue_run_gets_the_engines_arguments_back_and_a_failed_run_names_its_logs(aws, monkeypatch, capsys):
    """A run's arguments merged over the deployed job's defaults, as Glue merges them, parse back to
    the JobArgs the engine started it with (one spelling both ways); the deployed job has no argument
    of its own that registers the table (the IO manager does). A failed run names its logs."""
    import boto3

    from glue_scripts.joined_fish_data import parse_args
    from zfish_assets.tools.cli import main
    from zfish_assets.resources.engine import GlueJobEngine, GlueJobError
    from zfish_assets_tests.support.moto import run_in_step

    monkeypatch.setenv("ZFISH_GLUE_ROLE_ARN", ROLE)
    monkeypatch.setenv("ZFISH_GLUE_JOB_NAME", "zfish-hive-sync-test")
    assert main(["deploy"]) == 0
    capsys.readouterr()
    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    defaults = glue.get_job(JobName="zfish-hive-sync-test")["Job"]["DefaultArguments"]
    assert "--hive_sync" not in defaults and "--catalog" not in defaults

    from glue_scripts.joined_fish_data import JobArgs

    engine = GlueJobEngine(job_name="zfish-hive-sync-test", context_prefix=f"s3://{BUCKET}/pipes",
                           aws=AWSConnection(region_name=REGION, endpoint_url=aws), poll_interval_s=0.05)
    args = JobArgs(first_day="2025-05-01", last_day="2025-05-02", database="zebra_fish_demo",
                   observations_table="observations", outcomes_table="outcomes",
                   target_path=f"s3://{BUCKET}/processed/joined_fish_data", target_table="joined_fish_data",
                   join_mode="full", aws_region=REGION)
    # moto runs nothing, so the run "succeeds" without the result the real script reports.
    with pytest.raises(GlueJobError) as failed:
        run_in_step(engine, args)
    (run,) = glue.get_job_runs(JobName="zfish-hive-sync-test")["JobRuns"]
    message = str(failed.value)
    assert f"run {run['Id']} succeeded but reported no result" in message
    log_groups = run.get("LogGroupName", "/aws-glue/jobs").rstrip("/")  # Glue: /aws-glue/jobs (moto: test/log)
    assert f"CloudWatch {log_groups}/output and {log_groups}/error, streams {run['Id']}" in message
    assert f"https://{REGION}.console.aws.amazon.com/gluestudio/home?region={REGION}#/job/zfish-hive-sync-test/run/{run['Id']}" in message

    merged = {**defaults, **run["Arguments"]}  # what Glue passes the script: run arguments over defaults
    argv = ["joined_fish_data.py", *[item for pair in merged.items() for item in pair]]
    assert parse_args(argv) == args  # the Pipes arguments beside them are not the job's
    assert {"--dagster-pipes-context", "--dagster-pipes-messages"} <= set(run["Arguments"])
    from importlib.metadata import version

    pinned = glue.get_job(JobName="zfish-hive-sync-test")["Job"]["NonOverridableArguments"]
    assert pinned["--additional-python-modules"] == f"dagster-pipes=={version('dagster-pipes')}"  # what Glue installs


def test_deployment_settings_choose_athena_and_crawler_mode(monkeypatch):
    """`ZFISH_QUERY=athena` serves the checks from Athena with the environment's settings; crawler mode
    and Athena refuse a deployment without the Glue catalog (nothing there for them to use)."""
    from zfish_assets.deployments import resources_for
    from zfish_assets.resources.query import AthenaQuery

    for name, value in {"ZFISH_LAKE": "s3", "ZFISH_CATALOG": "glue", "ZFISH_ENGINE": "spark", "ZFISH_QUERY": "athena",
                        "ZFISH_CRAWL_MODE": "crawler", "ZFISH_S3_BUCKET": BUCKET, "ZFISH_AWS_REGION": REGION,
                        "ZFISH_ATHENA_WORKGROUP": "zfish"}.items():
        monkeypatch.setenv(name, value)
    with resources_for("aws")["query"].process_config_and_initialize_cm() as query:
        pass
    assert isinstance(query, AthenaQuery)
    assert (query.workgroup, query.aws.region_name, query.database) == ("zfish", REGION, "zebra_fish_demo")
    assert query.output_location == f"s3://{BUCKET}/use-cases/fish-demo/_zfish/athena-results/"

    monkeypatch.setenv("ZFISH_CATALOG", "local")
    with pytest.raises(ValueError, match="ZFISH_CRAWL_MODE=crawler needs the lake on S3 and the Glue catalog"):
        resources_for("aws")
    monkeypatch.setenv("ZFISH_CRAWL_MODE", "partitions")
    with pytest.raises(ValueError, match="ZFISH_QUERY=athena needs the Glue catalog"):
        resources_for("aws")
    monkeypatch.setenv("ZFISH_CRAWL_MODE", "sometimes")
    with pytest.raises(ValueError, match="ZFISH_CRAWL_MODE='sometimes' is not one of partitions, crawler"):
        resources_for("aws")


def test_on_glue_a_moved_key_follows_and_a_retracted_day_is_dropped(aws, instance, monkeypatch, tmp_path):
    """Through `zfish upload` and the crawl's runs on S3 and Glue: an image moved to a later day,
    that day crawled first, reaches it when the earlier day is crawled; then the earlier day
    re-delivered empty is dropped from the catalog, its runs and blocking checks succeeding."""
    import boto3

    from dagster import AssetKey

    from zfish_assets.definitions import build_definitions
    from zfish_assets.tools.cli import main as zfish
    from zfish_assets.tools.runs import land_and_crawl

    monkeypatch.setenv("ZFISH_QUARANTINE_MAX_RATE", "1")  # the moved image waits in quarantine on purpose
    first, second = "2025-04-07", "2025-04-08"
    row = {"fish_id": "f1", "timestamp": "2025-04-07T09:00:00Z", "age_days": 3, "treatment": "t",
           "genetic_markers": {"gene_a": 1, "gene_b": 2, "gene_c": 3}, "length_mm": 4.5, "sex": "M"}

    def upload(day: str, images: list[str]) -> None:
        folder = tmp_path / f"lab-{day}-{len(images)}" / "observations" / f"day={day}"
        folder.mkdir(parents=True)
        if images:
            (folder / "a.json").write_text("".join(json.dumps({**row, "image_id": i}) + "\n" for i in images))
        assert zfish(["upload", str(folder.parent.parent), "--day", day]) == 0

    def crawled(day: str) -> None:
        (run,) = land_and_crawl(build_definitions(), instance, [day], assets=["observations"])
        assert run.success

    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)

    def registered() -> dict[str, str]:
        pages = glue.get_paginator("get_partitions").paginate(DatabaseName="zebra_fish_demo", TableName="observations")
        return {p["Values"][0]: p["Parameters"]["recordCount"] for page in pages for p in page["Partitions"]}

    upload(first, ["X", "Y"])
    crawled(first)
    upload(first, ["Y"])
    upload(second, ["X"])
    crawled(second)
    assert registered() == {first: "2", second: "0"}  # X waits on the first day's old delivery
    crawled(first)
    assert registered() == {first: "1", second: "1"}  # ...and follows when that day is crawled
    latest = instance.fetch_materializations(AssetKey("observations"), limit=2).records  # the run's two, newest first
    assert [(r.partition_key, r.asset_materialization.description) for r in latest] == [
        (first, None), (second, f"re-judged by the crawl of day={first}")]  # recorded, so the chained join reaches it
    upload(first, [])
    crawled(first)
    assert registered() == {second: "1"}
