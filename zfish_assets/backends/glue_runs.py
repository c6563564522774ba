"""What a Glue job run of zfish is called, how it fails, and where its logs are: without dagster-aws.

Apart from `glue_pipes.py` (dagster-aws's Pipes client) so that a code load, which names these in
the Glue engine, does not import dagster-aws (`resources/aws_connection.py` says why that matters).
"""

from __future__ import annotations

from urllib.parse import quote

RUN_KEY_ARGUMENT = "--zfish-run-key"


class GlueJobError(RuntimeError):
    """The Glue job run failed, timed out, or was refused before starting."""


def job_run_links(job_name: str, run_id: str, region: str, log_group_prefix: str | None = None) -> str:
    """Where to read a run's logs: Glue 5.0 writes the driver's and executors' system logs to
    `<prefix>/error` and the script's stdout/stderr to `<prefix>/output` (prefix `/aws-glue/jobs`
    unless the job sets `--custom-logGroup-prefix`), in streams named after the run id."""
    prefix = (log_group_prefix or "/aws-glue/jobs").rstrip("/")
    return f"logs: CloudWatch {prefix}/output and {prefix}/error, streams {run_id}*; console: {console_url(job_name, run_id, region)}"


def console_url(job_name: str, run_id: str, region: str) -> str:
    return (f"https://{region}.console.aws.amazon.com/gluestudio/home?region={region}"
            f"#/job/{quote(job_name, safe='')}/run/{run_id}")
