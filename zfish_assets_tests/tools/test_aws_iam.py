"""Three principals, three policies: each does its part of the walkthrough on moto, within its policy.

The deployer runs `zfish deploy --policy-out`; the runner (Dagster) lands and crawls days and
joins them with the Glue engine; the job role runs the job script (in its own process, with its
own keys, as Glue would) when the runner starts the job. Every request goes through the recording
proxy, signed with the principal's keys; afterwards each request is replayed through the policy
evaluator of `iam_replay` against the policy `zfish deploy` wrote for that principal. The test
fails on any request a policy would deny, and on any `*` action.

Why a replay and not moto's own IAM enforcement (`INITIAL_NO_AUTH_ACTION_COUNT`): moto 5.2
authorizes Glue and Athena requests against the resource `*`, so a policy scoped to the
database, job and crawlers is denied everything, and it evaluates no `s3:prefix` condition.

The job's stdout is written to the run's CloudWatch output stream as Glue would (not as a principal),
and the runner reads it (its Pipes messages and lines) within its policy.
Not exercised here: what Glue itself does as the job role (CloudWatch logs), and the crawlers
(crawler mode is not run). The job role writes no catalog entry for joined_fish_data (its policy
grants none): the runner's IO manager registers the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import boto3
from moto.moto_api import state_manager

from zfish_assets_tests.tools.iam_replay import denied, wildcard_actions
from zfish_assets_tests.tools.test_aws_deploy_runs import ROLE, STUCK, _deploy, proxy  # noqa: F401 (fixture)
from zfish_assets_tests.resources.test_aws_moto import BUCKET, REGION, aws, moto_url, write_output_stream  # noqa: F401
GLUE_LOG_GROUP = "/aws-glue/jobs"  # what Glue names a run's log group (moto: "test/log")

KEYS = {"deployer": "AKIAZFISHDEPLOYER", "runner": "AKIAZFISHRUNNER", "job-role": "AKIAZFISHJOBROLE"}
JOB_PROCESS = """
import sys
from dataclasses import replace
from zfish_assets.engines.spark_session import SparkSettings, apply_s3a, get_spark_session, s3a_conf
endpoint, region, key, secret, *argv = sys.argv[1:]
spark = get_spark_session(replace(SparkSettings.from_env(), with_s3a=True))
apply_s3a(spark, s3a_conf(endpoint, region, {"access_key": key, "secret_key": secret}))
from glue_scripts.joined_fish_data import main
main(["joined_fish_data.py", *argv])
"""


def _as(monkeypatch, principal: str) -> dict[str, str]:
    """This process's AWS keys become `principal`'s; returns them. Cached clients and boto3's default
    session (which resolved the previous keys once) are dropped, as a new process would start."""
    from zfish_assets.resources.aws import aws_client

    keys = {"AWS_ACCESS_KEY_ID": KEYS[principal], "AWS_SECRET_ACCESS_KEY": f"secret-of-{principal}"}
    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    aws_client.cache_clear()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return keys


class GlueStandIn(threading.Thread):
    """What Glue does when the runner starts the job: runs the deployed script with the job's arguments
    (defaults merged under the run's) in a process of its own holding the job role's keys, then lets
    moto report the run's end."""

    def __init__(self, moto: str, endpoint: str, job_name: str, keys: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.moto, self.endpoint, self.job_name, self.keys = moto, endpoint, job_name, keys
        self.outcome: subprocess.CompletedProcess | None = None
        self.done = threading.Event()

    def run(self) -> None:
        glue = boto3.client("glue", region_name=REGION, endpoint_url=self.moto)
        try:
            deadline = time.monotonic() + 300
            while not (runs := glue.get_job_runs(JobName=self.job_name)["JobRuns"]) and time.monotonic() < deadline:
                time.sleep(0.2)
            defaults = glue.get_job(JobName=self.job_name)["Job"]["DefaultArguments"]
            merged = {**defaults, **runs[0]["Arguments"]}
            env = {k: v for k, v in os.environ.items() if k not in ("AWS_SESSION_TOKEN", "AWS_PROFILE")} | self.keys | {
                "ZFISH_SPARK_DRIVER_MEMORY": "1g", "AWS_DEFAULT_REGION": REGION}
            argv = [item for pair in merged.items() for item in pair]
            self.outcome = subprocess.run(
                [sys.executable, "-c", JOB_PROCESS, self.endpoint, REGION, self.keys["AWS_ACCESS_KEY_ID"],
                 self.keys["AWS_SECRET_ACCESS_KEY"], *argv], env=env, capture_output=True, text=True, timeout=600)
            logs = boto3.client("logs", region_name=REGION, endpoint_url=self.moto)
            write_output_stream(logs, {**runs[0], "LogGroupName": GLUE_LOG_GROUP}, self.outcome.stdout.splitlines())
        finally:
            state_manager.set_transition(model_name="glue::job_run", transition={"progression": "immediate"})
            self.done.set()


def test_each_principal_does_its_part_of_the_walkthrough_within_its_own_policy(proxy, aws, instance, data_dir,  # noqa: F811
                                                                                tmp_path, monkeypatch):
    from zfish_assets.definitions import build_definitions
    from zfish_assets.tools.policies import PRINCIPALS
    from zfish_assets.tools.runs import join_range, land_and_crawl

    for name, value in {"ZFISH_DEPLOYMENT": "aws", "ZFISH_ENGINE": "glue", "ZFISH_CATALOG": "glue",
                        "ZFISH_LAKE": "s3", "ZFISH_QUERY": "duckdb", "ZFISH_GLUE_ROLE_ARN": ROLE}.items():
        monkeypatch.setenv(name, value)

    _as(monkeypatch, "deployer")
    _deploy("--policy-out", str(tmp_path / "policies"))
    policies = {KEYS[p]: json.loads((tmp_path / "policies" / f"{p}.json").read_text()) for p in PRINCIPALS}
    assert {p: wildcard_actions(policy) for p, policy in policies.items()} == {k: [] for k in policies}

    def hudi_defaults_denied(r):  # as AWS answers it under the runner's policy (see iam_replay.TOLERATED)
        if r.path.endswith("/etc/hudi/conf/hudi-defaults.conf"):
            return 403, b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        return None

    def as_glue_names_its_logs(r):  # GetJobRun, with Glue's log group where moto says "test/log"
        body = r.json()
        job_run = boto3.client("glue", region_name=REGION, endpoint_url=aws).get_job_run(**body)["JobRun"]
        return 200, json.dumps({"JobRun": {**job_run, "LogGroupName": GLUE_LOG_GROUP}},
                               default=lambda t: t.timestamp()).encode()

    proxy.handlers["s3"] = hudi_defaults_denied
    proxy.handlers["AWSGlue.GetJobRun"] = as_glue_names_its_logs
    _as(monkeypatch, "runner")
    defs = build_definitions()
    landed = land_and_crawl(defs, instance, ["2025-04-05"], assets=["raw_observations", "observations"])
    landed += land_and_crawl(defs, instance, ["2025-05-07"], assets=["raw_outcomes", "outcomes"])
    assert all(r.success and all(c.passed for c in r.checks) for r in landed)

    state_manager.set_transition(model_name="glue::job_run", transition=STUCK)
    glue = GlueStandIn(aws, proxy.url, os.environ["ZFISH_GLUE_JOB_NAME"],
                       {"AWS_ACCESS_KEY_ID": KEYS["job-role"], "AWS_SECRET_ACCESS_KEY": "secret-of-job-role"})
    glue.start()
    try:
        joined = join_range(defs, instance, "2025-04-05", "2025-05-07", raise_on_error=False)
    finally:
        glue.done.wait(600)
        state_manager.unset_transition(model_name="glue::job_run")
    assert glue.outcome is not None and glue.outcome.returncode == 0, glue.outcome and glue.outcome.stderr[-3000:]
    assert joined.success and joined.checks and all(c.passed for c in joined.checks), joined.checks
    (run,) = boto3.client("glue", region_name=REGION, endpoint_url=aws).get_job_runs(
        JobName=os.environ["ZFISH_GLUE_JOB_NAME"])["JobRuns"]
    logged = [e.user_message for e in instance.all_logs(joined.run_id)]
    assert any(m.startswith(f"[glue {run['Id']}] joined_fish_data 2025-04-05..2025-05-07 (incremental): ")
               for m in logged), logged  # the job's line, read by the runner from the run's output stream

    who = {r.access_key for r in proxy.requests}
    assert who == set(KEYS.values()), who  # each principal did its part through the proxy, and no one else
    problems = denied(proxy.requests, policies)
    assert not problems, "\n".join(sorted(set(problems)))


def test_the_runners_policy_covers_its_athena_queries_and_the_configured_output(proxy, aws, monkeypatch, tmp_path):  # noqa: F811
    """With ZFISH_QUERY=athena and ZFISH_ATHENA_OUTPUT elsewhere, the runner's queries pass the replay,
    and its policy grants the result location that is configured, not the default one."""
    from zfish_assets.deployments import resources_for
    from zfish_assets.tools.policies import PRINCIPALS
    from zfish_assets_tests.tools.iam_replay import Need, allowed
    from zfish_assets_tests.resources.test_aws_services import queue_athena_result

    for name, value in {"ZFISH_DEPLOYMENT": "aws", "ZFISH_QUERY": "athena", "ZFISH_ATHENA_WORKGROUP": "zfish",
                        "ZFISH_ATHENA_OUTPUT": "s3://zfish-query-results/athena/"}.items():
        monkeypatch.setenv(name, value)
    _as(monkeypatch, "deployer")
    _deploy("--dry-run", "--policy-out", str(tmp_path / "policies"))
    policies = {KEYS[p]: json.loads((tmp_path / "policies" / f"{p}.json").read_text()) for p in PRINCIPALS}
    runner = policies[KEYS["runner"]]

    _as(monkeypatch, "runner")
    boto3.client("athena", region_name=REGION, endpoint_url=aws).create_work_group(Name="zfish")
    queue_athena_result(aws, [("n", "bigint")], [["75"]])
    with resources_for()["query"].process_config_and_initialize_cm() as query:
        pass
    assert query.scalar('SELECT count(*) AS n FROM "zebra_fish_demo"."joined_fish_data"', {"joined_fish_data": None}) == 75
    assert proxy.calls("AmazonAthena.StartQueryExecution") and not denied(proxy.requests, policies)
    assert allowed(runner, Need("s3:PutObject", "arn:aws:s3:::zfish-query-results/athena/q.csv"))
    assert not allowed(runner, Need("s3:PutObject", f"arn:aws:s3:::{BUCKET}/use-cases/fish-demo/_zfish/athena-results/q.csv"))
