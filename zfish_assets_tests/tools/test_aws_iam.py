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
import re
import os
import subprocess
import sys
import threading
import time

import boto3
import pytest
from moto.moto_api import state_manager

from zfish_assets_tests.support.aws_proxy import missing_keys_denied
from zfish_assets_tests.support.iam_replay import Need, allowed, denied, wildcard_actions
from zfish_assets_tests.support.deploy import ROLE, STUCK, run_deploy
from zfish_assets_tests.support.moto import BUCKET, REGION, write_output_stream
GLUE_LOG_GROUP = "/aws-glue/jobs"  # what Glue names a run's log group (moto: "test/log")

KEYS = {"deployer": "AKIAZFISHDEPLOYER", "runner": "AKIAZFISHRUNNER", "job-role": "AKIAZFISHJOBROLE"}
JOB_PROCESS = """
import sys
from dataclasses import replace
from zfish_assets.backends.spark_session import SparkSettings, apply_s3a, get_spark_session, s3a_conf
endpoint, region, key, secret, *argv = sys.argv[1:]
spark = get_spark_session(replace(SparkSettings.from_env(), with_s3a=True))
apply_s3a(spark, s3a_conf(endpoint, region, {"access_key": key, "secret_key": secret}))
from glue_scripts.joined_fish_data import main
main(["joined_fish_data.py", *argv])
"""


def _as(monkeypatch, principal: str) -> dict[str, str]:
    """This process's AWS keys become `principal`'s; returns them. Cached clients and boto3's default
    session (which resolved the previous keys once) are dropped, as a new process would start."""
    from zfish_assets.resources.aws_connection import aws_client

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
    run_deploy("--policy-out", str(tmp_path / "policies"))
    policies = {KEYS[p]: json.loads((tmp_path / "policies" / f"{p}.json").read_text()) for p in PRINCIPALS}
    assert {p: wildcard_actions(policy) for p, policy in policies.items()} == {k: [] for k in policies}

    # As AWS answers principals that may list only under their prefixes: a GET of a missing key (hudi-rs's
    # defaults file, see iam_replay.TOLERATED, a day's ledger not yet written) is 403 AccessDenied.
    proxy.handlers["s3"] = missing_keys_denied(  # 404 only to whom its policy lets list the whole bucket
        aws, lambda r, bucket: r.access_key in policies and allowed(policies[r.access_key], Need("s3:ListBucket", f"arn:aws:s3:::{bucket}")))

    def as_glue_names_its_logs(r):  # GetJobRun, with Glue's log group where moto says "test/log"
        body = r.json()
        job_run = boto3.client("glue", region_name=REGION, endpoint_url=aws).get_job_run(**body)["JobRun"]
        return 200, json.dumps({"JobRun": {**job_run, "LogGroupName": GLUE_LOG_GROUP}},
                               default=lambda t: t.timestamp()).encode()

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
    from zfish_assets_tests.support.moto import queue_athena_result

    for name, value in {"ZFISH_DEPLOYMENT": "aws", "ZFISH_QUERY": "athena", "ZFISH_ATHENA_WORKGROUP": "zfish",
                        "ZFISH_ATHENA_OUTPUT": "s3://zfish-query-results/athena/"}.items():
        monkeypatch.setenv(name, value)
    _as(monkeypatch, "deployer")
    run_deploy("--dry-run", "--policy-out", str(tmp_path / "policies"))
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


def test_crawler_mode_runs_start_the_deployed_crawler_within_the_runners_policy(proxy, aws, instance, data_dir,  # noqa: F811
                                                                              tmp_path, monkeypatch):
    """Crawler mode under the policies `zfish deploy` writes for it: the deployer creates the crawlers
    (passing the job role), the runner only starts and watches them (no CreateCrawler, no PassRole)."""
    from zfish_assets.definitions import build_definitions
    from zfish_assets.tools.policies import PRINCIPALS
    from zfish_assets.tools.runs import land_and_crawl

    for name, value in {"ZFISH_DEPLOYMENT": "aws", "ZFISH_CRAWL_MODE": "crawler", "ZFISH_CRAWLER_POLL_S": "0.05",
                        "ZFISH_CRAWLER_TIMEOUT_S": "20"}.items():
        monkeypatch.setenv(name, value)
    _as(monkeypatch, "deployer")
    run_deploy("--policy-out", str(tmp_path / "policies"))
    policies = {KEYS[p]: json.loads((tmp_path / "policies" / f"{p}.json").read_text()) for p in PRINCIPALS}
    proxy.handlers["s3"] = missing_keys_denied(
        aws, lambda r, bucket: r.access_key in policies and allowed(policies[r.access_key], Need("s3:ListBucket", f"arn:aws:s3:::{bucket}")))

    _as(monkeypatch, "runner")
    day = "2025-04-05"
    monkeypatch.setenv("ZFISH_CRAWL_MODE", "partitions")  # what a real crawl would register, registered by zfish's
    (landed,) = land_and_crawl(build_definitions(), instance, [day], assets=["raw_observations", "observations"])
    monkeypatch.setenv("ZFISH_CRAWL_MODE", "crawler")
    state_manager.set_transition(model_name="glue::crawl", transition={"progression": "immediate"})
    try:
        (crawled,) = land_and_crawl(build_definitions(), instance, [day], assets=["observations"])
    finally:
        state_manager.unset_transition(model_name="glue::crawl")
    assert landed.success and crawled.success and all(c.passed for c in crawled.checks), crawled.checks

    runner = [r for r in proxy.requests if r.access_key == KEYS["runner"]]
    assert {r.target for r in runner} >= {"AWSGlue.GetCrawler", "AWSGlue.StartCrawler"}
    assert not [r for r in runner if r.target in ("AWSGlue.CreateCrawler", "AWSGlue.UpdateCrawler")]
    problems = denied(proxy.requests, policies)
    assert not problems, "\n".join(sorted(set(problems)))

# Policies for every setting: bucket names as S3 allows them, lake prefixes as ZFISH_LAKE_PREFIX takes them,
# Athena outputs as a user writes them (a bucket root with or without `/`, a prefix with or without it).
_SEGMENT = "[a-z0-9][a-z0-9_.=-]{0,8}"
_BUCKET = r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]"


def _prefixes():
    from hypothesis import strategies as st

    return st.lists(st.from_regex(_SEGMENT, fullmatch=True).filter(lambda p: p != ".."), min_size=1, max_size=3)


def test_policies_are_well_formed_and_allow_exactly_what_is_needed_for_every_setting():
    from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

    from zfish_assets.tools.deploy import DeploySettings
    from zfish_assets.tools.policies import policies

    well_formed = re.compile(r"^arn:aws:s3:::[a-z0-9.-]+(/([^/]+/)*([^/]+|\*))?$")

    @hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(bucket=st.from_regex(_BUCKET, fullmatch=True), lake=_prefixes(),
           out_bucket=st.from_regex(_BUCKET, fullmatch=True), out=st.lists(st.from_regex(_SEGMENT, fullmatch=True),
                                                                                   max_size=2),
           slash=st.booleans(), kms=st.booleans())
    def check(bucket, lake, out_bucket, out, slash, kms):
        prefix, out_key = "/".join(lake), "/".join(out)
        output = f"s3://{out_bucket}" + (f"/{out_key}" if out_key else "") + ("/" if slash else "")
        key = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        s = DeploySettings(bucket=bucket, region="us-east-1", endpoint_url="", prefix=prefix, database="db",
                           job_name="job", role_arn="arn:aws:iam::000000000000:role/r", athena_output=output,
                           query="athena", kms_key_arn=key if kms else "")
        documents = policies(s)
        s3_arns = [r for name, doc in documents.items() if name != "job-role-trust" for st_ in doc["Statement"]
                   for r in (st_["Resource"] if isinstance(st_["Resource"], list) else [st_["Resource"]])
                   if r.startswith("arn:aws:s3")]
        assert s3_arns and all(well_formed.match(r) for r in s3_arns), [r for r in s3_arns if not well_formed.match(r)]
        runner, job, deployer = documents["runner"], documents["job-role"], documents["deployer"]
        result = "/".join([*out, "q1.csv"])
        assert allowed(runner, Need("s3:PutObject", f"arn:aws:s3:::{out_bucket}/{result}"))
        assert allowed(runner, Need("s3:GetObject", f"arn:aws:s3:::{out_bucket}/{result}"))
        if out:  # a sibling of the output prefix is not the output
            assert not allowed(runner, Need("s3:PutObject", f"arn:aws:s3:::{out_bucket}/{out_key}x/q1.csv"))
        day = f"arn:aws:s3:::{bucket}/{prefix}/observations/day=2025-04-05/a.json"
        for action in ("s3:PutObject", "s3:AbortMultipartUpload"):
            assert allowed(runner, Need(action, day))
            assert allowed(job, Need(action, f"arn:aws:s3:::{bucket}/{prefix}/processed/joined_fish_data/x.parquet"))
            assert allowed(deployer, Need(action, f"arn:aws:s3:::{bucket}/{prefix}/_zfish/glue/sha256/d/x.py"))
        if out_bucket != bucket:  # (Athena's results in the lake's bucket may well cover these keys)
            assert not allowed(runner, Need("s3:PutObject", f"arn:aws:s3:::{bucket}/{prefix}x/observations/day=2025-04-05/a.json"))
            assert not allowed(runner, Need("s3:PutObject", f"arn:aws:s3:::{bucket}/{prefix}/_zfish/glue/sha256/d/x.py"))
        assert not allowed(job, Need("s3:PutObject", f"arn:aws:s3:::{bucket}/{prefix}/_zfish/glue/sha256/d/x.py"))
        for doc in (runner, job, deployer):
            assert allowed(doc, Need("kms:GenerateDataKey", key)) is kms and allowed(doc, Need("kms:Decrypt", key)) is kms
        trust = documents["job-role-trust"]["Statement"][0]["Condition"]
        assert trust == {"StringEqualsIfExists": {"aws:SourceAccount": "000000000000"},
                         "ArnLikeIfExists": {"aws:SourceArn": "arn:aws:glue:us-east-1:000000000000:*"}}

    check()


def test_a_bucket_root_as_athena_output_grants_the_buckets_objects():
    """`ZFISH_ATHENA_OUTPUT=s3://bucket/` (and without the slash): `arn:aws:s3:::bucket/*`, not `bucket//*`."""
    from zfish_assets.tools.deploy import DeploySettings
    from zfish_assets.tools.policies import runner_policy

    for output in ("s3://athena-results-bucket/", "s3://athena-results-bucket"):
        s = DeploySettings(bucket="lake", region="", endpoint_url="", prefix="p", database="db", job_name="j",
                           role_arn="arn:aws:iam::000000000000:role/r", athena_output=output, query="athena")
        (results,) = [st for st in runner_policy(s)["Statement"] if st["Sid"] == "AthenaResults"]
        assert results["Resource"] == ["arn:aws:s3:::athena-results-bucket/*"]
        assert allowed(runner_policy(s), Need("s3:PutObject", "arn:aws:s3:::athena-results-bucket/abc.csv"))


def test_the_runner_lists_athenas_results_and_the_lake_never_the_whole_bucket():
    """Athena's results in the lake's bucket (the default, or a folder beside the lake): the runner may list them
    and the lake (its prefix-scoped listing), not the bucket's root nor another prefix of it."""
    from hypothesis import given, strategies as st

    from zfish_assets.tools.deploy import DeploySettings
    from zfish_assets.tools.policies import runner_policy

    @given(bucket=st.from_regex(_BUCKET, fullmatch=True), lake=_prefixes(), beside=_prefixes(),
           default=st.booleans(), engine=st.sampled_from(["glue", "spark"]))
    def check(bucket, lake, beside, default, engine):
        prefix, results = "/".join(lake), "/".join(["athena", *beside])
        s = DeploySettings(bucket=bucket, region="us-east-1", endpoint_url="", prefix=prefix, database="db",
                           job_name="job", role_arn="arn:aws:iam::000000000000:role/r", query="athena", engine=engine,
                           athena_output="" if default else f"s3://{bucket}/{results}/")
        runner, arn = runner_policy(s), f"arn:aws:s3:::{bucket}"
        results = f"{prefix}/_zfish/athena-results" if default else results

        def lists(under: str) -> bool:
            return allowed(runner, Need("s3:ListBucket", arn, (("s3:prefix", under),)))
        assert lists(f"{results}/") and lists(f"{prefix}/observations/")
        if engine == "glue":  # (Spark's filesystem needs the bucket's listing: `policies._list_lake`)
            assert not lists("") and not lists("other-use-case/") and not lists(f"{prefix}x/")
            assert not allowed(runner, Need("s3:ListBucket", arn))

    check()


@pytest.mark.parametrize("output, refused", [
    ("s3://lake/", True), ("s3://lake", True), ("s3://lake/use-cases/", True), ("s3://lake/use-cases/fish-demo", True),
    ("s3://lake/use-cases/fish-demo/_zfish/", True), ("s3://lake/use-cases/fish-demo/_zfish/glue/", True),
    ("s3://lake/use-cases/fish-demo/observations/", True), ("s3://lake/use-cases/fish-demo/tmp/", True),
    ("s3://lake/use-cases/fish-demo/_zfish/athena-results/", False),
    ("s3://lake/use-cases/fish-demo/_zfish/athena-results/team-a/", False),
    ("s3://lake/athena-results/", False), ("s3://lake/use-cases/fish-demox/", False), ("s3://results/", False)])
def test_an_athena_output_reaching_the_lakes_keys_is_refused_naming_the_setting(output, refused, monkeypatch):
    """The runner may write Athena's results: an output holding the lake (or a folder of it other than its own
    results) would let it write the job's code, the raw days and the table."""
    from zfish_assets import settings
    from zfish_assets.tools.deploy import DeploySettings
    from zfish_assets.tools.policies import runner_policy

    for name, value in {"ZFISH_S3_BUCKET": "lake", "ZFISH_LAKE_PREFIX": "use-cases/fish-demo",
                        "ZFISH_ATHENA_OUTPUT": output}.items():
        monkeypatch.setenv(name, value)
    code = "arn:aws:s3:::lake/use-cases/fish-demo/_zfish/glue/sha256/d/joined_fish_data.py"
    if refused:
        with pytest.raises(ValueError, match=rf"ZFISH_ATHENA_OUTPUT='{re.escape(output)}' reaches the lake's keys "
                                             r"\(s3://lake/use-cases/fish-demo/\).*a folder of its own"):
            settings.check_set()
        return
    settings.check_set()
    s = DeploySettings(bucket="lake", region="", endpoint_url="", prefix="use-cases/fish-demo", database="db",
                       job_name="j", role_arn="arn:aws:iam::000000000000:role/r", athena_output=output, query="athena")
    assert not allowed(runner_policy(s), Need("s3:PutObject", code))
