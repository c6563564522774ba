"""Where zfish's AWS clients connect: one region and one optional endpoint, stated once for every service.

Every AWS resource (`S3Lake`, `GlueCatalog`, `GlueJobEngine`, `AthenaQueryEngine`, and the local
engine's s3a) holds the same `AWSConnection`, as dagster-aws's resources hold their boto3
configuration. Unlike dagster-aws's `ResourceWithBoto3Configuration`, it has no credential fields
(credentials come from boto3's own chain: the environment, a profile, the instance or job role,
and never reach config, logs or metadata). Each request is retried by botocore's `standard` retry
mode (throttling, 5xx, dropped connections; `AWS_MAX_ATTEMPTS`, default 3 attempts); a step whose
call still fails transiently is retried by Dagster (`retries.py`), and a refused connection or a
missing bucket fails at once, naming the setting (`aws_errors.py`). With `ZFISH_KMS_KEY_ARN` every
S3 write asks SSE-KMS with that key (`encrypt_writes`).

>>> AWSConnection(region_name="eu-west-1").client("s3").meta.region_name
'eu-west-1'
"""

from __future__ import annotations

import functools
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from glue_scripts.zfish_etl.aws import encrypt_writes
from zfish_assets import settings


class AWSConnection(ConfigurableResource):
    """The region and endpoint of every AWS client of a deployment (`ZFISH_AWS_REGION`, `ZFISH_AWS_ENDPOINT_URL`)."""

    region_name: str = Field(default="", description=settings.AWS_REGION.description)
    endpoint_url: str = Field(default="", description=settings.AWS_ENDPOINT_URL.description)
    kms_key_arn: str = Field(default="", description=settings.KMS_KEY_ARN.description)

    @classmethod
    def from_settings(cls) -> AWSConnection:
        """The connection the settings describe, its values resolved by Dagster at run time when set."""
        settings.AWS_REGION.get(), settings.KMS_KEY_ARN.get()  # refused here, naming the variable, when malformed
        return cls(region_name=settings.AWS_REGION.config(), endpoint_url=settings.AWS_ENDPOINT_URL.config(),
                   kms_key_arn=settings.KMS_KEY_ARN.config())

    def client(self, service: str) -> Any:
        """A boto3 client of `service` at this region and endpoint, shared in the process."""
        return aws_client(service, self.region_name, self.endpoint_url, self.kms_key_arn)

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
def aws_client(service: str, region: str, endpoint_url: str, kms_key_arn: str = "") -> Any:
    """One client per service, region, endpoint and KMS key per process (boto3 clients are thread-safe;
    creating one is slow), retrying in botocore's standard mode; an S3 client's writes SSE-KMS with the key."""
    import boto3
    from botocore.config import Config

    made = boto3.client(service, region_name=region or None, endpoint_url=endpoint_url or None,
                        config=Config(retries={"mode": "standard"}))
    return encrypt_writes(made, kms_key_arn) if service == "s3" else made


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
