"""A long Spark-engine run on a role's credentials: s3a renews them itself.

A role's credentials expire (an hour, by default); the local Spark engine once handed s3a a frozen
copy, so a join outliving them failed mid-write. Here a loopback server plays the container
credentials endpoint (what ECS, EKS and CodeBuild serve): each fetch hands out new keys that
expire in five minutes, which the AWS SDK renews before using (it renews within 15 minutes of
expiry). The engine's s3a settings, in a Spark process of their own, must then sign later writes
with later keys; the recording proxy in front of moto shows which keys signed what.

Not shown here: s3a's SSE-KMS writes (`s3a_conf`'s `fs.s3a.server-side-encryption*`, checked as
settings in test_aws_errors). The AWS SDK for Java refuses to send SSE headers over plain HTTP
("HTTPS must be used ..."), and moto serves HTTP here; on AWS the endpoint is HTTPS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

from zfish_assets_tests.support.aws_proxy import AwsProxy
from zfish_assets_tests.support.moto import BUCKET, REGION

WRITER = """
import sys
from dataclasses import replace
from zfish_assets.backends.spark_session import SparkSettings, apply_s3a, get_spark_session, s3a_conf
from zfish_assets.resources.aws_connection import aws_credentials
endpoint, target = sys.argv[1:]
spark = get_spark_session(replace(SparkSettings.from_env(), with_s3a=True))
apply_s3a(spark, s3a_conf(endpoint, "us-east-1", aws_credentials()))  # as LocalSparkEngine.run_job does
for i in range(3):
    spark.createDataFrame([(i, "x")], "n int, s string").coalesce(1).write.mode("append").parquet(target)
"""


class CredentialsEndpoint:
    """Container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI) that change at each fetch and expire soon."""

    def __init__(self) -> None:
        self.served: list[str] = []
        endpoint = self

        class Serve(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                key = f"AKIAZFISHROLE{len(endpoint.served):04d}"
                endpoint.served.append(key)
                expires = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
                body = json.dumps({"AccessKeyId": key, "SecretAccessKey": "secret", "Token": "token",
                                   "Expiration": expires}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Serve)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/credentials"


def test_the_spark_engines_s3a_renews_a_roles_credentials(aws, tmp_path):
    credentials, proxy = CredentialsEndpoint(), AwsProxy(aws)
    try:
        nowhere = str(tmp_path / "none")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials.url, "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": nowhere, "AWS_SHARED_CREDENTIALS_FILE": nowhere, "AWS_CREDENTIAL_PROFILES_FILE": nowhere,
            "AWS_EC2_METADATA_DISABLED": "true", "ZFISH_SPARK_DRIVER_MEMORY": "1g"}
        target = f"s3a://{BUCKET}/use-cases/fish-demo/processed/renewed"
        done = subprocess.run([sys.executable, "-c", WRITER, proxy.url, target], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        proxy.close()
        credentials.server.shutdown()

    writes = [r for r in proxy.requests if r.method in ("PUT", "POST") and "aws-sdk-java" in r.headers.get("user-agent", "")]
    signed_by = [r.access_key for r in writes]
    assert set(signed_by) <= set(credentials.served) and len(set(signed_by)) >= 2, (signed_by, credentials.served)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)
    files = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="use-cases/fish-demo/processed/renewed/")["Contents"]
             if o["Key"].endswith(".parquet")]
    assert len(files) == 3  # every write went through, on renewed keys
