"""A boto3 session from the usual AWS configuration, and AWS errors as plain sentences.

Credentials and region come from where the AWS CLI and SDKs look: environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ...),
``~/.aws/config`` and ``~/.aws/credentials``, or an instance role. ``AWS_ENDPOINT_URL`` points
every client elsewhere (a local emulator in the tests). boto3 is imported only here, on use.

>>> AwsError("No AWS region").args[0]
'No AWS region'
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["AwsError", "describe_error", "session"]


class AwsError(RuntimeError):
    """Something about AWS (configuration, permissions, a resource) that the user must fix."""


def session(region: str | None = None) -> Any:
    """A ``boto3.Session`` with credentials and a region, or :class:`AwsError` saying which
    is missing and how to provide it."""
    try:
        import boto3
    except ImportError:
        raise AwsError("boto3 is not installed: pip install 'neurocloud[aws]'") from None
    from botocore.exceptions import BotoCoreError

    # botocore reads AWS_DEFAULT_REGION; the AWS CLI v2 and other SDKs also read AWS_REGION.
    region = region or os.environ.get("AWS_REGION") or None
    try:
        result = boto3.Session(region_name=region)
        credentials = result.get_credentials()
    except BotoCoreError as exc:  # e.g. an AWS_PROFILE that does not exist
        raise AwsError(f"AWS configuration error: {exc}") from None
    if credentials is None:
        raise AwsError(
            "No AWS credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose "
            "a profile with AWS_PROFILE, or run `aws configure`."
        )
    if not result.region_name:
        raise AwsError(
            "No AWS region configured. Pass --region, set AWS_REGION (or AWS_DEFAULT_REGION), "
            "or run `aws configure`."
        )
    return result


def describe_error(exc: Exception) -> str:
    """A one-line explanation of a botocore error (service code and message)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        operation = getattr(exc, "operation_name", "the request")
        return f"AWS refused {operation}: {error.get('Code', '?')}: {error.get('Message', '')}"
    return f"AWS request failed: {exc}"
