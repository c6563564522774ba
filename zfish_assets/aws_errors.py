"""AWS failures that a setting causes, said in a line naming the setting and the fix.

A closed or wrong endpoint, a bucket that does not exist: every later attempt meets the same
failure, so they are not retried (`retries.is_transient`) and the command or step says what to
change instead of a traceback of botocore frames. `explain` returns None for anything else.
"""

from __future__ import annotations

from zfish_assets import settings

_UNREACHABLE = {"ConnectionRefusedError", "gaierror"}  # nothing listens there; no such host


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` comes of a connection refused or a host name that does not resolve: a closed or wrong
    endpoint, not a blip (a timeout may be one, and stays transient)."""
    return any(type(e).__name__ in _UNREACHABLE for e in _chain(exc))


def explain(exc: BaseException) -> str | None:
    """One or two lines naming the setting behind `exc` and the fix; None when no setting explains it."""
    if any(type(e).__name__ == "NoRegionError" for e in _chain(exc)):  # neither the setting nor boto3's chain
        return (f"no AWS region: set {settings.AWS_REGION.name} (e.g. us-east-1), or a region in boto3's own "
                "configuration (AWS_DEFAULT_REGION, the profile's region).")
    if any(type(e).__name__ in ("NoCredentialsError", "PartialCredentialsError") for e in _chain(exc)):
        return ("no AWS credentials: boto3 found none (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                "or an instance or container role). Set them for the principal this command runs as.")
    if unreachable(exc):
        endpoint = settings.AWS_ENDPOINT_URL.raw()
        where = next((str(e) for e in _chain(exc) if type(e).__name__ == "EndpointConnectionError"), str(exc))
        if endpoint:
            return (f"{where}: nothing answers at {settings.AWS_ENDPOINT_URL.name}={endpoint}. "
                    f"Start the service there, or fix or unset {settings.AWS_ENDPOINT_URL.name}.")
        region = settings.AWS_REGION.raw() or "boto3's default"
        return (f"{where}: AWS's endpoint for region {region} ({settings.AWS_REGION.name}) cannot be reached. "
                "Check the region and this machine's network.")
    for e in _chain(exc):
        error = getattr(e, "response", None)
        code = error.get("Error", {}).get("Code", "") if isinstance(error, dict) else ""
        endpoint = settings.AWS_ENDPOINT_URL.raw()
        if code.isdigit() and endpoint and not getattr(e, "operation_name", "").startswith("Head"):
            # botocore names the error by the HTTP status when the answer holds no AWS error code: not an AWS API
            return (f"{endpoint} answered {getattr(e, 'operation_name', 'a request')} with HTTP {code} and no AWS "
                    f"error: {settings.AWS_ENDPOINT_URL.name} names something that is not an AWS (or moto) endpoint.")
        if code == "NoSuchBucket":
            bucket = error["Error"].get("BucketName") or settings.S3_BUCKET.raw()
            return (f"bucket {bucket!r} does not exist ({settings.S3_BUCKET.name}={settings.S3_BUCKET.raw()}, "
                    f"region {settings.AWS_REGION.raw() or 'default'}): create it, or fix {settings.S3_BUCKET.name}.")
    return None


_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}


def denied(exc: BaseException, policy: str) -> str | None:
    """When AWS refused `exc`'s call to this identity: a line naming the call and the policy file (of
    `zfish deploy --policy-out`) its principal needs; None otherwise. Not a setting's fault, so not `explain`'s."""
    for e in _chain(exc):
        error = getattr(e, "response", None)
        if isinstance(error, dict) and error.get("Error", {}).get("Code", "") in _DENIED:
            said = error["Error"].get("Message") or error["Error"]["Code"]
            return (f"AWS denied {getattr(e, 'operation_name', 'a call')} to this identity ({said}): attach {policy}, "
                    "which `zfish deploy --dry-run --policy-out DIR` writes, to it (aws.md, the three principals).")
    return None


class AWSSettingError(RuntimeError):
    """An AWS call failed because of a setting; the message names it and the fix."""


def reraise_explained(exc: BaseException) -> None:
    """Raise `AWSSettingError` (the explanation, not chained: the message is the whole story) when a setting
    explains `exc`; otherwise return so the caller re-raises `exc` itself."""
    message = explain(exc)
    if message is not None:
        raise AWSSettingError(message) from None
