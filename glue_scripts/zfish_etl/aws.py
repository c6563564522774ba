"""The job's own AWS clients (catalog, raw reads, result): one endpoint and region for all of them.

On Glue both are unset and boto3 finds AWS's endpoints and the job role. Run against a local
server (moto, through `ZFISH_AWS_ENDPOINT_URL`), the job is told the endpoint in its arguments
(`--aws_endpoint_url`, `--aws_region`) and `use_endpoint` points every client here at it, so no
call of the job reaches boto3's default endpoint (a real account's) by accident.

Spark's executors fetch raw objects too, in Python workers that never ran `use_endpoint`: the
driver hands them `ClientSettings` (`for_executors`), so their clients reach the same endpoint
and region as the driver's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

_SETTINGS: dict[str, str | None] = {"endpoint_url": None, "region_name": None}
_KMS_KEY: dict[str, str] = {"arn": ""}
SSE_WRITES = ("PutObject", "CopyObject", "CreateMultipartUpload")
"""The S3 operations that create an object (upload_file's multipart included): SSE-KMS is asked on each."""
EXECUTOR_ATTEMPTS = 10
"""Attempts per request of an executor's client (botocore's standard retries: backoff up to 20 s)."""
EXECUTOR_AGENT = "zfish-executor"
"""Appended to the User-Agent of executors' requests: S3 access logs and CloudTrail tell them from the driver's."""


@dataclass(frozen=True)
class ClientSettings:
    """What a client in another process (an executor's Python worker) needs to sign and send as the driver's does.

    `credentials` (access key, secret, token or None) are set only for executors on this machine
    (a local master), whose environment is the one their JVM started with, not the run's: a Spark
    session outlives the credentials of the run that started it. Executors of a cluster (Glue's)
    resolve their own, the job role's, which refresh as they expire. Never shown (`repr=False`).
    """

    endpoint_url: str | None = None
    region_name: str | None = None
    credentials: tuple[str, str, str | None] | None = field(default=None, repr=False)


def use_endpoint(endpoint_url: str, region: str, kms_key_arn: str = "") -> None:
    """Where the job's clients go from now on ("" for boto3's default), and the KMS key of their writes."""
    _SETTINGS.update(endpoint_url=endpoint_url or None, region_name=region or None)
    _KMS_KEY["arn"] = kms_key_arn


def client(service: str) -> Any:
    import boto3

    made = boto3.client(service, **_SETTINGS)
    return encrypt_writes(made, _KMS_KEY["arn"]) if service == "s3" else made


def encrypt_writes(s3: Any, kms_key_arn: str) -> Any:
    """`s3` (a client), each of its writes (`SSE_WRITES`) asking SSE-KMS with `kms_key_arn` unless the call
    names its own encryption; unchanged without a key. A botocore event hook, so no call site can forget it."""
    def encrypt(params: dict, **_: Any) -> None:
        params.setdefault("ServerSideEncryption", "aws:kms")
        params.setdefault("SSEKMSKeyId", kms_key_arn)

    if kms_key_arn:
        for operation in SSE_WRITES:
            s3.meta.events.register(f"before-parameter-build.s3.{operation}", encrypt)
    return s3


def for_executors(with_credentials: bool) -> ClientSettings:
    """The driver's endpoint and region (as its clients resolve them), and with `with_credentials` its credentials."""
    import boto3

    session = boto3.Session()
    region = _SETTINGS["region_name"] or session.region_name
    if not with_credentials:
        return ClientSettings(_SETTINGS["endpoint_url"], region)
    found = session.get_credentials()
    frozen = found.get_frozen_credentials() if found is not None else None
    credentials = (frozen.access_key, frozen.secret_key, frozen.token) if frozen is not None else None
    return ClientSettings(_SETTINGS["endpoint_url"], region, credentials)


@functools.lru_cache(maxsize=4)
def client_for(service: str, settings: ClientSettings, pool: int = 10) -> Any:
    """A client made with `settings` (one per worker process and settings: boto3 clients are thread-safe,
    and making one costs tens of milliseconds), with `pool` connections for as many concurrent requests.

    It retries throttling and transient errors itself (botocore's standard mode, `EXECUTOR_ATTEMPTS`):
    an executor's error reaches the driver as Spark's, which the run's transient-only retries cannot
    tell from bad data.
    """
    import boto3
    from botocore.config import Config

    key, secret, token = settings.credentials or (None, None, None)
    return boto3.client(service, endpoint_url=settings.endpoint_url, region_name=settings.region_name,
                        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
                        config=Config(max_pool_connections=pool, user_agent_extra=EXECUTOR_AGENT,
                                      retries={"mode": "standard", "max_attempts": EXECUTOR_ATTEMPTS}))
