"""`AWSConnection`: dagster-aws's boto3 configuration for every client of a deployment (no server needed)."""

from __future__ import annotations

import pytest

from zfish_assets.resources.aws_connection import AWSConnection


# Where AWSConnection's fields differ from dagster-aws's on purpose: "" reads as unset in zfish's settings,
# and AWS_MAX_ATTEMPTS (else botocore's 3) is obeyed where dagster-aws defaults to 5.
OWN_DEFAULTS = {"region_name", "endpoint_url", "max_attempts"}


def test_the_aws_connection_has_dagster_aws_boto3_configuration_fields():
    """The fields of dagster-aws's `ResourceWithBoto3Configuration`, by name, type and default (declared,
    not inherited, so that a code load does not import dagster-aws), plus zfish's KMS key."""
    from dagster_aws.utils import ResourceWithBoto3Configuration

    theirs, ours = ResourceWithBoto3Configuration.model_fields, AWSConnection.model_fields
    assert set(theirs) <= set(ours) and set(ours) - set(theirs) == {"kms_key_arn"}
    assert {n: f.annotation for n, f in theirs.items()} == {n: ours[n].annotation for n in theirs}
    assert {n: f.default for n, f in theirs.items() if n not in OWN_DEFAULTS} == \
        {n: ours[n].default for n in theirs if n not in OWN_DEFAULTS}


def test_the_aws_connection_is_dagster_aws_boto3_configuration_without_credentials(monkeypatch):
    """One region, endpoint and retry setting for every client (S3's made by dagster-aws's S3Resource);
    AWS_MAX_ATTEMPTS counts every attempt, as botocore documents it; credentials in config are refused."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    connection = AWSConnection(region_name="eu-west-1", endpoint_url="http://127.0.0.1:9")
    for service in ("s3", "glue", "athena", "logs"):
        client = connection.client(service)
        assert (client.meta.region_name, client.meta.endpoint_url, client.meta.config.retries) == \
            ("eu-west-1", "http://127.0.0.1:9", {"mode": "standard", "total_max_attempts": 2}), service
    with pytest.raises(ValueError, match=r"aws_secret_access_key set in config: credentials come from boto3's chain"):
        AWSConnection(aws_secret_access_key="not-a-secret")
