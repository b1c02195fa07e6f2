"""Amazon S3 and S3-compatible stores: ``HeadBucket`` with boto3 (``ListBuckets`` without one).

``HeadBucket`` is the cheapest signed call that proves both the key and its access to the
bucket the credential is for. Its error answers have no body, so a 403 cannot say whether the
key is wrong or merely lacks access: a 403 is followed by one ``ListBuckets``, whose error code
tells ``InvalidAccessKeyId`` / ``SignatureDoesNotMatch`` (authentication failed) from
``AccessDenied`` (the key works but may not use the bucket). ``endpoint_url`` points the test
at MinIO, Ceph or a local emulator; botocore's retries are off so a dead endpoint costs at most
the timeout.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import auth_failed, network_failure

_BAD_KEY = {
    "InvalidAccessKeyId": "the access key ID is not known",
    "SignatureDoesNotMatch": "the secret access key does not match",
    "InvalidToken": "the session token is invalid",
    "ExpiredToken": "the session token has expired",
    "InvalidClientTokenId": "the access key ID is not known",
}


def _endpoint(url: str | None, region: str) -> tuple[str, int]:
    if not url:
        return f"s3.{region}.amazonaws.com", 443
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.hostname or url, parts.port or default


@register("s3")
class S3Test(ConnectionTest):
    """``HeadBucket`` on the configured bucket, else ``ListBuckets``."""

    live_types = frozenset({"aws_s3"})

    def check(self, target: TestTarget, timeout: float) -> str:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        region = str(target.config.get("region") or "us-east-1")
        endpoint_url = str(target.config.get("endpoint_url") or "") or None
        bucket = str(target.config.get("bucket") or "") or None
        key_id = str(target.config.get("access_key_id") or "")
        host, port = _endpoint(endpoint_url, region)
        client: Any = boto3.client(
            "s3",
            region_name=region,
            endpoint_url=endpoint_url,
            aws_access_key_id=key_id,
            aws_secret_access_key=target.reveal("secret_access_key") or "",
            aws_session_token=target.reveal("session_token") or None,
            config=Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"total_max_attempts": 1},
                signature_version="s3v4",
            ),
        )
        try:
            if bucket is None:
                client.list_buckets()
                return f"access key {key_id} accepted by {host} (ListBuckets ok)"
            try:
                client.head_bucket(Bucket=bucket)
            except ClientError as exc:
                status = str(exc.response.get("Error", {}).get("Code", ""))
                if status == "404":
                    raise ConnectionTestError(f"bucket '{bucket}' does not exist") from None
                if status != "403":
                    raise
                _explain_forbidden(client, key_id, bucket)
            return f"access key {key_id} may use bucket '{bucket}' at {host} (HeadBucket ok)"
        except ClientError as exc:
            raise _client_failure(exc, key_id) from None
        except BotoCoreError as exc:
            shared = network_failure(exc, host, port, timeout)
            raise shared or ConnectionTestError(
                f"S3 request failed: {type(exc).__name__}"
            ) from None
        finally:
            client.close()


def _explain_forbidden(client: Any, key_id: str, bucket: str) -> None:
    """Raise the right message for a 403 on HeadBucket (see the module docstring)."""
    from botocore.exceptions import ClientError

    try:
        client.list_buckets()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _BAD_KEY:
            raise auth_failed(None, f"{_BAD_KEY[code]} ({code})") from None
    raise ConnectionTestError(f"access key {key_id} was refused access to bucket '{bucket}'")


def _client_failure(exc: Any, key_id: str) -> ConnectionTestError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code in _BAD_KEY:
        return auth_failed(None, f"{_BAD_KEY[code]} ({code})")
    if code in ("AccessDenied", "403"):
        return ConnectionTestError(f"access key {key_id} was refused (AccessDenied)")
    return ConnectionTestError(f"S3 answered {code or 'an error'}")
