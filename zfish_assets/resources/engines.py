"""Engines: where the Glue job's code runs for a range of days. Local Spark here, a Glue job on AWS.

The Hudi IO manager hands an engine the job's arguments and gets the job's result back; it never
knows which engine ran.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import replace
from urllib.parse import quote

from dagster import ConfigurableResource, get_dagster_logger
from pydantic import Field

from glue_scripts.joined_fish_data import JobArgs, JobResult, run
from zfish_assets import settings
from zfish_assets.job_code import script_sha256
from zfish_assets.resources.lake import aws_credentials
from zfish_assets.resources.polling import PollTimeout, poll_until
from zfish_assets.resources.spark import (
    REMOTE_VARIABLE,
    SparkEnvironmentError,
    SparkSettings,
    apply_s3a,
    get_spark_session,
    remote_url,
    s3a_conf,
)


class Engine(ConfigurableResource, ABC):
    """Runs the joined_fish_data job for a window and reports what it wrote."""

    @abstractmethod
    def run_job(self, args: JobArgs) -> JobResult:
        """Run the job to completion; raise with the engine's own error when it fails."""


class LocalSparkEngine(Engine):
    """The job's code in this process on the shared Spark session (`local[2]` by default)."""

    master: str = Field(
        default_factory=lambda: settings.env("ZFISH_SPARK_MASTER", "local[2]"),
        description="Spark master: local[N] or a cluster URL.",
    )
    s3a: bool = Field(default=False, description="Configure s3a (the lake is on S3).")
    s3_region: str = Field(default="", description="AWS region for s3a (ZFISH_AWS_REGION).")
    s3_endpoint_url: str = Field(default="", description="Optional S3 endpoint for s3a (ZFISH_AWS_ENDPOINT_URL).")

    def run_job(self, args: JobArgs) -> JobResult:
        log = get_dagster_logger()
        started = time.monotonic()
        remote = remote_url()
        if remote and self.s3a:
            raise SparkEnvironmentError(
                f"{REMOTE_VARIABLE}={remote}: the warm engine serves lakes on this machine's disk, and this "
                f"lake is on S3 (its s3a settings and credentials belong to the run): unset {REMOTE_VARIABLE}")
        base = SparkSettings.from_env()
        spark = get_spark_session(replace(base, master=self.master, with_s3a=self.s3a or base.with_s3a))
        if self.s3a:
            apply_s3a(spark, s3a_conf(self.s3_endpoint_url, self.s3_region, aws_credentials()))
        log.info(f"Spark session ready in {time.monotonic() - started:.1f}s "
                 f"({'Spark Connect at ' + remote if remote else self.master})")
        started = time.monotonic()
        result = run(spark, args)
        log.info(
            f"job {args.first_day}..{args.last_day}: {result.observations_read} observations read, "
            f"{result.rows_upserted} labeled rows upserted in {time.monotonic() - started:.1f}s, "
            f"commit {result.commit_instant or 'none (nothing to write)'}"
        )
        return result


SCRIPT_HASH_ARGUMENT = "--zfish-script-sha256"
TERMINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED")


class GlueJobError(RuntimeError):
    """The Glue job run failed, timed out, or was refused before starting."""


def job_run_links(job_name: str, run_id: str, region: str, log_group_prefix: str | None = None) -> str:
    """Where to read a run's logs: Glue 5.0 writes the driver's and executors' system logs to
    `<prefix>/error` and the script's stdout/stderr to `<prefix>/output` (prefix `/aws-glue/jobs`
    unless the job sets `--custom-logGroup-prefix`), in streams named after the run id."""
    prefix = (log_group_prefix or "/aws-glue/jobs").rstrip("/")
    console = (f"https://{region}.console.aws.amazon.com/gluestudio/home?region={region}"
               f"#/job/{quote(job_name, safe='')}/run/{run_id}")
    return f"logs: CloudWatch {prefix}/output and {prefix}/error, streams {run_id}*; console: {console}"


class GlueJobEngine(Engine):
    """Starts the deployed Glue job (made by `zfish deploy`) for a window and waits for it.

    It only starts runs: it never creates or changes AWS resources. The job writes its result as
    JSON to `result_prefix/<token>.json`; a run that succeeds without a result fails.
    """

    job_name: str = Field(description="The deployed Glue job (ZFISH_GLUE_JOB_NAME).")
    result_prefix: str = Field(description="s3://... folder where job runs write their results.")
    region: str = Field(default="", description="AWS region (ZFISH_AWS_REGION).")
    endpoint_url: str = Field(default="", description="Optional endpoint for Glue and S3 (ZFISH_AWS_ENDPOINT_URL).")
    timeout_s: float = Field(default=3 * 3600, description="Give up (and stop the run) after this many seconds.")
    poll_interval_s: float = Field(default=15.0, description="Seconds between job run status polls.")

    def _client(self, service: str):
        import boto3

        return boto3.client(service, region_name=self.region or None, endpoint_url=self.endpoint_url or None)

    def _glue_client(self):
        return self._client("glue")

    def check_deployed_script(self, glue) -> None:
        try:
            job = glue.get_job(JobName=self.job_name)["Job"]
        except glue.exceptions.EntityNotFoundException as exc:
            raise GlueJobError(f"Glue job {self.job_name!r} does not exist: run `zfish deploy`") from exc
        deployed = job.get("DefaultArguments", {}).get(SCRIPT_HASH_ARGUMENT)
        expected = script_sha256()
        if deployed != expected:
            raise GlueJobError(
                f"Glue job {self.job_name!r} runs a different script than this code (deployed "
                f"{SCRIPT_HASH_ARGUMENT}={deployed or 'none'}, code {expected}): run `zfish deploy` first"
            )

    def run_job(self, args: JobArgs) -> JobResult:
        import json
        import uuid
        from dataclasses import asdict

        log = get_dagster_logger()
        glue = self._glue_client()
        self.check_deployed_script(glue)
        result_uri = f"{self.result_prefix.rstrip('/')}/{args.first_day}_{args.last_day}_{uuid.uuid4().hex}.json"
        arguments = {f"--{k}": str(v) for k, v in asdict(replace(args, result_uri=result_uri)).items() if v != ""}
        run_id = glue.start_job_run(JobName=self.job_name, Arguments=arguments)["JobRunId"]
        region = self.region or glue.meta.region_name
        log.info(f"started Glue job {self.job_name} run {run_id} for {args.first_day}..{args.last_day}; "
                 f"{job_run_links(self.job_name, run_id, region)}")
        job_run = self._wait(glue, run_id, region)
        state = job_run["JobRunState"]
        links = job_run_links(self.job_name, run_id, region, job_run.get("LogGroupName"))
        if state != "SUCCEEDED":
            raise GlueJobError(
                f"Glue job {self.job_name} run {run_id} ended {state}: "
                f"{job_run.get('ErrorMessage') or 'no error message'}; {links}"
            )
        bucket, _, key = result_uri.removeprefix("s3://").partition("/")
        s3 = self._client("s3")
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey as exc:
            raise GlueJobError(
                f"Glue job {self.job_name} run {run_id} succeeded but reported no result at {result_uri}: "
                f"the deployed script is not zfish's (run `zfish deploy`); {links}"
            ) from exc
        log.info(f"Glue job {self.job_name} run {run_id} succeeded; {links}")
        return JobResult(**json.loads(body))

    def _wait(self, glue, run_id: str, region: str) -> dict:
        try:
            return poll_until(lambda: glue.get_job_run(JobName=self.job_name, RunId=run_id)["JobRun"],
                              lambda job_run: job_run["JobRunState"] in TERMINAL_STATES,
                              self.timeout_s, self.poll_interval_s)
        except PollTimeout as timeout:
            try:
                glue.batch_stop_job_run(JobName=self.job_name, JobRunIds=[run_id])
                stopped = "stopped it"
            except Exception as exc:  # the timeout is the error to report, not the failed stop
                stopped = f"stopping it failed ({exc}); stop it in the Glue console"
            raise GlueJobError(
                f"Glue job {self.job_name} run {run_id} still {timeout.last['JobRunState']} after "
                f"{self.timeout_s:g}s: {stopped}; "
                f"{job_run_links(self.job_name, run_id, region, timeout.last.get('LogGroupName'))}"
            ) from None
