"""Glue crawlers and the Glue job's arguments against moto's server (no boto3 call mocked).

moto crawls nothing and runs no job: its crawls move only as its state manager
(`/moto-api/state-manager/set-transition`) says. So these tests prove the control flow and the API
calls with their arguments; what the services would compute is not proven here (Athena:
`test_aws_athena.py`).
"""

from __future__ import annotations

import json
import re
import threading

import pytest

from zfish_assets.resources.aws_connection import AWSConnection
from zfish_assets_tests.support.moto import BUCKET, IMMEDIATE, REGION, ROLE, STUCK, _moto_api, transition
from zfish_assets_tests.support.deploy import run_deploy


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
