"""The AWS deployment against moto's server: lake on S3, catalog in Glue, local Spark writing Hudi over s3a.

moto runs as a real HTTP server on a free loopback port; nothing here mocks a boto3 call.
"""

from __future__ import annotations


import pytest

from zfish_assets.partitions import days_between
from zfish_assets.resources.aws_connection import AWSConnection
from zfish_assets.tools.runs import join_range, land_and_crawl
from zfish_assets_tests.support.moto import BUCKET, REGION, no_default_endpoint, run_captured, run_in_step, write_output_stream

START = "2025-04-05"


def test_walkthrough_on_moto_s3_and_glue_60_then_75(aws, instance, monkeypatch, tmp_path):
    """The walkthrough's 60 -> 75, landing only the days that make labeled rows (S3 calls are slow).

    Observations of 2025-04-05..09 are the fish labeled 2025-05-07..11 (32 days later); the days
    between hold no labeled row, so they change nothing here (test_joined covers every day locally).
    boto3's default endpoint leads nowhere: every client, the job's own included, must follow
    ZFISH_AWS_ENDPOINT_URL. After each join the catalog holds a partition of joined_fish_data for
    every day the table has rows (Athena reads registered partitions only).
    """
    import time

    import boto3

    no_default_endpoint(monkeypatch, tmp_path)

    from zfish_assets.definitions import build_definitions
    from zfish_assets.backends.hudi_reader import read_hudi_snapshot
    from zfish_assets.backends.key_digests import repeated_key_days

    started = time.monotonic()
    defs = build_definitions()
    runs = land_and_crawl(defs, instance, days_between(START, "2025-04-09"), assets=["raw_observations", "observations"])
    runs += land_and_crawl(defs, instance, days_between("2025-05-07", "2025-05-10"), assets=["raw_outcomes", "outcomes"])
    assert all(r.success and all(c.passed for c in r.checks) for r in runs)
    print(f"landed and crawled in {time.monotonic() - started:.0f}s")

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="use-cases/fish-demo/outcomes/")["Contents"]]
    assert keys and all(k.startswith("use-cases/fish-demo/outcomes/day=2025-05-") for k in keys)
    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    observations = glue.get_table(DatabaseName="zebra_fish_demo", Name="observations")["Table"]
    assert observations["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/use-cases/fish-demo/observations"
    assert dict((c["Name"], c["Type"]) for c in observations["StorageDescriptor"]["Columns"])[
        "genetic_markers"].startswith("struct<")

    first = join_range(defs, instance, START, "2025-05-10")
    assert first.success and first.checks and all(c.passed for c in first.checks), first.checks
    print(f"first join done at {time.monotonic() - started:.0f}s")
    uri = f"s3://{BUCKET}/use-cases/fish-demo/processed/joined_fish_data"
    options = {"aws_endpoint": aws, "aws_allow_http": "true", "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing", "aws_region": REGION, "aws_virtual_hosted_style_request": "false"}
    assert read_hudi_snapshot(uri, options).num_rows == 60
    joined = glue.get_table(DatabaseName="zebra_fish_demo", Name="joined_fish_data")["Table"]
    assert joined["StorageDescriptor"]["Location"] == uri

    def registered_days() -> dict[str, str]:
        pages = glue.get_paginator("get_partitions").paginate(DatabaseName="zebra_fish_demo", TableName="joined_fish_data")
        return {p["Values"][0]: p["StorageDescriptor"]["Location"] for page in pages for p in page["Partitions"]}

    def days_with_rows() -> set[str]:
        return set(read_hudi_snapshot(uri, options).column("day").to_pylist())

    assert registered_days() == {d: f"{uri}/day={d}" for d in days_with_rows()} and len(days_with_rows()) == 4

    # The next day, landed and crawled twice: idempotent (stale keys go, the partition is updated).
    for _ in range(2):
        again = land_and_crawl(defs, instance, ["2025-05-11"], assets=["raw_outcomes", "outcomes"])
        assert all(r.success and all(c.passed for c in r.checks) for r in again)
    second = join_range(defs, instance, "2025-04-06", "2025-05-11")
    assert second.success and all(c.passed for c in second.checks), second.checks
    rows = read_hudi_snapshot(uri, options).to_pylist()
    assert len(rows) == 75 and len({r["image_id"] for r in rows}) == 75
    assert set(registered_days()) == days_with_rows() and len(days_with_rows()) == 5
    # Beside the table on S3, the job kept a key digest of each day, naming the day's current files.
    digests = repeated_key_days(uri, options, None)
    assert (digests.from_digests, digests.from_table, digests.days) == (5, [], [])
    print(f"done at {time.monotonic() - started:.0f}s")


JOB = "zfish-joined-fish-data-test"


def _create_job(glue, name: str, deployed: bool) -> None:
    """The job as `zfish deploy` leaves it (the engine itself never creates one): this checkout's code
    uploaded under its content keys and named by the job, or (`deployed=False`) a script elsewhere."""
    from zfish_assets.backends.job_code import code_objects
    from zfish_assets.resources.aws_connection import aws_client

    uris = {n: f"s3://{BUCKET}/scripts/{n}" for n in ("joined_fish_data.py", "glue_scripts.zip")}
    if deployed:
        s3 = aws_client("s3", REGION, glue.meta.endpoint_url)
        for n, obj in code_objects().items():
            s3.put_object(Bucket=BUCKET, Key=obj.key("code"), Body=obj.body)
            uris[n] = f"s3://{BUCKET}/{obj.key('code')}"
    glue.create_job(
        Name=name, Role="arn:aws:iam::123456789012:role/zfish-test", GlueVersion="5.0",
        Command={"Name": "glueetl", "ScriptLocation": uris["joined_fish_data.py"], "PythonVersion": "3"},
        NonOverridableArguments={"--scriptLocation": uris["joined_fish_data.py"],
                                 "--extra-py-files": uris["glue_scripts.zip"], "--datalake-formats": "hudi"},
    )


class RunsTheScriptLocally:
    """A Glue client whose job runs execute the job script on this process's Spark.

    Every call still goes to moto (which records the run but runs nothing); the local run's
    outcome stands in for Glue's state and error message, and its stdout is written to moto's
    CloudWatch Logs as Glue writes it, as dagster-aws's fake_glue does.
    """

    def __init__(self, client, logs):
        self._client, self._logs, self._outcomes = client, logs, {}

    def __getattr__(self, name):
        return getattr(self._client, name)

    def start_job_run(self, **kwargs):
        from glue_scripts.joined_fish_data import main

        response = self._client.start_job_run(**kwargs)
        argv = [item for pair in kwargs["Arguments"].items() for item in pair]
        lines, raised = run_captured(main, ["joined_fish_data.py", *argv])
        job_run = self._client.get_job_run(JobName=kwargs["JobName"], RunId=response["JobRunId"])["JobRun"]
        write_output_stream(self._logs, job_run, lines)
        self._outcomes[response["JobRunId"]] = ("FAILED", f"{type(raised).__name__}: {raised}") if raised \
            else ("SUCCEEDED", None)
        return response

    def get_job_run(self, **kwargs):
        response = self._client.get_job_run(**kwargs)
        state, message = self._outcomes[kwargs["RunId"]]
        response["JobRun"]["JobRunState"] = state
        if message:
            response["JobRun"]["ErrorMessage"] = message
        return response


def _engine(aws, local_runs: bool, **kwargs):
    from zfish_assets.resources.engine import GlueJobEngine

    class Engine(GlueJobEngine):
        def _glue_client(self):
            client = super()._glue_client()
            return RunsTheScriptLocally(client, self._client("logs")) if local_runs else client

    return Engine(job_name=kwargs.pop("job_name", JOB), context_prefix=f"s3://{BUCKET}/pipes",
                  aws=AWSConnection(region_name=REGION, endpoint_url=aws), poll_interval_s=0.05, **kwargs)


def _args(database: str = "zebra_fish_demo"):
    from glue_scripts.joined_fish_data import JobArgs

    return JobArgs(first_day="2025-05-01", last_day="2025-05-02", database=database,
                   observations_table="observations", outcomes_table="outcomes",
                   target_path=f"s3a://{BUCKET}/processed/joined_fish_data", target_table="joined_fish_data")


def test_glue_engine_refuses_a_stale_script_and_times_out(aws):
    import boto3
    from moto.moto_api import state_manager

    from zfish_assets.resources.engine import GlueJobError

    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    _create_job(glue, "stale", deployed=False)
    with pytest.raises(GlueJobError, match="zfish deploy"):
        run_in_step(_engine(aws, False, job_name="stale"), _args())
    assert glue.get_job_runs(JobName="stale")["JobRuns"] == []  # refused before starting

    _create_job(glue, JOB, deployed=True)
    state_manager.set_transition(model_name="glue::job_run", transition={"progression": "manual", "times": 10**6})
    try:
        with pytest.raises(GlueJobError, match=r"run jr_\w+ still (STARTING|RUNNING) after 0.3s"):
            run_in_step(_engine(aws, False, timeout_s=0.3), _args())
    finally:
        state_manager.unset_transition(model_name="glue::job_run")
    (run,) = glue.get_job_runs(JobName=JOB)["JobRuns"]
    assert run["Arguments"]["--first_day"] == "2025-05-01" and run["Arguments"]["--catalog"] == "glue"


def test_glue_engine_runs_the_job_through_pipes_its_lines_in_the_run_and_fails_with_glues_message(aws, spark, instance):
    """The job's stdout reaches the Dagster run's events line by line (through the run's CloudWatch
    output stream), its result comes back as a Pipes message, and the run's console link is metadata."""
    import boto3
    from dagster import MaterializeResult, asset, materialize

    from zfish_assets.resources.data_catalog import GlueCatalog
    from zfish_assets.resources.engine import GlueJobError

    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    _create_job(glue, JOB, deployed=True)
    GlueCatalog(aws=AWSConnection(region_name=REGION, endpoint_url=aws)).put_table(
        "observations", [("image_id", "string"), ("fish_id", "string"), ("timestamp", "string")],
        [("day", "string")], f"s3://{BUCKET}/use-cases/fish-demo/observations", "json")
    results = []

    @asset
    def joined(context):
        results.append(_engine(aws, True).run_job(_args(), context=context))
        return MaterializeResult()

    run = materialize([joined], instance=instance)
    (result,) = results  # no day registered yet: nothing read, nothing written
    assert (result.first_day, result.observations_read, result.rows_upserted, result.commit_instant) == \
        ("2025-05-01", 0, 0, None)
    (job_run,) = glue.get_job_runs(JobName=JOB)["JobRuns"]
    logged = [e.user_message for e in instance.all_logs(run.run_id)]
    line = f"[glue {job_run['Id']}] joined_fish_data 2025-05-01..2025-05-02 (incremental): 0 observations read, " \
           "0 rows upserted, 0 deleted, commit none"
    assert line in logged, logged
    assert not any("ZFISH_RESULT" in m or "__dagster_pipes_version" in m for m in logged)  # messages are not lines
    metadata = run.asset_materializations_for_node("joined")[0].metadata
    assert metadata["AWS Glue Job Run URL"].value.endswith(f"#/job/{JOB}/run/{job_run['Id']}")

    with pytest.raises(GlueJobError, match=r"run jr_\w+ ended FAILED: LookupError: table nowhere.observations is not"):
        run_in_step(_engine(aws, True), _args(database="nowhere"))


def test_deploy_creates_the_resources_once_and_upload_lands_a_day(aws, tmp_path, monkeypatch, capsys):
    import boto3

    from zfish_assets.tools.cli import main
    from zfish_assets.backends.job_code import code_objects

    monkeypatch.setenv("ZFISH_GLUE_ROLE_ARN", "arn:aws:iam::123456789012:role/zfish-test")
    monkeypatch.setenv("ZFISH_GLUE_JOB_NAME", JOB)
    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)

    assert main(["deploy", "--dry-run"]) == 0
    assert "would create Glue 5.0 job" in capsys.readouterr().out
    assert glue.list_jobs()["JobNames"] == [] and glue.list_crawlers()["CrawlerNames"] == []

    assert main(["deploy", "--policy-out", str(tmp_path / "policies")]) == 0
    assert "s3:DeleteObject" in (tmp_path / "policies" / "runner.json").read_text()
    assert glue.get_database(Name="zebra_fish_demo")["Database"]["Name"] == "zebra_fish_demo"
    assert sorted(glue.list_crawlers()["CrawlerNames"]) == ["zebra_fish_demo-observations", "zebra_fish_demo-outcomes"]
    crawler = glue.get_crawler(Name="zebra_fish_demo-outcomes")["Crawler"]
    assert crawler["Targets"]["S3Targets"][0]["Path"] == f"s3://{BUCKET}/use-cases/fish-demo/outcomes/"
    assert "Schedule" not in crawler
    job = glue.get_job(JobName=JOB)["Job"]
    assert job["GlueVersion"] == "5.0" and job["Command"]["Name"] == "glueetl"
    arguments = job["NonOverridableArguments"]  # all of them code, or how it runs: no run overrides one
    assert not job.get("DefaultArguments") and arguments["--datalake-formats"] == "hudi"
    assert "--enable-glue-datacatalog" not in arguments  # the job reads the catalog through boto3 only
    assert job["Timeout"] == 120  # minutes: ZFISH_GLUE_TIMEOUT_S's default, which the runner waits too
    assert "--hive_sync" not in arguments  # the job writes no catalog entry: the IO manager registers the table
    code = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="use-cases/fish-demo/_zfish/glue/")["Contents"]}
    objects = code_objects()
    assert code == {f"use-cases/fish-demo/_zfish/glue/sha256/{o.sha256}/{n}" for n, o in objects.items()}
    assert job["Command"]["ScriptLocation"] == f"s3://{BUCKET}/use-cases/fish-demo/_zfish/glue/sha256/" \
        f"{objects['joined_fish_data.py'].sha256}/joined_fish_data.py"
    capsys.readouterr()

    assert main(["deploy"]) == 0  # a second deploy changes nothing
    assert "up to date: nothing to change" in capsys.readouterr().out

    # `zfish upload`: a folder laid out as `zfish generate` writes it lands as the walkthrough's keys.
    day = tmp_path / "lab" / "outcomes" / "day=2025-05-08"
    day.mkdir(parents=True)
    (day / "labels.json").write_text('{"fish_id": "zfish_00001", "condition_developed": true}\n')
    assert main(["upload", str(tmp_path / "lab"), "--day", "2025-05-08"]) == 0
    assert s3.get_object(Bucket=BUCKET, Key="use-cases/fish-demo/outcomes/day=2025-05-08/labels.json")["Body"].read()
