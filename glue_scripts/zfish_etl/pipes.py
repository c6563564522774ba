"""The job's side of Dagster Pipes, when a run was started through it (the Glue engine's runs are).

The Glue engine starts each run with Pipes' two arguments (`--dagster-pipes-context`,
`--dagster-pipes-messages`): the context is an object in S3 (`PipesS3ContextLoader`), and the
messages go to stdout, which Glue sends to the run's CloudWatch output stream, where the engine
reads them. The job reports its result as a Pipes custom message (`report`) and its lines reach
the Dagster run as they are printed.

Started without those arguments (by hand, or in-process by the local engine, which calls `run`
and needs no messages), the job opens no Pipes session and prints its result as a
`ZFISH_RESULT {...}` line. `dagster_pipes` (a small package with no dependencies: Glue installs it
with `--additional-python-modules`, which `zfish deploy` sets) is imported only when a run asks for
Pipes; the job never imports `dagster` itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from glue_scripts.zfish_etl import aws

CONTEXT_ARGUMENT = "--dagster-pipes-context"
RESULT_LINE = "ZFISH_RESULT "
PIPES_MODULE = "dagster-pipes"


def asks_for_pipes(argv: list[str]) -> bool:
    return CONTEXT_ARGUMENT in argv


@contextmanager
def dagster_pipes(argv: list[str]) -> Iterator[Any | None]:
    """The run's Pipes context (`dagster_pipes.PipesContext`), open for the block; None when `argv` has no
    Pipes arguments. Its context object is read with the job's S3 client (`aws.client`).

    The Pipes arguments are read from `argv` (`PipesMappingParamsLoader` over the names
    `PipesCliArgsParamsLoader` reads): `main(argv)` is also called in-process, where `sys.argv`,
    the only place `PipesCliArgsParamsLoader` looks, is not the job's.
    """
    if not asks_for_pipes(argv):
        yield None
        return
    try:
        import dagster_pipes as pipes
    except ImportError as exc:
        raise ImportError(f"the run passes {CONTEXT_ARGUMENT} but {PIPES_MODULE} is not installed: the job needs "
                          f"`--additional-python-modules {PIPES_MODULE}==<version>` (run `zfish deploy`)") from exc
    parsed, _ = pipes.DAGSTER_PIPES_CLI_PARSER.parse_known_args(argv)
    loader = pipes.PipesMappingParamsLoader({pipes.DAGSTER_PIPES_CONTEXT_ENV_VAR: parsed.dagster_pipes_context,
                                             pipes.DAGSTER_PIPES_MESSAGES_ENV_VAR: parsed.dagster_pipes_messages})
    context = pipes.open_dagster_pipes(context_loader=pipes.PipesS3ContextLoader(aws.client("s3")), params_loader=loader)
    try:
        with context:
            yield context
    finally:
        # `open_dagster_pipes` keeps one context per process; a process that runs the job twice needs a new one.
        pipes.PipesContext._instance = None  # noqa: SLF001


def report(context: Any | None, result: dict) -> None:
    """The job's result: a Pipes custom message, or (no Pipes session) a `ZFISH_RESULT` line on stdout."""
    if context is not None:
        context.report_custom_message({"job_result": result})
    else:
        print(RESULT_LINE + json.dumps(result), flush=True)
