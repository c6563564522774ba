"""Where zfish's AWS clients connect: one region and one optional endpoint, stated once for every service.

Every AWS resource (`S3Lake`, `GlueCatalog`, `GlueJobEngine`, `AthenaQuery`, and the local
engine's s3a) holds the same `AWSConnection`: the fields of dagster-aws's
`ResourceWithBoto3Configuration` (region, endpoint, profile, SSL, retries, the same names, types
and defaults: a test holds them equal), whose S3 clients are made by dagster-aws's `S3Resource`.
The fields are declared here rather than inherited because importing dagster-aws costs every
process 0.9 s (its package imports its components, and with them Dagster's test utilities and
alembic: measured with `python -X importtime`), which a local deployment, never making an AWS
client, would pay on each code load, run and command; dagster-aws is imported with the first client. Its credential fields must stay empty: credentials come from boto3's own chain (the
environment, a profile, the instance or job role) and never reach config, logs or metadata; a
value there is refused, naming the field. Each request is retried by botocore's `standard` retry
mode (throttling, 5xx, dropped connections; `max_attempts`, default `AWS_MAX_ATTEMPTS`, else 3
attempts as botocore's own); a step whose call still fails transiently is retried by Dagster
(`retries.py`), and a refused connection or a missing bucket fails at once, naming the setting
(`aws_errors.py`). With `ZFISH_KMS_KEY_ARN` every S3 write asks SSE-KMS with that key (`encrypt_writes`).

dagster-aws's `AthenaClientResource` cannot serve as the Athena client: it has no region or
endpoint field (`get_client` is `boto3.client("athena", aws_access_key_id=..., aws_secret_access_key=...)`,
dagster-aws 0.29.27), so it reaches only the environment's default region and endpoint, never
this connection's (a moto server in tests, a configured region); and its `AthenaClient` polls a
fixed `max_polls` times and returns rows as untyped strings. `AthenaQuery` makes its client
here instead.

>>> AWSConnection(region_name="eu-west-1").client("s3").meta.region_name
'eu-west-1'
"""

from __future__ import annotations

import functools
import os
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field, model_validator

from glue_scripts.zfish_etl.aws import encrypt_writes
from zfish_assets import settings


CREDENTIAL_FIELDS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


class AWSConnection(ConfigurableResource):
    """The region and endpoint of every AWS client of a deployment (`ZFISH_AWS_REGION`, `ZFISH_AWS_ENDPOINT_URL`)."""

    region_name: str | None = Field(default="", description=settings.AWS_REGION.description)
    endpoint_url: str | None = Field(default="", description=settings.AWS_ENDPOINT_URL.description)
    profile_name: str | None = Field(default=None, description="The AWS profile of the boto3 session (none: boto3's chain).")
    use_ssl: bool = Field(default=True, description="Whether clients use SSL.")
    verify: bool | None = Field(default=True, description="Whether clients verify SSL certificates.")
    aws_access_key_id: str | None = Field(default=None, description="Refused when set: credentials come from boto3's chain.")
    aws_secret_access_key: str | None = Field(default=None, description="Refused when set: credentials come from boto3's chain.")
    aws_session_token: str | None = Field(default=None, description="Refused when set: credentials come from boto3's chain.")
    kms_key_arn: str = Field(default="", description=settings.KMS_KEY_ARN.description)
    # botocore's own variable and default, so a deployment (or a test) that sets it is obeyed.
    max_attempts: int = Field(default_factory=lambda: int(os.environ.get("AWS_MAX_ATTEMPTS") or 3),
                              description="Attempts per request, the first included (botocore's standard retry "
                                          "mode); default AWS_MAX_ATTEMPTS, else 3.")

    @model_validator(mode="after")
    def _no_credentials(self) -> AWSConnection:
        given = [name for name in CREDENTIAL_FIELDS if getattr(self, name)]
        if given:
            raise ValueError(f"AWSConnection: {', '.join(given)} set in config: credentials come from boto3's chain "
                             "(environment, profile, role), never from config: remove the field")
        return self

    def client(self, service: str) -> Any:
        """A boto3 client of `service` at this region and endpoint, shared in the process."""
        return aws_client(service, self.region_name or "", self.endpoint_url or "", self.kms_key_arn,
                          self.max_attempts, self.profile_name or "", self.use_ssl, self.verify)

    def region_of(self, client: Any) -> str:
        """The region a client resolved (this connection's, else boto3's own): for console links."""
        return self.region_name or client.meta.region_name

    def storage_options(self) -> dict[str, str]:
        """This connection and the resolved credentials as object_store options (hudi-rs, DuckDB's S3)."""
        options = {"aws_virtual_hosted_style_request": "false"}
        if self.region_name:
            options["aws_region"] = self.region_name
        if self.endpoint_url:
            options["aws_endpoint"] = self.endpoint_url
            options["aws_allow_http"] = str(self.endpoint_url.startswith("http://")).lower()
        creds = aws_credentials()
        if creds:
            options["aws_access_key_id"] = creds["access_key"]
            options["aws_secret_access_key"] = creds["secret_key"]
            if "token" in creds:
                options["aws_session_token"] = creds["token"]
        return options

    def job_arguments(self) -> dict[str, str]:
        """The job's `aws_endpoint_url` and `aws_region` (`JobArgs` fields), where set, so the job's clients
        reach the same services (`glue_scripts/zfish_etl/aws.py`)."""
        located = {"aws_endpoint_url": self.endpoint_url, "aws_region": self.region_name}
        return {name: value for name, value in located.items() if value}


@functools.lru_cache(maxsize=16)
def aws_client(service: str, region: str, endpoint_url: str, kms_key_arn: str = "", max_attempts: int | None = None,
               profile: str = "", use_ssl: bool = True, verify: bool | None = True) -> Any:
    """One client per service and settings per process (boto3 clients are thread-safe; creating one is slow);
    an S3 client's writes SSE-KMS with the key.

    S3's is dagster-aws's `S3Resource`'s; the others are made as dagster-aws's resources make theirs
    (a session of the profile, botocore's standard retries), with `max_attempts` attempts in all.
    dagster-aws hands its `max_attempts` to botocore's `max_attempts`, which counts retries only
    (measured: 5 gives botocore's `total_max_attempts` 6, though its description says the first
    attempt counts): S3Resource is given one less, and the others' config names the total.
    """
    import boto3
    from botocore.config import Config
    from dagster_aws.s3 import S3Resource

    max_attempts = max_attempts or int(os.environ.get("AWS_MAX_ATTEMPTS") or 3)
    if service == "s3":
        made = S3Resource(region_name=region or None, endpoint_url=endpoint_url or None, max_attempts=max_attempts - 1,
                          profile_name=profile or None, use_ssl=use_ssl, verify=verify).get_client()
        return encrypt_writes(made, kms_key_arn)
    return boto3.session.Session(profile_name=profile or None).client(
        service, region_name=region or None, endpoint_url=endpoint_url or None, use_ssl=use_ssl, verify=verify,
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}))


def aws_credentials() -> dict[str, str]:
    """The credentials boto3 resolves (environment, profile, instance role), as of now: for s3a and hudi-rs.
    `refreshable` is set when they expire and renew (a role's): s3a then resolves its own (`s3a_conf`)."""
    import boto3
    from botocore.credentials import RefreshableCredentials

    found = boto3.Session().get_credentials()
    if found is None:
        return {}
    frozen = found.get_frozen_credentials()
    creds = {"access_key": frozen.access_key, "secret_key": frozen.secret_key}
    if frozen.token:
        creds["token"] = frozen.token
    if isinstance(found, RefreshableCredentials):
        creds["refreshable"] = "true"
    return creds
