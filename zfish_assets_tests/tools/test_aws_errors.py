"""AWS edges a user meets first: a setting that is wrong said in one line with its fix, and every object
zfish writes encrypted with the KMS key `ZFISH_KMS_KEY_ARN` names (moto's server records SSE-KMS)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from zfish_assets_tests.support.moto import BUCKET, REGION
from zfish_assets_tests.support.deploy import ROLE
from zfish_assets_tests.support.ports import free_port


@contextmanager
def _serving(answer: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """A loopback web server on a free port whose every request `answer` replies to: its URL while open."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer(self)

        do_GET = do_POST = do_PUT = do_HEAD = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _not_aws():
    """A loopback web server that answers every request 404 with an HTML page, as a wrong URL would."""
    return _serving(lambda handler: handler.send_error(404))


def _deploy_error(capsys) -> str:
    """`zfish deploy` on AWS clients made afresh for the settings the test just set: it must fail (exit 1)
    in one line, which is returned."""
    from zfish_assets.resources.aws_connection import aws_client
    from zfish_assets.tools.cli import main

    aws_client.cache_clear()
    capsys.readouterr()
    try:
        status = main(["deploy"])
    finally:
        aws_client.cache_clear()
    err = capsys.readouterr().err.strip()
    assert status == 1 and len(err.splitlines()) == 1, err
    return err


def test_deploy_and_runs_name_the_setting_behind_a_closed_endpoint_or_a_missing_bucket(aws, monkeypatch, capsys, tmp_path):
    """A closed endpoint and a missing bucket: `zfish deploy` says so in a line naming the setting (no
    traceback), and a run's step fails at once (not retried as transient: every attempt meets them)."""
    import time

    from dagster import RetryRequested

    from zfish_assets.aws_errors import AWSSettingError
    from zfish_assets.resources.lake import S3Lake
    from zfish_assets.resources.aws_connection import AWSConnection
    from zfish_assets.retries import retry_transient

    monkeypatch.setenv("ZFISH_GLUE_ROLE_ARN", ROLE)
    monkeypatch.setenv("ZFISH_S3_BUCKET", "no-such-bucket")
    err = _deploy_error(capsys)
    assert "bucket 'no-such-bucket' does not exist (ZFISH_S3_BUCKET=no-such-bucket" in err and "fix ZFISH_S3_BUCKET" in err

    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ZFISH_S3_BUCKET", BUCKET)
    monkeypatch.setenv("ZFISH_AWS_ENDPOINT_URL", closed)
    began = time.monotonic()
    err = _deploy_error(capsys)
    assert f"nothing answers at ZFISH_AWS_ENDPOINT_URL={closed}" in err, err

    with _not_aws() as wrong:  # something listens, but it is not AWS
        monkeypatch.setenv("ZFISH_AWS_ENDPOINT_URL", wrong)
        err = _deploy_error(capsys)
    assert f"{wrong} answered GetDatabase with HTTP 404 and no AWS error: ZFISH_AWS_ENDPOINT_URL names" in err, err

    monkeypatch.setenv("ZFISH_AWS_ENDPOINT_URL", closed)  # what a run's resources connect to
    lake = S3Lake(bucket=BUCKET, aws=AWSConnection(region_name=REGION, endpoint_url=closed), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(AWSSettingError, match=f"nothing answers at ZFISH_AWS_ENDPOINT_URL={closed}") as failed:
        with retry_transient(0, "landing observations"):
            lake.list_days("observations")
    assert not isinstance(failed.value, RetryRequested)
    assert time.monotonic() - began < 30  # botocore's own few quick attempts, no 10-20-40 s step retries


def _known_regions() -> list[str]:
    """Every region botocore's endpoint data lists, in every partition (data, not the pattern the parser uses)."""
    from botocore.loaders import create_loader

    return sorted(r for p in create_loader().load_data("endpoints")["partitions"] for r in p["regions"])


def test_every_known_region_passes_and_a_typo_of_one_does_not():
    from hypothesis import given, settings as hsettings, strategies as st

    from zfish_assets import settings

    assert all(settings.AWS_REGION.parse(region) == region for region in _known_regions())

    @hsettings(max_examples=200, deadline=None)
    @given(st.sampled_from(_known_regions()), st.sampled_from("lIoO_ "), st.booleans())
    def typo(region, letter, at_end):
        # A letter for the region's number (`us-east-l`), or in place of the dash before it (`us-east_1`).
        wrong = region[:-1] + letter if at_end else region[:-2] + letter + region[-1]
        with pytest.raises(ValueError, match=r"ZFISH_AWS_REGION=.* is not an AWS region such as us-east-1"):
            settings.AWS_REGION.parse(wrong)

    typo()


def test_an_unknown_region_is_refused_at_the_settings(monkeypatch, capsys):
    from zfish_assets import settings
    from zfish_assets.deployments import resources_for
    from zfish_assets.tools.cli import main

    for region in ("us-east-1", "eu-west-3", "cn-north-1", "us-gov-west-1", "ap-southeast-7", ""):
        assert settings.AWS_REGION.parse(region) == region
    monkeypatch.setenv("ZFISH_AWS_REGION", "us-east-l")
    monkeypatch.setenv("ZFISH_S3_BUCKET", BUCKET)
    with pytest.raises(ValueError, match=r"ZFISH_AWS_REGION='us-east-l' is not an AWS region such as us-east-1"):
        resources_for("aws")
    monkeypatch.setenv("ZFISH_GLUE_ROLE_ARN", ROLE)
    with pytest.raises(SystemExit):
        main(["deploy"])
    assert "ZFISH_AWS_REGION='us-east-l' is not an AWS region" in capsys.readouterr().err


def test_no_region_anywhere_is_one_line_naming_the_setting(aws, monkeypatch, tmp_path, capsys):
    """Neither ZFISH_AWS_REGION nor boto3's own configuration names a region: deploy says which setting to set."""
    for name in ("ZFISH_AWS_REGION", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))  # no profile's region either
    monkeypatch.setenv("ZFISH_GLUE_ROLE_ARN", ROLE)
    err = _deploy_error(capsys)
    assert "no AWS region: set ZFISH_AWS_REGION" in err, err


def test_zfish_check_on_the_aws_deployment_reads_its_settings_as_a_run_does(aws, monkeypatch, capsys):
    """`zfish check` lists the S3 lake and the Glue catalog before it runs the checks: with the fields the
    settings give as `EnvVar`s (region, endpoint, bucket) resolved, as in a run, not handed to boto3 as objects."""
    from zfish_assets.tools.cli import main

    monkeypatch.setenv("ZFISH_DEPLOYMENT", "aws")
    assert main(["check", "--all"]) == 3
    err = capsys.readouterr().err
    assert f"nothing to check yet for every day: no day of it is landed or registered in the lake s3://{BUCKET}/" in err


@pytest.mark.parametrize("port", ["0", "-1", "65536", "99999", "x"])
def test_an_engine_port_outside_1_to_65535_is_a_usage_error_before_anything_starts(port, data_dir, capsys):
    from zfish_assets.tools.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["engine", "start", "--port", port])
    assert exited.value.code == 2
    assert f"--port: port {port!r} is not a TCP port, 1-65535" in capsys.readouterr().err
    assert not (data_dir / "engine").exists()


KEY = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"  # no real account


def test_every_object_zfish_writes_asks_sse_kms_with_the_configured_key(aws, monkeypatch, tmp_path):
    """With ZFISH_KMS_KEY_ARN: deploy's code, a landed day (upload_file), a ledger (put_object), a Glue
    run's Dagster Pipes context are SSE-KMS with the key; the job's Spark writes get EMRFS's settings in its
    pinned `--conf`, a local engine's s3a its own; a malformed ARN is refused naming the variable."""
    import boto3

    from dagster_aws.pipes import PipesS3ContextInjector

    from zfish_assets import settings
    from zfish_assets.deployments import resources_for
    from zfish_assets.backends.spark_session import s3a_conf
    from zfish_assets_tests.support.deploy import run_deploy

    with pytest.raises(ValueError, match=r"ZFISH_KMS_KEY_ARN='alias/lake' is not a KMS key ARN"):
        settings.KMS_KEY_ARN.parse("alias/lake")
    for name, value in {"ZFISH_KMS_KEY_ARN": KEY, "ZFISH_GLUE_ROLE_ARN": ROLE, "ZFISH_DEPLOYMENT": "aws"}.items():
        monkeypatch.setenv(name, value)
    run_deploy()
    day = tmp_path / "lab" / "outcomes" / "day=2025-05-08"
    day.mkdir(parents=True)
    (day / "labels.json").write_text('{"fish_id": "zfish_00001", "condition_developed": true}\n')
    from zfish_assets.tools.cli import main

    assert main(["upload", str(tmp_path / "lab"), "--day", "2025-05-08"]) == 0
    with resources_for()["lake"].process_config_and_initialize_cm() as lake:
        lake.put_bytes("quarantine/outcomes/day=2025-05-08.jsonl", b"")
    with resources_for()["lake"].process_config_and_initialize_cm() as lake:  # a Glue run's Pipes context
        injector = PipesS3ContextInjector(bucket=BUCKET, client=lake.aws.client("s3"),
                                          key_prefix="use-cases/fish-demo/_zfish/pipes/")
    with injector.inject_context({}) as put:  # deleted when the run ends
        s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert any("/_zfish/glue/" in k for k in keys) and any(k.endswith("labels.json") for k in keys)
        assert any(k.startswith("use-cases/fish-demo/quarantine/") for k in keys) and put["key"] in keys
        encryption = {k: (h.get("ServerSideEncryption"), h.get("SSEKMSKeyId")) for k in keys
                      for h in [s3.head_object(Bucket=BUCKET, Key=k)]}
        assert encryption == {k: ("aws:kms", KEY) for k in keys}

    job = boto3.client("glue", region_name=REGION, endpoint_url=aws).get_job(JobName="zfish-joined-fish-data")["Job"]
    pinned = job["NonOverridableArguments"]
    assert pinned["--kms_key_arn"] == KEY
    assert f"spark.hadoop.fs.s3.serverSideEncryption.kms.keyId={KEY}" in pinned["--conf"]
    assert "spark.hadoop.fs.s3.enableServerSideEncryption=true" in pinned["--conf"]
    conf = s3a_conf(aws, REGION, None, KEY)
    assert (conf["fs.s3a.server-side-encryption-algorithm"], conf["fs.s3a.server-side-encryption.key"]) == ("SSE-KMS", KEY)


def test_a_new_kms_key_reaches_the_deployed_code_so_the_job_role_granted_only_it_can_read_its_code(proxy, aws, monkeypatch):
    """Changing ZFISH_KMS_KEY_ARN: the policies then grant the new key only, so deploy rewrites its code
    objects under it (the dry run says so first, field by field), and a second deploy changes nothing."""
    import boto3

    from zfish_assets.backends.job_code import code_objects
    from zfish_assets_tests.support.deploy import run_deploy

    other = KEY.replace("1234abcd-", "5678efab-")
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)
    monkeypatch.setenv("ZFISH_DEPLOYMENT", "aws")
    monkeypatch.setenv("ZFISH_KMS_KEY_ARN", KEY)
    run_deploy()
    monkeypatch.setenv("ZFISH_KMS_KEY_ARN", other)
    planned = run_deploy("--dry-run")
    code = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="use-cases/fish-demo/_zfish/glue/")["Contents"]]
    assert len(code) == len(code_objects())
    for key in code:
        assert f"would re-encrypt s3://{BUCKET}/{key} " in planned, planned
        assert s3.head_object(Bucket=BUCKET, Key=key)["SSEKMSKeyId"] == KEY  # a dry run changes nothing
    assert planned.count(f'    SSEKMSKeyId: "{KEY}" -> "{other}"') == len(code)
    run_deploy()
    assert {s3.head_object(Bucket=BUCKET, Key=k)["SSEKMSKeyId"] for k in code} == {other}
    assert "up to date: nothing to change" in run_deploy()


def test_a_policy_folder_that_cannot_be_written_is_refused_before_the_account_changes(aws, monkeypatch, tmp_path, capsys):
    import boto3

    from zfish_assets.tools.cli import main

    monkeypatch.setenv("ZFISH_GLUE_ROLE_ARN", ROLE)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for folder in (blocker, blocker / "policies"):
        with pytest.raises(SystemExit) as exited:
            main(["deploy", "--policy-out", str(folder)])
        assert exited.value.code == 2
        assert f"--policy-out {folder}: cannot write the policies there" in capsys.readouterr().err
    glue = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    assert "zebra_fish_demo" not in [d["Name"] for d in glue.get_databases()["DatabaseList"]]


def test_no_credentials_is_one_line_saying_where_boto3_looks(aws, monkeypatch, tmp_path, capsys):

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role lookup (no network beyond loopback)
    monkeypatch.setenv("ZFISH_GLUE_ROLE_ARN", ROLE)
    err = _deploy_error(capsys)
    assert "no AWS credentials: boto3 found none (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in err, err


def test_the_demo_on_a_closed_endpoint_names_the_endpoint_not_the_bucket(aws, monkeypatch, data_dir):
    from zfish_assets.resources.aws_connection import aws_client
    from zfish_assets.tools.cli import main

    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ZFISH_DEPLOYMENT", "aws")
    monkeypatch.setenv("ZFISH_AWS_ENDPOINT_URL", closed)
    aws_client.cache_clear()
    with pytest.raises(SystemExit) as refused:
        main(["demo"])
    aws_client.cache_clear()
    message = str(refused.value.code)
    assert message.startswith("zfish demo: refusing to start, nothing written:"), message
    assert f"nothing answers at ZFISH_AWS_ENDPOINT_URL={closed}" in message, message
    assert not (data_dir / "lake").exists()


def _denying():
    """A loopback endpoint that answers every call as AWS answers an identity without the right: Glue's
    AccessDeniedException (JSON protocol, HTTP 400)."""
    body = json.dumps({"__type": "AccessDeniedException",
                       "Message": "User is not authorized to perform: glue:GetDatabase"}).encode()

    def deny(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(400)
        handler.send_header("Content-Type", "application/x-amz-json-1.1")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return _serving(deny)


def test_deploy_by_an_identity_without_the_deployer_policy_names_the_policy(aws, monkeypatch, capsys):

    monkeypatch.setenv("ZFISH_GLUE_ROLE_ARN", ROLE)
    with _denying() as endpoint:
        monkeypatch.setenv("ZFISH_AWS_ENDPOINT_URL", endpoint)
        err = _deploy_error(capsys)
    assert "AWS denied GetDatabase to this identity (User is not authorized to perform: glue:GetDatabase)" in err, err
    assert "attach deployer.json" in err, err
