"""Secrets from AWS Secrets Manager, through boto3.

Name: ``name`` (the secret's ``SecretString``) or ``name#jsonkey`` (one key of a JSON
``SecretString``, the console's key/value form). ``FLOWCRED_AWS_SECRETS_REGION`` and
``FLOWCRED_AWS_SECRETS_ENDPOINT_URL`` (a VPC endpoint, LocalStack or moto) configure the client;
AWS credentials come from boto3's usual chain (environment, profile, instance role).

``ResourceNotFoundException`` and a missing JSON key are not found. Access denied, an unreachable
endpoint, missing AWS credentials, a binary secret that is not UTF-8 or a ``#key`` on a
non-JSON secret raise :class:`~flowcred.errors.SecretSourceError`. One attempt per call with
short timeouts: the chain is on a resolve path.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from flowcred.errors import ConfigurationError, SecretSourceError
from flowcred.redaction import Secret
from flowcred.sources.base import SecretSource

_NOT_FOUND = frozenset({"ResourceNotFoundException"})
# Creating a client loads the service model (about half a second); one session per process
# keeps the loaded model for every later client. Clients are created under its lock.
_SESSION_LOCK = threading.Lock()
_SESSIONS: list[Any] = []


def _new_client(boto3: Any, **kwargs: Any) -> Any:
    with _SESSION_LOCK:
        if not _SESSIONS:
            _SESSIONS.append(boto3.session.Session())
        return _SESSIONS[0].client("secretsmanager", **kwargs)


class AwsSecretsManagerSource(SecretSource):
    name = "aws"
    priority = 10.0

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout: float = 5.0,
        client: Any = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self._timeout = timeout
        self._client = client
        self._client_kwargs = dict(client_kwargs or {})
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AwsSecretsManagerSource(region={self.region!r}, endpoint={self.endpoint_url!r})"

    def _connected(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import boto3
                    from botocore.config import Config
                except ImportError:
                    raise ConfigurationError(
                        "the aws source needs boto3: pip install 'flowcred[sources]'"
                    ) from None
                self._client = _new_client(
                    boto3,
                    region_name=self.region or "us-east-1",
                    endpoint_url=self.endpoint_url,
                    config=Config(
                        connect_timeout=self._timeout,
                        read_timeout=self._timeout,
                        retries={"max_attempts": 1, "mode": "standard"},
                    ),
                    **self._client_kwargs,
                )
            return self._client

    def get(self, secret_name: str) -> Secret | None:
        from botocore.exceptions import BotoCoreError, ClientError

        secret_id, sep, key = secret_name.partition("#")
        if not secret_id:
            return None
        try:
            answer = self._connected().get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "unknown"))
            if code in _NOT_FOUND:
                return None
            raise SecretSourceError(self.name, f"reading {secret_id!r} failed: {code}") from None
        except BotoCoreError as exc:
            raise SecretSourceError(
                self.name, f"reading {secret_id!r} failed: {type(exc).__name__}"
            ) from None
        text = answer.get("SecretString")
        if text is None:
            raw = answer.get("SecretBinary")
            try:
                text = bytes(raw).decode("utf-8") if raw is not None else None
            except UnicodeDecodeError:
                raise SecretSourceError(self.name, f"{secret_id!r} is binary, not text") from None
        if not sep:
            return Secret(text) if text else None
        try:
            data = json.loads(text or "")
        except ValueError:
            raise SecretSourceError(
                self.name, f"{secret_id!r} is not a JSON object, so it has no key {key!r}"
            ) from None
        if not isinstance(data, dict):
            raise SecretSourceError(self.name, f"{secret_id!r} is not a JSON object")
        value = data.get(key)
        if value is None or value == "":
            return None
        return Secret(value if isinstance(value, str) else json.dumps(value))

    def describe(self, secret_name: str) -> str:
        return f"aws:{secret_name}"

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and hasattr(client, "close"):
            client.close()
