"""Engines: where the Glue job's code runs for a range of days. Local Spark here, a Glue job on AWS.

The Hudi IO manager hands an engine the job's arguments and gets the job's result back; it never
knows which engine ran.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import TYPE_CHECKING

from dagster import AssetExecutionContext, ConfigurableResource, OutputContext, get_dagster_logger
from pydantic import Field

from glue_scripts.zfish_etl.job_args import JobArgs, JobResult
from zfish_assets import settings
from zfish_assets.backends.job_code import CodeIntegrityError, verify_job_code
from zfish_assets.backends.glue_runs import GlueJobError
from zfish_assets.resources.aws_connection import AWSConnection, aws_credentials
from zfish_assets.backends.spark_session import (
    SparkEnvironmentError,
    SparkSettings,
    apply_s3a,
    check_java,
    check_pyspark,
    get_spark_session,
    jar_paths,
    masked_url,
    naming_a_gone_engine,
    remote_url,
    s3a_conf,
)
from zfish_assets.backends.connect_server import resolve_remote

if TYPE_CHECKING:
    from zfish_assets.backends.glue_pipes import GlueRunClient


class Engine(ConfigurableResource, ABC):
    """Runs the joined_fish_data job for a window and reports what it wrote."""

    def preflight(self) -> None:
        """Refuse at once what would make every run fail on this machine (none here: the Glue engine's
        deployed code is checked before each run, `GlueJobEngine.check_deployed_code`)."""

    @abstractmethod
    def run_job(self, args: JobArgs, run_key: str = "", context: OutputContext | None = None) -> JobResult:
        """Run the job to completion; raise with the engine's own error when it fails.

        `run_key` names the asking Dagster run and step: an engine whose work outlives the step
        (a Glue run) finds that work again by it when the step is retried. `context` is the asking
        IO manager's: an engine running the job elsewhere opens a Dagster Pipes session in its
        step, so the job's lines are the step's logs, and records the run's links on the output.
        """


class LocalSparkEngine(Engine):
    """The job's code in this process on the shared Spark session (`local[2]` by default)."""

    master: str = Field(default=settings.SPARK_MASTER.default, description=settings.SPARK_MASTER.description)
    s3a: bool = Field(default=False, description="Configure s3a (the lake is on S3).")
    aws: AWSConnection = Field(default_factory=AWSConnection, description="Where s3a connects (with s3a only).")

    def preflight(self) -> None:
        """Java 17, this runtime's pyspark and the jars, unless the warm engine (its own JVM) serves the runs."""
        if remote_url():
            return
        check_java()
        check_pyspark()
        jar_paths(replace(SparkSettings.from_env(), with_s3a=self.s3a))

    def run_job(self, args: JobArgs, run_key: str = "", context: OutputContext | None = None) -> JobResult:
        log = get_dagster_logger()
        started = time.monotonic()
        remote = remote_url()
        if remote and self.s3a:
            raise SparkEnvironmentError(
                f"{settings.SPARK_REMOTE.name}={masked_url(remote)}: the warm engine serves lakes on this machine's disk, and this "
                f"lake is on S3 (its s3a settings and credentials belong to the run): unset {settings.SPARK_REMOTE.name}")
        # `warm`: wait here, in the run's log, while the warm engine starts (`make dev`)
        url = resolve_remote(remote, log.info) if remote else ""
        base = SparkSettings.from_env()
        with naming_a_gone_engine(url):  # one that ends while the session is made: named too
            spark = get_spark_session(replace(base, master=self.master, with_s3a=self.s3a or base.with_s3a), remote=url)
        if self.s3a:
            apply_s3a(spark, s3a_conf(self.aws.endpoint_url, self.aws.region_name, aws_credentials(),
                                      self.aws.kms_key_arn))
        log.info(f"Spark session ready in {time.monotonic() - started:.1f}s "
                 f"({'Spark Connect at ' + masked_url(remote) if remote else self.master})")
        started = time.monotonic()
        from glue_scripts.joined_fish_data import run  # the job's PySpark, imported by a run only

        with naming_a_gone_engine(url):
            result = run(spark, args, log=log.info)
        log.info(
            f"job {args.first_day}..{args.last_day}: {result.observations_read} observations read, "
            f"{result.rows_upserted} labeled rows upserted in {time.monotonic() - started:.1f}s, "
            f"commit {result.commit_instant or 'none (nothing to write)'}"
        )
        return result


def run_arguments(args: JobArgs) -> dict[str, str]:
    """A run's `Arguments`: the run's own (its window, catalog), never code: the job's code and runtime are
    the deployed job's `NonOverridableArguments` (`zfish deploy`), which Glue keeps over a run's (the KMS
    key too: a job's, not a run's). The Pipes arguments and the step's run key are added by `GlueRunClient`."""
    return replace(args, kms_key_arn="").glue_arguments()


class GlueJobEngine(Engine):
    """Starts the deployed Glue job (made by `zfish deploy`) for a window through Dagster Pipes and waits for it.

    It only starts runs: it never creates or changes AWS resources. Before starting, it verifies
    the job's code (`backends/job_code.verify_job_code`). Each run carries the asking step's key
    (`--zfish-run-key`: the Dagster run id and step), so a retry of the step finds the run it
    started and watches it again instead of starting a second one. A terminated Dagster run stops
    its Glue run. The run's Pipes context is put under `context_prefix`; the job's lines and its
    result come back through the run's CloudWatch output stream (`backends/glue_pipes`): a run that
    succeeds without reporting a result fails.
    """

    job_name: str = Field(default=settings.GLUE_JOB_NAME.default, description=settings.GLUE_JOB_NAME.description)
    context_prefix: str = Field(description="s3://... folder where each run's Dagster Pipes context is put for the job.")
    aws: AWSConnection = Field(default_factory=AWSConnection, description="Where the Glue, S3 and CloudWatch Logs clients connect.")
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

    def pipes_client(self) -> GlueRunClient:
        """A Pipes client for one run (its message reader follows one run's stream)."""
        from zfish_assets.backends.glue_pipes import GlueRunClient  # here: a code load needs no dagster-aws

        glue = self._glue_client()
        bucket, _, prefix = self.context_prefix.removeprefix("s3://").partition("/")
        return GlueRunClient(glue=glue, s3=self._client("s3"), logs=self._client("logs"), context_bucket=bucket,
                             context_prefix=f"{prefix.strip('/')}/", timeout_s=self.timeout_s,
                             poll_interval_s=self.poll_interval_s, region=self.aws.region_of(glue),
                             before_start=lambda: self.check_deployed_code(glue))

    def run_job(self, args: JobArgs, run_key: str = "", context: OutputContext | AssetExecutionContext | None = None,
                ) -> JobResult:
        if context is None:
            raise TypeError("GlueJobEngine runs the job through Dagster Pipes, in a Dagster step: pass the step's "
                            "context (an IO manager's OutputContext, or an asset's AssetExecutionContext)")
        client = self.pipes_client()
        # Pipes opens its session on the step's execution context (an IO manager runs inside the step).
        step = AssetExecutionContext.get() if isinstance(context, OutputContext) else context
        job_run, invocation = client.run(context=step, run_key=run_key, start_job_run_params={
            "JobName": self.job_name, "Arguments": run_arguments(args)})
        reported = [m["job_result"] for m in invocation.get_custom_messages()
                    if isinstance(m, dict) and "job_result" in m]
        if not reported:
            raise GlueJobError(
                f"Glue job {self.job_name} run {job_run['Id']} succeeded but reported no result through Dagster "
                f"Pipes: the deployed script is not zfish's (run `zfish deploy`); {client.links(job_run)}")
        context.add_output_metadata({**invocation.metadata, "AWS Glue logs": client.links(job_run)})
        step.log.info(f"Glue job {self.job_name} run {job_run['Id']} succeeded; {client.links(job_run)}")
        return JobResult(**reported[-1])
