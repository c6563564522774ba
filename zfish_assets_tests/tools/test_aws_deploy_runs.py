"""`zfish deploy` converging, the job's code verified, and Glue runs never lost, on moto's server.

Every client goes through `AwsProxy` to moto. The proxy answers three Glue calls moto lacks
(`UpdateJob`, `UpdateCrawler`, `BatchStopJobRun`: moto 5.2 has no route for them) by doing on
moto what Glue does (an update replaces the definition; a stop is acknowledged), and injects the
faults a test names (a 503 on `GetJobRun`). Nothing inside zfish or boto3 is patched.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading

import boto3
import pytest
from moto.moto_api import state_manager

from zfish_assets_tests.support.aws_proxy import Recorded, glue_error, missing_keys_denied
from zfish_assets_tests.support.deploy import JOB, OTHER_ROLE, ROLE, STUCK, run_deploy
from zfish_assets_tests.support.moto import BUCKET, REGION, no_default_endpoint, run_captured, run_in_step, write_output_stream
from zfish_assets.dagster_names import RANGE_END, RANGE_START


def test_deploy_converges_on_each_setting_and_dry_run_shows_each_change(proxy, aws, monkeypatch):
    from zfish_assets.backends.job_code import code_objects

    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    run_deploy()
    assert "up to date: nothing to change" in run_deploy()
    script = code_objects()["joined_fish_data.py"]

    # A new role and a new lake prefix reach both crawlers and the job (and the code moves with the prefix).
    monkeypatch.setenv("ZFISH_GLUE_ROLE_ARN", OTHER_ROLE)
    monkeypatch.setenv("ZFISH_LAKE_PREFIX", "labs/fish-b")
    planned = run_deploy("--dry-run")
    for table in ("observations", "outcomes"):
        assert f"would update crawler zebra_fish_demo-{table}\n    Role: \"{ROLE}\" -> \"{OTHER_ROLE}\"\n" \
               f"    Targets.S3Targets[0].Path: \"s3://{BUCKET}/use-cases/fish-demo/{table}/\" -> " \
               f"\"s3://{BUCKET}/labs/fish-b/{table}/\"" in planned, planned
    new_script = f"s3://{BUCKET}/labs/fish-b/_zfish/glue/sha256/{script.sha256}/joined_fish_data.py"
    assert f"would upload {new_script}" in planned
    assert f"would update Glue job {JOB}" in planned and f"    Role: \"{ROLE}\" -> \"{OTHER_ROLE}\"" in planned
    assert f"-> \"{new_script}\"" in planned
    assert glue.get_crawler(Name="zebra_fish_demo-outcomes")["Crawler"]["Role"] == ROLE  # a dry run changes nothing
    assert not proxy.calls("AWSGlue.UpdateJob")

    run_deploy()
    for table in ("observations", "outcomes"):
        crawler = glue.get_crawler(Name=f"zebra_fish_demo-{table}")["Crawler"]
        assert crawler["Role"] == OTHER_ROLE
        assert crawler["Targets"]["S3Targets"] == [{"Path": f"s3://{BUCKET}/labs/fish-b/{table}/"}]
    job = glue.get_job(JobName=JOB)["Job"]
    assert job["Role"] == OTHER_ROLE and job["Command"]["ScriptLocation"] == new_script
    assert job["NonOverridableArguments"]["--extra-py-files"].startswith(f"s3://{BUCKET}/labs/fish-b/_zfish/glue/sha256/")
    assert len(proxy.calls("AWSGlue.UpdateJob")) == 1 and len(proxy.calls("AWSGlue.UpdateCrawler")) == 2

    # The database, changed behind deploy's back, is put back (moto's own UpdateDatabase).
    glue.update_database(Name="zebra_fish_demo", DatabaseInput={"Name": "zebra_fish_demo", "Description": "edited"})
    assert "    Description: \"edited\" -> " in run_deploy()
    assert glue.get_database(Name="zebra_fish_demo")["Database"]["Description"].startswith("zfish:")

    # Another database: its own database and crawlers, pointed at it.
    monkeypatch.setenv("ZFISH_DATABASE", "fish_b")
    assert "create Glue database fish_b" in run_deploy()
    assert glue.get_crawler(Name="fish_b-outcomes")["Crawler"]["DatabaseName"] == "fish_b"
    assert "up to date: nothing to change" in run_deploy()
    glue.delete_database(Name="fish_b")


def test_a_glue_6_deploy_creates_its_job_and_moves_a_5_0_job_to_it(proxy, aws, monkeypatch):
    """ZFISH_GLUE_VERSION=6.0: the same job (code, Hudi through `--datalake-formats`, Spark settings,
    Pipes) on Glue 6.0, whose Hudi write zfish has not run (the deploy says so)."""
    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    run_deploy()
    five = glue.get_job(JobName=JOB)["Job"]
    assert five["GlueVersion"] == "5.0"

    monkeypatch.setenv("ZFISH_GLUE_VERSION", "6.0")
    planned = run_deploy("--dry-run")
    assert f"would update Glue job {JOB}\n    GlueVersion: \"5.0\" -> \"6.0\"\n" in planned, planned
    assert "note: Glue 6.0's Hudi write (Hudi 1.1.1 on Spark 4.1.1) has not run" in planned
    run_deploy()
    six = glue.get_job(JobName=JOB)["Job"]
    assert six["GlueVersion"] == "6.0" and six["Command"] == five["Command"] and six["Command"]["Name"] == "glueetl"
    arguments = six["NonOverridableArguments"]
    assert arguments == five["NonOverridableArguments"] and not six.get("DefaultArguments")
    assert arguments["--datalake-formats"] == "hudi" and arguments["--job-language"] == "python"
    assert {"spark.serializer=org.apache.spark.serializer.KryoSerializer", "spark.sql.session.timeZone=UTC",
            "spark.sql.extensions=org.apache.spark.sql.hudi.HoodieSparkSessionExtension"} \
        <= {part.strip() for part in arguments["--conf"].split("--conf")}
    assert re.fullmatch(r"dagster-pipes==\d+\.\d+\.\d+", arguments["--additional-python-modules"])
    assert "up to date: nothing to change" in run_deploy()

    glue.delete_job(JobName=JOB)  # from nothing: created on 6.0
    assert f"create Glue 6.0 job {JOB}" in run_deploy()
    assert glue.get_job(JobName=JOB)["Job"]["GlueVersion"] == "6.0"


def _job_args():
    from glue_scripts.joined_fish_data import JobArgs

    return JobArgs(first_day="2025-05-01", last_day="2025-05-02", database="zebra_fish_demo",
                   observations_table="observations", outcomes_table="outcomes",
                   target_path=f"s3://{BUCKET}/use-cases/fish-demo/processed/joined_fish_data",
                   target_table="joined_fish_data")


def test_a_replaced_code_object_is_refused_before_any_glue_run(proxy, aws):
    from zfish_assets.deployments import resources_for
    from zfish_assets.backends.job_code import code_objects
    from zfish_assets.resources.engine import GlueJobError

    run_deploy()
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)
    package = code_objects()["glue_scripts.zip"]
    key = package.key("use-cases/fish-demo/_zfish/glue")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"PK not the package")  # anyone who could write the code prefix
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZFISH_DEPLOYMENT", "aws")
        mp.setenv("ZFISH_ENGINE", "glue")
        with resources_for()["hudi_io_manager"].engine.process_config_and_initialize_cm() as engine:
            pass
    with pytest.raises(GlueJobError, match=rf"s3://{BUCKET}/{key} was replaced: its bytes hash to sha256 [0-9a-f]{{64}}, "
                                           rf"not the {package.sha256} its key names\. Refusing to start the job; "
                                           r"run `zfish deploy`"):
        run_in_step(engine, _job_args())
    assert not proxy.calls("AWSGlue.StartJobRun")
    assert boto3.client("glue", region_name=REGION, endpoint_url=aws).get_job_runs(JobName=JOB)["JobRuns"] == []

    assert f"would restore s3://{BUCKET}/{key} (replaced" in run_deploy("--dry-run")
    run_deploy()
    engine.check_deployed_code()  # restored: the job's code is this checkout's again


def test_deploy_and_runs_from_an_empty_account_where_s3_answers_403_for_missing_keys(proxy, aws):
    """Under least privilege S3 answers a GET of a missing key 403, not 404 (`missing_keys_denied`):
    deploy (`--dry-run` too) finds the code it must upload by listing, and a run missing its code or
    its result says which and the fix, not AccessDenied."""
    from zfish_assets.deployments import resources_for
    from zfish_assets.backends.job_code import code_objects
    from zfish_assets.resources.engine import GlueJobError

    proxy.handlers["s3"] = missing_keys_denied(aws)
    objects = code_objects()
    keys = {name: obj.key("use-cases/fish-demo/_zfish/glue") for name, obj in objects.items()}
    planned = run_deploy("--dry-run")
    assert all(f"would upload s3://{BUCKET}/{key}" in planned for key in keys.values()), planned
    run_deploy()
    assert "up to date: nothing to change" in run_deploy()

    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"ZFISH_DEPLOYMENT": "aws", "ZFISH_ENGINE": "glue"}.items():
            mp.setenv(name, value)
        with resources_for()["hudi_io_manager"].engine.process_config_and_initialize_cm() as engine:
            pass
    with pytest.raises(GlueJobError, match=r"succeeded but reported no result through Dagster Pipes.*run `zfish deploy`"):
        run_in_step(engine, _job_args())  # moto's run succeeds at once and, running nothing, reports no result
    boto3.client("s3", region_name=REGION, endpoint_url=aws).delete_object(Bucket=BUCKET, Key=keys["glue_scripts.zip"])
    with pytest.raises(GlueJobError, match=rf"s3://{BUCKET}/{keys['glue_scripts.zip']} \(the job's glue_scripts.zip\) "
                                           r"is missing: run `zfish deploy` to upload it"):
        engine.check_deployed_code()
    assert any(r.status == 403 for r in proxy.calls("s3")), "the proxy denied no GET: the test proves nothing"


def test_a_run_cannot_swap_the_jobs_code(proxy, aws, monkeypatch):
    """The runner may start the job and write raw days; naming its own script at StartJobRun must not run
    it. The deployed job pins its code and runtime (`NonOverridableArguments`), so the run's
    `--scriptLocation`, `--extra-jars` and every other parameter that brings code (`CODE_BEARING`) give
    way to the job's: what moto applies, as Glue documents the field. The engine itself passes only run arguments. One timeout fact: the
    job's `Timeout` (minutes) is `ZFISH_GLUE_TIMEOUT_S`, which the runner waits."""
    from zfish_assets.backends.job_code import CODE_BEARING
    from zfish_assets.resources.engine import run_arguments

    monkeypatch.setenv("ZFISH_GLUE_TIMEOUT_S", "5400")
    run_deploy()
    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    job = glue.get_job(JobName=JOB)["Job"]
    assert job["Timeout"] == 90
    pinned = job["NonOverridableArguments"]
    assert pinned["--scriptLocation"] == job["Command"]["ScriptLocation"]
    planted = f"s3://{BUCKET}/use-cases/fish-demo/observations/day=2025-04-05/x.py"  # the runner may write here
    assert set(CODE_BEARING) <= set(pinned), f"not pinned: {set(CODE_BEARING) - set(pinned)}"
    swapped = {name: planted for name in CODE_BEARING}
    run_id = glue.start_job_run(JobName=JOB, Arguments={**swapped, "--first_day": "2025-04-05"})["JobRunId"]
    ran = glue.get_job_run(JobName=JOB, RunId=run_id)["JobRun"]["Arguments"]
    assert {k: ran[k] for k in CODE_BEARING} == {k: pinned[k] for k in CODE_BEARING}
    assert ran["--first_day"] == "2025-04-05"  # a run argument still reaches the run

    arguments = run_arguments(_job_args())
    assert not set(arguments) & set(pinned) and arguments["--first_day"] == "2025-05-01"


def _materialize_joined(instance, raise_on_error: bool = True):
    """joined_fish_data for 2025-05-01..02 through Dagster (the asset's step only, no checks)."""
    from dagster import AssetKey, AssetSelection, materialize

    from zfish_assets.definitions import build_definitions


    defs = build_definitions()
    return materialize(defs.assets, selection=AssetSelection.assets(AssetKey("joined_fish_data")),
                       resources=defs.resources, instance=instance, raise_on_error=raise_on_error,
                       tags={RANGE_START: "2025-05-01", RANGE_END: "2025-05-02"})


@pytest.fixture
def glue_engine(proxy, monkeypatch):
    """The aws deployment's Glue engine, the job deployed, its runs left RUNNING until a test releases them."""
    for name, value in {"ZFISH_DEPLOYMENT": "aws", "ZFISH_ENGINE": "glue", "ZFISH_CATALOG": "glue",
                        "ZFISH_LAKE": "s3", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    run_deploy()
    state_manager.set_transition(model_name="glue::job_run", transition=STUCK)
    yield proxy
    state_manager.unset_transition(model_name="glue::job_run")


def test_a_503_while_polling_resumes_the_run_the_step_started(glue_engine, aws, instance):
    """The step's first poll gets a 503 (botocore retries none: AWS_MAX_ATTEMPTS=1): the step is retried,
    finds its run by its run key, watches it to the end and reads what the run reported through Pipes
    (the job's side, with the run's arguments, from the first attempt's session); StartJobRun is called once."""
    from dataclasses import asdict

    from dagster import DagsterEventType

    from glue_scripts.joined_fish_data import JobResult
    from glue_scripts.zfish_etl import aws as job_aws
    from glue_scripts.zfish_etl.pipes import dagster_pipes, report

    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    logs = boto3.client("logs", region_name=REGION, endpoint_url=aws)
    failed = []
    result = JobResult("2025-05-01", "2025-05-02", 0, 0, {}, None, 0, 0, "incremental", 0, [], [], 0, 0)

    def job(argv):  # the job's side of Pipes, reporting a made-up result
        job_aws.use_endpoint(aws, REGION)
        with dagster_pipes(argv) as pipes:
            print("the job ran", flush=True)
            report(pipes, asdict(result))

    def first_poll_fails(r: Recorded):
        if failed:
            return None
        failed.append(r.json()["RunId"])
        # Meanwhile the job finishes: Glue writes its stdout to the run's output stream.
        (run,) = glue.get_job_runs(JobName=JOB)["JobRuns"]
        lines, raised = run_captured(job, ["joined_fish_data.py", *[i for p in run["Arguments"].items() for i in p]])
        assert raised is None, raised
        write_output_stream(logs, run, lines)
        state_manager.set_transition(model_name="glue::job_run", transition={"progression": "immediate"})
        return glue_error(503, "ServiceUnavailableException", "Service is unavailable")

    glue_engine.handlers["AWSGlue.GetJobRun"] = first_poll_fails
    done = _materialize_joined(instance)
    assert done.success and failed
    assert len(glue_engine.calls("AWSGlue.StartJobRun")) == 1
    (run,) = glue.get_job_runs(JobName=JOB)["JobRuns"]
    assert run["Id"] == failed[0] and run["Arguments"]["--zfish-run-key"] == f"{done.run_id}:joined_fish_data"
    restarts = [e for e in done.all_events if e.event_type == DagsterEventType.STEP_RESTARTED]
    logs_text = [e.user_message for e in instance.all_logs(done.run_id)]
    assert restarts and any(f"run {run['Id']} was started for this step" in m and "not starting another" in m
                            for m in logs_text)
    assert f"[glue {run['Id']}] the job ran" in logs_text
    (materialized,) = [m for m in done.asset_materializations_for_node("joined_fish_data")][:1]
    assert materialized.metadata["AWS Glue Job Run ID"].value == run["Id"]


def test_a_terminated_dagster_run_stops_its_glue_run(glue_engine, instance):
    """SIGINT is how Dagster terminates a run worker; the step stops the Glue run it is watching."""
    started: list[str] = []

    def start_then_terminate(r: Recorded):
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        return None  # moto starts the run

    glue_engine.handlers["AWSGlue.StartJobRun"] = start_then_terminate
    result = _materialize_joined(instance, raise_on_error=False)
    assert not result.success
    (start,) = glue_engine.calls("AWSGlue.StartJobRun")
    started.append(json.loads(start.response)["JobRunId"])
    (stop,) = glue_engine.calls("AWSGlue.BatchStopJobRun")
    assert stop.json() == {"JobName": JOB, "JobRunIds": started}


def test_zfish_demo_on_the_aws_deployment_refuses_at_once_or_runs(aws, data_dir, monkeypatch, capsys, spark, tmp_path):
    """`zfish demo` with ZFISH_DEPLOYMENT=aws: without a deployed job it refuses before writing
    anything; with Spark as the engine it runs both evenings on S3 and Glue (a short simulation:
    four days from 2025-05-07, labels two days later, 15 images a day)."""
    from datetime import date, timedelta

    from zfish_assets.tools.demo import run_demo

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)
    for name, value in {"ZFISH_DEPLOYMENT": "aws", "ZFISH_ENGINE": "glue", "ZFISH_SIM_START": "2025-05-07",
                        "ZFISH_LABEL_DELAY_DAYS": "2"}.items():
        monkeypatch.setenv(name, value)
    no_default_endpoint(monkeypatch, tmp_path)
    with pytest.raises(SystemExit, match=r"zfish demo: refusing to start, nothing written: Glue job "
                                         r"'zfish-joined-fish-data' does not exist: run `zfish deploy`"):
        run_demo()
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0

    monkeypatch.setenv("ZFISH_ENGINE", "spark")
    assert run_demo() == 0
    out = capsys.readouterr().out

    def labeled(evening: str) -> int:  # days whose fish were labeled by the evening, 5 fish x 3 images each
        days = [date(2025, 5, 7) + timedelta(days=i) for i in range((date.fromisoformat(evening) - date(2025, 5, 7)).days + 1)]
        return 15 * sum(d + timedelta(days=2) <= date.fromisoformat(evening) for d in days)

    assert f"joined_fish_data: {labeled('2025-05-10')}" in out and f"joined_fish_data: {labeled('2025-05-11')}" in out
    assert "Demo finished" in out and "FAIL" not in out, out



def test_a_setting_that_moves_a_grant_rewrites_the_policy_exactly_and_says_which_changed(proxy, aws, monkeypatch, tmp_path):
    """ZFISH_ATHENA_OUTPUT moved (a dotted bucket, a deep prefix): the account needs no change (deploy
    manages no IAM), but runner.json must be applied again. The deploy says so, naming the file, and the
    file grants the new location only: nothing under the old one, nor a sibling of the new prefix."""
    from zfish_assets_tests.support.iam_replay import Need, allowed

    out = tmp_path / "policies"
    monkeypatch.setenv("ZFISH_QUERY", "athena")  # the runner writes Athena's results
    run_deploy("--policy-out", str(out))
    again = run_deploy("--policy-out", str(out))
    assert "up to date: nothing to change" in again and "changed since" not in again
    before = {p.name: p.read_text() for p in out.iterdir()}
    monkeypatch.setenv("ZFISH_ATHENA_OUTPUT", "s3://results.lab-2/a/b/c/")
    moved = run_deploy("--policy-out", str(out))
    assert "up to date: nothing to change" in moved
    changed = sorted(p.name for p in out.iterdir() if p.read_text() != before[p.name])
    assert changed == ["runner.json"]
    assert "changed since they were last written there: runner.json: apply them" in moved, moved
    runner = json.loads((out / "runner.json").read_text())
    assert allowed(runner, Need("s3:PutObject", "arn:aws:s3:::results.lab-2/a/b/c/q.csv"))
    assert not allowed(runner, Need("s3:PutObject", "arn:aws:s3:::results.lab-2/a/b/cd/q.csv"))
    assert not allowed(runner, Need("s3:PutObject", f"arn:aws:s3:::{BUCKET}/use-cases/fish-demo/_zfish/athena-results/q.csv"))
    assert "changed since" not in run_deploy("--policy-out", str(out))
