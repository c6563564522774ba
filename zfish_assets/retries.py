"""Retries for transient failures of external calls (S3, Glue, Athena, the Spark gateway), never for bad data.

A `RetryPolicy` on an asset would retry every exception, schema drift included. Instead, the steps
that call out wrap those calls in `retry_transient`: an error that a later attempt may not meet
(throttling, a dropped connection, a timeout, a service-side 5xx, a lost Spark gateway) becomes
`RetryRequested` with exponential backoff (10 s, 20 s, 40 s); anything else fails the step at once,
in a line naming the setting when one explains it (a closed endpoint, a missing bucket: `aws_errors`).
Single requests are retried by botocore first (`resources/aws_connection.py`: its standard retry mode).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import RetryRequested

from zfish_assets.aws_errors import reraise_explained, unreachable

MAX_RETRIES = 3
BASE_SECONDS = 10
TRANSIENT_AWS_CODES = {
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "ProvisionedThroughputExceededException", "SlowDown", "RequestTimeout",
    "RequestTimeoutException", "ServiceUnavailable", "ServiceUnavailableException", "InternalError",
    "InternalFailure", "InternalServiceException", "InternalServerException", "ConcurrentRunsExceededException",
    "ResourceNumberLimitExceededException",
}


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) is a failure a later attempt may not meet.

    A connection that cannot be made (refused, no such host) is not: it is a closed or wrong endpoint,
    which every attempt meets (`aws_errors.unreachable`); botocore's own retries covered a blip.
    """
    if unreachable(exc):
        return False
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return True
        module, name = type(exc).__module__, type(exc).__name__
        if module.startswith(("botocore", "urllib3")) and name in {
            "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
            "ConnectionError", "ProtocolError",
        }:
            return True
        if module.startswith("py4j") and name == "Py4JNetworkError":  # the Spark driver's gateway went away
            return True
        response = getattr(exc, "response", None)
        if isinstance(response, dict):  # botocore ClientError
            error = response.get("Error", {})
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if error.get("Code") in TRANSIENT_AWS_CODES or status in (500, 502, 503, 504):
                return True
        exc = exc.__cause__ or exc.__context__
    return False


def backoff_seconds(attempt: int) -> int:
    """Seconds to wait before retry number `attempt + 1` (0-based attempts so far)."""
    return BASE_SECONDS * 2 ** attempt


@contextmanager
def retry_transient(attempt: int, what: str) -> Iterator[None]:
    """Turn a transient failure of `what` into a retry with backoff; re-raise anything else."""
    try:
        yield
    except Exception as exc:
        if not is_transient(exc):
            reraise_explained(exc)
            raise
        raise RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=backoff_seconds(attempt)) from exc
