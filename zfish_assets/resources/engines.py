"""Engines: where the Glue job's code runs for a range of days. Local Spark here, a Glue job on AWS.

The Hudi IO manager hands an engine the job's arguments and gets the job's result back; it never
knows which engine ran.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from dagster import ConfigurableResource, DagsterExecutionInterruptedError, get_dagster_logger
from pydantic import Field

from glue_scripts.joined_fish_data import run
from glue_scripts.zfish_etl.files import get_s3_object
from glue_scripts.zfish_etl.job_args import JobArgs, JobResult, glue_argument
from zfish_assets import settings
from zfish_assets.engines.job_code import CodeIntegrityError, verify_job_code
from zfish_assets.resources.aws import AWSConnection, aws_credentials
from zfish_assets.engines.polling import PollTimeout, poll_until
from zfish_assets.engines.spark_session import (
    SparkEnvironmentError,
    SparkSettings,
    apply_s3a,
    check_java,
    check_pyspark,
    get_spark_session,
    jar_paths,
    masked_url,
    remote_url,
    s3a_conf,
)


class Engine(ConfigurableResource, ABC):
    """Runs the joined_fish_data job for a window and reports what it wrote."""

    def preflight(self) -> None:
        """Refuse at once what would make every run fail on this machine (none here: the Glue engine's
        deployed code is checked before each run, `GlueJobEngine.check_deployed_code`)."""

    @abstractmethod
    def run_job(self, args: JobArgs, run_key: str = "") -> JobResult:
        """Run the job to completion; raise with the engine's own error when it fails.

        `run_key` names the asking Dagster run and step: an engine whose work outlives the step
        (a Glue run) finds that work again by it when the step is retried.
        """


class LocalSparkEngine(Engine):
    """The job's code in this process on the shared Spark session (`local[2]` by default)."""

    master: str = Field(
        default_factory=settings.SPARK_MASTER.get, description=settings.SPARK_MASTER.description,
    )
    s3a: bool = Field(default=False, description="Configure s3a (the lake is on S3).")
    aws: AWSConnection = Field(default_factory=AWSConnection, description="Where s3a connects (with s3a only).")

    def preflight(self) -> None:
        """Java 17, this runtime's pyspark and the jars, unless the warm engine (its own JVM) serves the runs."""
        if remote_url():
            return
        check_java()
        check_pyspark()
        jar_paths(replace(SparkSettings.from_env(), with_s3a=self.s3a))

    def run_job(self, args: JobArgs, run_key: str = "") -> JobResult:
        log = get_dagster_logger()
        started = time.monotonic()
        remote = remote_url()
        if remote and self.s3a:
            raise SparkEnvironmentError(
                f"{settings.SPARK_REMOTE.name}={masked_url(remote)}: the warm engine serves lakes on this machine's disk, and this "
                f"lake is on S3 (its s3a settings and credentials belong to the run): unset {settings.SPARK_REMOTE.name}")
        base = SparkSettings.from_env()
        spark = get_spark_session(replace(base, master=self.master, with_s3a=self.s3a or base.with_s3a))
        if self.s3a:
            apply_s3a(spark, s3a_conf(self.aws.endpoint_url, self.aws.region_name, aws_credentials(),
                                      self.aws.kms_key_arn))
        log.info(f"Spark session ready in {time.monotonic() - started:.1f}s "
                 f"({'Spark Connect at ' + masked_url(remote) if remote else self.master})")
        started = time.monotonic()
        result = run(spark, args, log=log.info)
        log.info(
            f"job {args.first_day}..{args.last_day}: {result.observations_read} observations read, "
            f"{result.rows_upserted} labeled rows upserted in {time.monotonic() - started:.1f}s, "
            f"commit {result.commit_instant or 'none (nothing to write)'}"
        )
        return result


RUN_KEY_ARGUMENT = "--zfish-run-key"
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


def run_arguments(args: JobArgs, result_uri: str, run_key: str) -> dict[str, str]:
    """A run's `Arguments`: the run's own (its window, catalog, where it writes its result, its key), never
    code: the job's code and runtime are the deployed job's `NonOverridableArguments` (`zfish deploy`),
    which Glue keeps over a run's (the KMS key too: a job's, not a run's)."""
    arguments = replace(args, result_uri=result_uri, kms_key_arn="").glue_arguments()
    if run_key:
        arguments[RUN_KEY_ARGUMENT] = run_key
    return arguments


class GlueJobEngine(Engine):
    """Starts the deployed Glue job (made by `zfish deploy`) for a window and waits for it.

    It only starts runs: it never creates or changes AWS resources. Before starting, it verifies
    the job's code (`engines/job_code.verify_job_code`). Each run carries the asking step's key
    (`--zfish-run-key`: the Dagster run id and step), so a retry of the step finds the run it
    started and watches it again instead of starting a second one. A terminated Dagster run stops
    its Glue run. The job writes its result as JSON to `result_prefix/<token>.json`; a run that
    succeeds without a result fails.
    """

    job_name: str = Field(default=settings.GLUE_JOB_NAME.default, description=settings.GLUE_JOB_NAME.description)
    result_prefix: str = Field(description="s3://... folder where job runs write their results.")
    aws: AWSConnection = Field(default_factory=AWSConnection, description="Where the Glue and S3 clients connect.")
    timeout_s: float = Field(default=float(settings.GLUE_TIMEOUT_S.default),
                             description="Give up (and stop the run) this many seconds after it started (ZFISH_GLUE_TIMEOUT_S).")
    poll_interval_s: float = Field(default=float(settings.GLUE_POLL_S.default), description=settings.GLUE_POLL_S.description)

    def _client(self, service: str):
        return self.aws.client(service)

    def _glue_client(self):
        return self._client("glue")

    def check_deployed_code(self, glue=None) -> None:
        """Refuse (GlueJobError naming the fix) a job that is missing or does not run this checkout's code."""
        glue = glue or self._glue_client()
        try:
            job = glue.get_job(JobName=self.job_name)["Job"]
        except glue.exceptions.EntityNotFoundException as exc:
            raise GlueJobError(f"Glue job {self.job_name!r} does not exist: run `zfish deploy`") from exc
        try:
            verify_job_code(self._client("s3"), self.job_name, job)
        except CodeIntegrityError as exc:
            raise GlueJobError(str(exc)) from None

    def find_run(self, glue, run_key: str) -> dict | None:
        """The run started for `run_key`, newest first; None when there is none.

        Glue lists a job's runs newest first: the search stops at runs older than any this step
        could still be waiting for (the timeout, plus an hour of retries).
        """
        if not run_key:
            return None
        horizon = datetime.now(timezone.utc) - timedelta(seconds=self.timeout_s + 3600)
        for page in glue.get_paginator("get_job_runs").paginate(JobName=self.job_name):
            for job_run in page["JobRuns"]:
                if job_run.get("Arguments", {}).get(RUN_KEY_ARGUMENT) == run_key:
                    return job_run
            if any(r["StartedOn"] < horizon for r in page["JobRuns"]):
                break
        return None

    def run_job(self, args: JobArgs, run_key: str = "") -> JobResult:
        log = get_dagster_logger()
        glue = self._glue_client()
        region = self.aws.region_of(glue)
        run_id, started, result_uri = self._resume_or_start(glue, args, run_key, region)
        try:
            job_run = self._wait(glue, run_id, region, started)
        except DagsterExecutionInterruptedError:
            log.warning(f"run terminated: {self._stop(glue, run_id)} Glue job {self.job_name} run {run_id}")
            raise
        state = job_run["JobRunState"]
        links = job_run_links(self.job_name, run_id, region, job_run.get("LogGroupName"))
        if state != "SUCCEEDED":
            raise GlueJobError(
                f"Glue job {self.job_name} run {run_id} ended {state}: "
                f"{job_run.get('ErrorMessage') or 'no error message'}; {links}"
            )
        result = self._read_result(run_id, result_uri, links)
        log.info(f"Glue job {self.job_name} run {run_id} succeeded; {links}")
        return result

    def _resume_or_start(self, glue, args: JobArgs, run_key: str, region: str) -> tuple[str, datetime, str]:
        """The run this step started before (a retry watches it again), else a new one of this checkout's
        verified code: its id, start time and where it writes its result."""
        import uuid

        log = get_dagster_logger()
        found = self.find_run(glue, run_key)
        if found is not None:
            run_id = found["Id"]
            log.info(f"Glue job {self.job_name} run {run_id} was started for this step ({run_key}) and is "
                     f"{found['JobRunState']}: watching it again, not starting another; "
                     f"{job_run_links(self.job_name, run_id, region)}")
            return run_id, found["StartedOn"], found.get("Arguments", {}).get(glue_argument("result_uri"), "")
        self.check_deployed_code(glue)
        result_uri = f"{self.result_prefix.rstrip('/')}/{args.first_day}_{args.last_day}_{uuid.uuid4().hex}.json"
        run_id = glue.start_job_run(JobName=self.job_name, Arguments=run_arguments(args, result_uri, run_key))["JobRunId"]
        log.info(f"started Glue job {self.job_name} run {run_id} for {args.first_day}..{args.last_day}; "
                 f"{job_run_links(self.job_name, run_id, region)}")
        return run_id, datetime.now(timezone.utc), result_uri

    def _read_result(self, run_id: str, result_uri: str, links: str) -> JobResult:
        """The JobResult the run wrote; a run that wrote none did not run zfish's script."""
        import json

        bucket, _, key = result_uri.removeprefix("s3://").partition("/")
        body = get_s3_object(self._client("s3"), bucket, key)
        if body is None:
            raise GlueJobError(
                f"Glue job {self.job_name} run {run_id} succeeded but reported no result at {result_uri}: "
                f"the deployed script is not zfish's (run `zfish deploy`); {links}")
        return JobResult(**json.loads(body))

    def _stop(self, glue, run_id: str) -> str:
        """Ask Glue to stop the run; what happened, for the message (the caller's error matters more)."""
        try:
            response = glue.batch_stop_job_run(JobName=self.job_name, JobRunIds=[run_id])
        except Exception as exc:  # noqa: BLE001 - reported, and the caller raises its own error
            return f"stopping it failed ({exc}); stop it in the Glue console:"
        if response.get("Errors"):
            return f"stopping it failed ({response['Errors'][0].get('ErrorDetail')}); stop it in the Glue console:"
        return "stopped"

    def _wait(self, glue, run_id: str, region: str, started: datetime) -> dict:
        remaining = self.timeout_s - (datetime.now(timezone.utc) - started).total_seconds()
        try:
            return poll_until(lambda: glue.get_job_run(JobName=self.job_name, RunId=run_id)["JobRun"],
                              lambda job_run: job_run["JobRunState"] in TERMINAL_STATES,
                              max(0.0, remaining), self.poll_interval_s)
        except PollTimeout as timeout:
            raise GlueJobError(
                f"Glue job {self.job_name} run {run_id} still {timeout.last['JobRunState']} after "
                f"{self.timeout_s:g}s: {self._stop(glue, run_id).rstrip(':')}; "
                f"{job_run_links(self.job_name, run_id, region, timeout.last.get('LogGroupName'))}"
            ) from None
