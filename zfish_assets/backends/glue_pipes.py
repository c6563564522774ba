"""A Glue job run through Dagster Pipes: dagster-aws's `PipesGlueClient`, with what a long Glue run needs beside it.

Kept from dagster-aws: the Pipes session (the run's context put in S3 by `PipesS3ContextInjector`;
its messages read from the run's CloudWatch output stream by `PipesCloudWatchMessageReader`), the
stop when the Dagster run is terminated, and the run's metadata (`_extract_dagster_metadata`).
Changed, because `PipesGlueClient.run` (dagster-aws 0.29.27) cannot serve as it is:

- it always starts a run: a step retried after a transient error (a 503 while polling) would
  start a second Glue run writing the same table. This client first looks for the run the step
  started (the `--zfish-run-key` argument) and watches it again;
- its wait has no deadline (a poll every 5 s, forever); this one stops the run after `timeout_s`;
- it refuses nothing: the job's code is verified (`before_start`) before a run starts;
- it attaches the output stream's log reader only once the run has ended, so the job's lines
  reached Dagster at its end; here they are followed from the start (`OutputLines`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from threading import Event
from typing import Any

from dagster import DagsterExecutionInterruptedError, PipesClientCompletedInvocation, open_pipes_session
from dagster_aws.pipes import (
    PipesCloudWatchLogReader,
    PipesCloudWatchMessageReader,
    PipesGlueClient,
    PipesS3ContextInjector,
)
from dagster_aws.pipes.message_readers import get_log_events
from dagster_pipes import PIPES_PROTOCOL_VERSION_FIELD

from zfish_assets.backends.glue_runs import RUN_KEY_ARGUMENT, GlueJobError, job_run_links
from zfish_assets.backends.polling import PollTimeout, poll_until

TERMINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED")
OUTPUT_GRACE_S = 10.0
"""How long the output's reader waits, after the run ended, for the job's last lines (CloudWatch
ingests with a delay): dagster's own wait after a session (`WAIT_FOR_LOGS_AFTER_EXECUTION_INTERVAL`)."""


def forward_log_line(line: str, stream) -> None:
    """Write a line of the job's output to `stream`, unless it is a Pipes message (the message reader's).

    What Dagster's `forward_only_logs_to_file` does; that helper lives in a private module, while
    the protocol's marker field is public in dagster-pipes.
    """
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    if not (isinstance(message, dict) and PIPES_PROTOCOL_VERSION_FIELD in message):
        stream.writelines((line, "\n"))


class LogLines:
    """A text stream whose lines become the step's log messages (what `forward_log_line` writes to)."""

    def __init__(self, log: Callable[[str], None], prefix: str) -> None:
        self._log, self._prefix, self._partial = log, prefix, ""

    def writelines(self, parts) -> None:
        self.write("".join(parts))

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if line.strip():
                self._log(f"{self._prefix}{line}")
        return len(text)

    def flush(self) -> None:
        pass


class OutputLines(PipesCloudWatchLogReader):
    """The run's output stream, each line not a Pipes message logged in the Dagster step as it arrives.

    `PipesCloudWatchLogReader`'s thread cannot serve: it asks `GetLogEvents` again at once while a
    stream is quiet and looks at the session's end only after a batch with events, so once the job
    has printed its last line it never ends. Measured against moto's CloudWatch Logs: 4 s after the
    session closed the thread was alive and had made 835 `GetLogEvents` calls (about 160 a second;
    AWS allows 25 a second per account), and Dagster then waits 120 s for it and fails the step.
    This thread reads every `interval` seconds, and after the session's end reads on until the
    job's closing Pipes message (or for `OUTPUT_GRACE_S`).
    """

    def __init__(self, *, interval: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.interval = interval

    def _start(self, params, is_session_closed: Event) -> None:
        request = {"logGroupName": params.get("log_group") or self.log_group,
                   "logStreamName": params.get("log_stream") or self.log_stream, "startFromHead": True}
        if self.start_time is not None:
            request["startTime"] = self.start_time
        closed_at, read_closing = None, False
        while True:
            closed_at = closed_at or (time.monotonic() if is_session_closed.is_set() else None)
            response = get_log_events(self.client, self.max_retries, **request)
            request["nextToken"] = response["nextForwardToken"]
            lines = [line for event in response.get("events", []) for line in event.get("message", "").splitlines()]
            for line in lines:
                forward_log_line(line, self.target_stream)
            read_closing = read_closing or any('"method": "closed"' in line for line in lines)
            if closed_at is not None and (read_closing or time.monotonic() - closed_at > OUTPUT_GRACE_S):
                return
            if not lines:
                is_session_closed.wait(self.interval) if closed_at is None else time.sleep(min(self.interval, 1.0))


class GlueRunClient(PipesGlueClient):
    """`PipesGlueClient` that resumes the run a step started, verifies the code first, and times out.

    One client per run (its message reader reads one run's stream). `before_start` raises
    `GlueJobError` when the job must not run (its code is not this checkout's).
    """

    def __init__(self, *, glue, s3, logs, context_bucket: str, context_prefix: str, timeout_s: float,
                 poll_interval_s: float, region: str, before_start: Callable[[], None]) -> None:
        super().__init__(context_injector=PipesS3ContextInjector(bucket=context_bucket, client=s3,
                                                                 key_prefix=context_prefix),
                         message_reader=PipesCloudWatchMessageReader(client=logs), client=glue)
        self._message_reader.interval = min(10.0, poll_interval_s)
        self._logs, self.timeout_s, self.poll_interval_s = logs, timeout_s, poll_interval_s
        self.region, self._before_start = region, before_start
        self._output: OutputLines | None = None

    def run(self, *, context, start_job_run_params, extras=None, run_key: str = ""):  # noqa: D417
        """The run `run_key` started, else a new one; its last description and the Pipes session's outcome.

        The code is verified before the Pipes session opens: a refused run puts no context and waits for no message.
        """
        job_name = start_job_run_params["JobName"]
        found = self.find_run(job_name, run_key)
        if found is None:
            self._before_start()
        else:
            self._resume(context, found, run_key)
        with open_pipes_session(context=context, message_reader=self._message_reader,
                                context_injector=self._context_injector, extras=extras) as session:
            run_id = found["Id"] if found else None
            try:  # from the start request on: a terminated step stops the run it started, even mid-request
                run_id = run_id or self._start(context, dict(start_job_run_params), session, run_key)
                job_run = found or self._client.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
                self._follow_output(context, session, job_run)
                job_run = self._wait(job_name, job_run)
            except DagsterExecutionInterruptedError:
                run_id = run_id or (self.find_run(job_name, run_key) or {}).get("Id")
                if self.forward_termination and run_id:
                    self._terminate_job_run(context=context, job_name=job_name, run_id=run_id)
                raise
            if job_run["JobRunState"] != "SUCCEEDED":
                raise GlueJobError(
                    f"Glue job {job_name} run {job_run['Id']} ended {job_run['JobRunState']}: "
                    f"{job_run.get('ErrorMessage') or 'no error message'}; {self.links(job_run)}")
        return job_run, PipesClientCompletedInvocation(session, metadata=self._extract_dagster_metadata({"JobRun": job_run}))

    def links(self, job_run: dict) -> str:
        return job_run_links(job_run["JobName"], job_run["Id"], self.region, job_run.get("LogGroupName"))

    def find_run(self, job_name: str, run_key: str) -> dict | None:
        """The run started for `run_key`, newest first; None when there is none.

        Glue lists a job's runs newest first: the search stops at runs older than any this step
        could still be waiting for (the timeout, plus an hour of retries).
        """
        if not run_key:
            return None
        horizon = datetime.now(timezone.utc).timestamp() - self.timeout_s - 3600
        for page in self._client.get_paginator("get_job_runs").paginate(JobName=job_name):
            for job_run in page["JobRuns"]:
                if job_run.get("Arguments", {}).get(RUN_KEY_ARGUMENT) == run_key:
                    return job_run
            if any(r["StartedOn"].timestamp() < horizon for r in page["JobRuns"]):
                break
        return None

    def _resume(self, context, found: dict, run_key: str) -> None:
        """Say that the step watches again the run it started before: its Pipes context is the first
        attempt's, which the job read when it started (a failed attempt leaves its context object in place)."""
        context.log.info(f"Glue job {found['JobName']} run {found['Id']} was started for this step ({run_key}) and is "
                         f"{found['JobRunState']}: watching it again, not starting another; {self.links(found)}")

    def _start(self, context, params: dict, session, run_key: str) -> str:
        """A new run, with the session's Pipes arguments and the step's run key: its id."""
        params["Arguments"] = {**params.get("Arguments", {}), **session.get_bootstrap_cli_arguments(),
                               **({RUN_KEY_ARGUMENT: run_key} if run_key else {})}
        run_id = self._client.start_job_run(**params)["JobRunId"]
        context.log.info(f"started Glue job {params['JobName']} run {run_id}; "
                         f"{job_run_links(params['JobName'], run_id, self.region)}")
        return run_id

    def _follow_output(self, context, session, job_run: dict) -> None:
        """Read the run's Pipes messages from its CloudWatch output stream, from the run's start (a
        resumed run's first lines included); its other lines are logged once the stream exists."""
        group = f"{(job_run.get('LogGroupName') or '/aws-glue/jobs').rstrip('/')}/output"
        started_ms = int(job_run["StartedOn"].timestamp() * 1000) - 1000
        self._message_reader.start_time = datetime.fromtimestamp(started_ms / 1000, timezone.utc)
        session.report_launched({"extras": {"log_group": group, "log_stream": job_run["Id"]}})
        self._output = OutputLines(
            client=self._logs, log_group=group, log_stream=job_run["Id"], start_time=started_ms,
            interval=self.poll_interval_s, target_stream=LogLines(context.log.info, f"[glue {job_run['Id']}] "))

    def _attach_output(self) -> None:
        """Hand the output's reader to the session once the stream exists: a reader added before waits for it
        up to 60 s after the session (`WAIT_FOR_LOGS_TIMEOUT`), which a run stopped before printing never ends."""
        if self._output is not None and self._output.target_is_readable({}):
            self._message_reader.add_log_reader(self._output)
            self._output = None

    def _wait(self, job_name: str, job_run: dict) -> dict:
        """Poll the run until it ends; past `timeout_s` from its start, stop it and raise."""
        elapsed = datetime.now(timezone.utc).timestamp() - job_run["StartedOn"].timestamp()
        try:
            ended = poll_until(lambda: self._describe(job_name, job_run["Id"]), lambda r: r["JobRunState"] in TERMINAL_STATES,
                               max(0.0, self.timeout_s - elapsed), self.poll_interval_s)
        except PollTimeout as timeout:
            raise GlueJobError(
                f"Glue job {job_name} run {job_run['Id']} still {timeout.last['JobRunState']} after "
                f"{self.timeout_s:g}s: {self.stop(job_name, job_run['Id']).rstrip(':')}; {self.links(timeout.last)}"
            ) from None
        self._attach_output()
        return ended

    def _describe(self, job_name: str, run_id: str) -> dict:
        self._attach_output()
        return self._client.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]

    def _terminate_job_run(self, context, job_name: str, run_id: str) -> None:
        context.log.warning(f"run terminated: {self.stop(job_name, run_id)} Glue job {job_name} run {run_id}")

    def stop(self, job_name: str, run_id: str) -> str:
        """Ask Glue to stop the run; what happened, for the message (the caller's error matters more).

        Not `PipesGlueClient._terminate_job_run`: it reads `response['errors']`, a key Glue's
        response does not have (`Errors`), so a refused stop raised a KeyError over the real error.
        """
        try:
            response = self._client.batch_stop_job_run(JobName=job_name, JobRunIds=[run_id])
        except Exception as exc:  # noqa: BLE001 - reported, and the caller raises its own error
            return f"stopping it failed ({exc}); stop it in the Glue console:"
        if response.get("Errors"):
            return f"stopping it failed ({response['Errors'][0].get('ErrorDetail')}); stop it in the Glue console:"
        return "stopped"
