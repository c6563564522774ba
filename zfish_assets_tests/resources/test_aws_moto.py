"""The AWS deployment against moto's server: lake on S3, catalog in Glue, local Spark writing Hudi over s3a.

moto runs as a real HTTP server on a free loopback port; nothing here mocks a boto3 call.
"""

from __future__ import annotations

from contextlib import nullcontext

import pytest

from zfish_assets.partitions import days_between
from zfish_assets.resources.aws_connection import AWSConnection
from zfish_assets.tools.runs import join_range, land_and_crawl

START = "2025-04-05"
BUCKET = "zfish-test-lake"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_url():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url, data_dir, monkeypatch):
    """S3 lake + Glue catalog + local Spark + DuckDB, every client pointed at moto; a fresh bucket."""
    import boto3

    for name, value in {
        "ZFISH_LAKE": "s3", "ZFISH_CATALOG": "glue", "ZFISH_ENGINE": "spark", "ZFISH_QUERY": "duckdb",
        "ZFISH_S3_BUCKET": BUCKET, "ZFISH_AWS_REGION": REGION, "ZFISH_AWS_ENDPOINT_URL": moto_url,
        # What boto3 in the job's own code (and every default client) resolves.
        "AWS_ENDPOINT_URL": moto_url, "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
    s3.create_bucket(Bucket=BUCKET)
    glue = boto3.client("glue", region_name=REGION, endpoint_url=moto_url)
    yield moto_url
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    s3.delete_bucket(Bucket=BUCKET)
    for name in glue.list_jobs()["JobNames"]:
        glue.delete_job(JobName=name)
    for name in glue.list_crawlers()["CrawlerNames"]:
        glue.delete_crawler(Name=name)
    try:
        glue.delete_database(Name="zebra_fish_demo")
    except glue.exceptions.EntityNotFoundException:
        pass


def no_default_endpoint(monkeypatch, tmp_path) -> None:
    """boto3's default endpoints lead nowhere (nothing listens on port 9): a client that does not follow
    ZFISH_AWS_ENDPOINT_URL fails instead of reaching AWS. Set in boto3's config file, per service:
    hudi-rs reads the endpoint environment variables (they override the endpoint it is given), not that file.
    boto3's default session, which read the config file once, is dropped so that clients made from it read this one."""
    import boto3

    config = tmp_path / "aws-config"
    services = "".join(f"{s} =\n  endpoint_url = http://127.0.0.1:9\n" for s in ("s3", "glue", "athena", "sts"))
    config.write_text(f"[default]\nservices = nowhere\n\n[services nowhere]\n{services}")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


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


def write_output_stream(logs, job_run: dict, lines: list[str]) -> None:
    """What Glue does with a run's stdout: each line an event of the run's stream in `<LogGroupName>/output`."""
    import time

    group = f"{job_run['LogGroupName']}/output"
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName=group, logStreamName=job_run["Id"])
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": line} for line in lines if line.strip()]
    if events:
        logs.put_log_events(logGroupName=group, logStreamName=job_run["Id"], logEvents=events)


def run_captured(job, argv: list[str]) -> tuple[list[str], Exception | None]:
    """`job(argv)` in this process, its stdout (the job's lines and Pipes messages) captured; and what it raised."""
    import contextlib
    import io

    out = io.StringIO()
    raised = None
    with contextlib.redirect_stdout(out):
        try:
            job(argv)
        except Exception as exc:  # noqa: BLE001 - what Glue would report as the run's ErrorMessage
            raised = exc
    return out.getvalue().splitlines(), raised


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


def run_in_step(engine, args, instance=None):
    """`engine.run_job(args)` inside a Dagster asset's step (the Glue engine opens its Pipes session there):
    the job's result, or what the engine raised."""
    from dagster import DagsterInstance, MaterializeResult, asset, materialize

    results = []

    @asset
    def joined_step(context):
        results.append(engine.run_job(args, context=context))
        return MaterializeResult()  # a step that opened a Pipes session returns a typed result

    with DagsterInstance.ephemeral() if instance is None else nullcontext(instance) as inst:
        materialize([joined_step], instance=inst)
    return results[0]


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
