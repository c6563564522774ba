"""The Glue engine's Dagster Pipes parts on their own: the job's side without a Pipes session, and the
reader of a run's CloudWatch output stream against moto's CloudWatch Logs."""

from __future__ import annotations

from zfish_assets_tests.support.moto import REGION, run_captured, write_output_stream


def test_the_job_without_pipes_arguments_prints_its_result():
    """Run by hand (no `--dagster-pipes-context`), the job opens no Pipes session and prints its result."""
    import json

    from glue_scripts.zfish_etl.pipes import dagster_pipes, report

    def job(argv):
        with dagster_pipes(argv) as pipes:
            report(pipes, {"rows_upserted": 3})

    lines, raised = run_captured(job, ["joined_fish_data.py", "--first_day", "2025-05-01"])
    assert raised is None and lines == ["ZFISH_RESULT " + json.dumps({"rows_upserted": 3})]


def test_the_output_reader_ends_with_the_session_and_logs_only_the_jobs_lines(aws):
    """The run's output stream after the run: its lines logged, its Pipes messages not, and the reader's
    thread over once the session closed and the closing message was read (dagster-aws's reader polls on)."""
    import json
    import threading
    import time

    import boto3

    from zfish_assets.backends.glue_pipes import LogLines, OutputLines

    logs = boto3.client("logs", region_name=REGION, endpoint_url=aws)
    closing = json.dumps({"__dagster_pipes_version": "0.1", "method": "closed", "params": {}})
    write_output_stream(logs, {"LogGroupName": "/aws-glue/jobs", "Id": "jr_1"}, ["first", "second\nthird", closing])
    calls, logged = [], []
    logs.meta.events.register("before-call.cloudwatch-logs.GetLogEvents", lambda **kw: calls.append(1))
    reader = OutputLines(client=logs, log_group="/aws-glue/jobs/output", log_stream="jr_1", interval=0.2,
                         start_time=int(time.time() * 1000) - 60_000, target_stream=LogLines(logged.append, "> "))
    closed = threading.Event()
    reader.start({}, closed)
    time.sleep(1)
    closed.set()
    reader.thread.join(timeout=5)
    assert not reader.is_running() and logged == ["> first", "> second", "> third"]
    assert len(calls) <= 10, len(calls)


def test_only_the_jobs_own_lines_are_forwarded():
    """A Pipes message (a JSON object carrying the protocol's version field) is the message reader's;
    every other line, JSON or not, is the job's and reaches the log as it was printed."""
    import io
    import json

    from zfish_assets.backends.glue_pipes import forward_log_line

    message = json.dumps({"__dagster_pipes_version": "0.1", "method": "log", "params": {}})
    own = ["plain text", "{not json", "42", '["a list"]', json.dumps({"rows": 3}), ""]
    stream = io.StringIO()
    for line in [message, *own]:
        forward_log_line(line, stream)
    assert stream.getvalue() == "".join(f"{line}\n" for line in own)
