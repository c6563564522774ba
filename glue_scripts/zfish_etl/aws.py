"""The job's own AWS clients (catalog, raw reads, result): one endpoint and region for all of them.

On Glue both are unset and boto3 finds AWS's endpoints and the job role. Run against a local
server (moto, through `ZFISH_AWS_ENDPOINT_URL`), the job is told the endpoint in its arguments
(`--aws_endpoint_url`, `--aws_region`) and `use_endpoint` points every client here at it, so no
call of the job reaches boto3's default endpoint (a real account's) by accident.
"""

from __future__ import annotations

from typing import Any

_SETTINGS: dict[str, str | None] = {"endpoint_url": None, "region_name": None}


def use_endpoint(endpoint_url: str, region: str) -> None:
    """Where the job's clients go from now on ("" for boto3's default)."""
    _SETTINGS.update(endpoint_url=endpoint_url or None, region_name=region or None)


def client(service: str) -> Any:
    import boto3

    return boto3.client(service, **_SETTINGS)
