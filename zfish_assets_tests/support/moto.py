"""moto's server as the tests use it: the bucket and region, a Glue run's output stream, Athena's queued
answers, its state manager's transitions, and a job run inside a Dagster step."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any


BUCKET = "zfish-test-lake"
REGION = "us-east-1"


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


def _moto_api(url: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(f"{url}/moto-api/{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        assert response.status in (200, 201)


def _cell(value: str | None) -> dict[str, str]:
    return {} if value is None else {"VarCharValue": value}  # Athena's NULL has no VarCharValue


def queue_athena_result(url: str, columns: list[tuple[str, str]], rows: list[list[str | None]]) -> None:
    """What Athena answers a SELECT: the header row, then the rows, every value as text."""
    info = [{"Name": n, "Label": n, "Type": t, "Precision": 10 if t == "decimal" else 0,
             "Scale": 2 if t == "decimal" else 0, "Nullable": "UNKNOWN", "CaseSensitive": False} for n, t in columns]
    body_rows = [{"Data": [_cell(n) for n, _ in columns]}] + [{"Data": [_cell(v) for v in r]} for r in rows]
    _moto_api(url, "static/athena/query-results",
              {"region": REGION, "results": [{"rows": body_rows, "column_info": info}]})


@contextmanager
def transition(url: str, model: str, progression: dict[str, Any]) -> Iterator[None]:
    """moto's state manager: how `model`'s resources advance, for the duration of the block."""
    _moto_api(url, "state-manager/set-transition", {"model_name": model, "transition": progression})
    try:
        yield
    finally:
        _moto_api(url, "state-manager/unset-transition", {"model_name": model})


STUCK = {"progression": "manual", "times": 10**9}
IMMEDIATE = {"progression": "immediate"}
ROLE = "arn:aws:iam::000000000000:role/zfish-test"  # moto accepts any role; no real account
