"""Retries: transient failures of external calls retry with backoff; bad data fails at once."""

from __future__ import annotations

import pytest
from dagster import RetryRequested

from zfish_assets.retries import is_transient, retry_transient


def _client_error(code: str, status: int = 400) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "StartJobRun")


def test_transient_errors_retry_with_backoff_and_bad_data_does_not():
    from botocore.exceptions import EndpointConnectionError

    assert is_transient(_client_error("ThrottlingException"))
    assert is_transient(_client_error("Whatever", 503))
    assert is_transient(EndpointConnectionError(endpoint_url="https://glue.eu-west-1.amazonaws.com"))
    try:
        try:
            raise ConnectionResetError("gateway reset")
        except ConnectionResetError as cause:
            raise RuntimeError("job failed") from cause
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(_client_error("AccessDeniedException", 403))
    assert not is_transient(ValueError("schema drift on day=2025-05-11: +weight_g double"))

    with pytest.raises(RetryRequested) as retry:
        with retry_transient(2, "the Glue job"):
            raise _client_error("ThrottlingException")
    assert retry.value.seconds_to_wait == 40 and retry.value.max_retries == 3
    with pytest.raises(ValueError):
        with retry_transient(0, "crawling"):
            raise ValueError("schema drift")
