"""`AWSConnection`: dagster-aws's boto3 configuration for every client of a deployment (no server needed)."""

from __future__ import annotations

import pytest

from zfish_assets.resources.aws_connection import AWSConnection


def test_the_aws_connection_is_dagster_aws_boto3_configuration_without_credentials(monkeypatch):
    """One region, endpoint and retry setting for every client (S3's made by dagster-aws's S3Resource);
    AWS_MAX_ATTEMPTS counts every attempt, as botocore documents it; credentials in config are refused."""
    from dagster_aws.utils import ResourceWithBoto3Configuration

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    connection = AWSConnection(region_name="eu-west-1", endpoint_url="http://127.0.0.1:9")
    assert isinstance(connection, ResourceWithBoto3Configuration)
    for service in ("s3", "glue", "athena", "logs"):
        client = connection.client(service)
        assert (client.meta.region_name, client.meta.endpoint_url, client.meta.config.retries) == \
            ("eu-west-1", "http://127.0.0.1:9", {"mode": "standard", "total_max_attempts": 2}), service
    with pytest.raises(ValueError, match=r"aws_secret_access_key set in config: credentials come from boto3's chain"):
        AWSConnection(aws_secret_access_key="not-a-secret")
