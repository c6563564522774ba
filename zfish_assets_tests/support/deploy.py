"""`zfish deploy` against moto behind `AwsProxy`: the Glue calls moto lacks, served, and a deploy's output."""

from __future__ import annotations

import json

import boto3

from zfish_assets_tests.support.aws_proxy import AwsProxy, Recorded
from zfish_assets_tests.support.moto import REGION


ROLE, OTHER_ROLE = "arn:aws:iam::000000000000:role/zfish-a", "arn:aws:iam::000000000000:role/zfish-b"
JOB = "zfish-deploy-test"
STUCK = {"progression": "manual", "times": 10**9}


def serve_what_moto_lacks(proxy: AwsProxy, moto: str) -> None:
    """UpdateJob and UpdateCrawler replace the definition on moto (Glue's semantics for the fields
    deploy sends, which are all of them); BatchStopJobRun is acknowledged (moto cannot stop a run)."""
    glue = boto3.client("glue", region_name=REGION, endpoint_url=moto)

    def update_job(r: Recorded):
        body = r.json()
        glue.delete_job(JobName=body["JobName"])
        glue.create_job(Name=body["JobName"], **body["JobUpdate"])
        return 200, json.dumps({"JobName": body["JobName"]}).encode()

    def update_crawler(r: Recorded):
        body = r.json()
        glue.delete_crawler(Name=body["Name"])
        glue.create_crawler(**body)
        return 200, b"{}"

    def stop(r: Recorded):
        body = r.json()
        return 200, json.dumps({"SuccessfulSubmissions": [{"JobName": body["JobName"], "JobRunId": i}
                                                          for i in body["JobRunIds"]], "Errors": []}).encode()

    proxy.handlers.update({"AWSGlue.UpdateJob": update_job, "AWSGlue.UpdateCrawler": update_crawler,
                           "AWSGlue.BatchStopJobRun": stop})


def run_deploy(*flags: str) -> str:
    import contextlib
    import io

    from zfish_assets.tools.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["deploy", *flags]) == 0
    return out.getvalue()
