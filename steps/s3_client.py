"""S3 clients and their errors, for every step that talks to S3 (report uploads and reads its
history, the dataset step fetches a file): one client setup, one translation of botocore's
errors into one line naming the bucket, the endpoint and the fix.

Credentials come from boto3's standard chain (env, IRSA web identity, instance profile); nothing
here reads or logs a key. Every request has a connect and a read timeout: an endpoint that
accepts TCP and never answers kept a step silent for minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from steps.errors import BenchError

__all__ = [
    "BOTOCORE_MAX_ATTEMPTS",
    "CONNECT_TIMEOUT_S",
    "READ_TIMEOUT_S",
    "S3Error",
    "endpoint_name",
    "make_s3_client",
    "translate_s3_errors",
]

#: botocore attempts per call (standard mode: throttling, 5xx, connection errors).
BOTOCORE_MAX_ATTEMPTS = 3
#: Seconds to open a TCP connection, then to wait for each read of an answer (botocore Config).
#: 30 s of silence is no S3 server at work: even a large PUT is answered once its body is sent.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
_AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "ExpiredToken",
        "InvalidToken",
        "InvalidClientTokenId",
        "TokenRefreshRequired",
    }
)


class S3Error(BenchError):
    """S3 failed (exit 1); the message names the bucket/endpoint and the likely fix."""


def make_s3_client(endpoint_url: str | None) -> Any:
    """A boto3 S3 client from the standard credential chain with retries and finite timeouts.

    A fresh Session each time: boto3's module-level default session caches the credentials it
    resolved first, which would pin one identity for the life of the process.
    """
    import boto3.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    config = Config(
        retries={"mode": "standard", "max_attempts": BOTOCORE_MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )
    try:
        session = boto3.session.Session()
        return session.client("s3", endpoint_url=endpoint_url or None, config=config)
    except (BotoCoreError, ValueError) as exc:  # region, endpoint, config files
        raise S3Error(f"cannot set up the S3 client for {endpoint_url or 'AWS'}: {exc}") from None


def endpoint_name(client: Any) -> str:
    """The client's endpoint URL, for messages."""
    return str(getattr(client.meta, "endpoint_url", "the S3 endpoint"))


@contextmanager
def translate_s3_errors(
    client: Any, bucket: str, action: str, bucket_flag: str = "--bucket"
) -> Iterator[None]:
    """Turn botocore errors into one-line UploadErrors that name the bucket and the fix."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        if code == "NoSuchBucket":
            raise S3Error(
                f"{action}: bucket {bucket!r} does not exist at {endpoint_name(client)}; "
                f"create it or fix {bucket_flag}"
            ) from None
        if code in _AUTH_CODES:
            raise S3Error(
                f"{action}: S3 rejected the credentials for bucket {bucket!r} ({code}); check the "
                "AWS credentials (IRSA role, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and "
                "--s3-endpoint-url"
            ) from None
        raise S3Error(f"{action}: S3 error {code} on bucket {bucket!r}") from None
    except (NoCredentialsError, PartialCredentialsError):
        raise S3Error(
            f"{action}: no AWS credentials found (standard chain: AWS_* env, IRSA web identity, "
            "instance profile)"
        ) from None
    except EndpointConnectionError:
        raise S3Error(f"{action}: cannot connect to {endpoint_name(client)}") from None
    except BotoCoreError as exc:
        raise S3Error(
            f"{action}: {exc.__class__.__name__} talking to {endpoint_name(client)}"
        ) from None
