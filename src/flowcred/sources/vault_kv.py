"""Secrets from HashiCorp Vault's KV version 2 engine, through hvac.

Name: ``path#key``, the key ``key`` of the secret at ``path`` under the mount
(``FLOWCRED_VAULT_MOUNT``, default ``secret``): ``apps/sales#client_secret`` reads
``GET /v1/secret/data/apps/sales`` and takes ``data.data.client_secret``. A bare ``path`` means
its ``value`` key. Authentication: a token (``FLOWCRED_VAULT_TOKEN``) or AppRole
(``FLOWCRED_VAULT_ROLE_ID`` + ``FLOWCRED_VAULT_SECRET_ID``, logged in on first use and again
once when Vault answers 403, since AppRole tokens expire).

404 (no such secret, or a deleted version) and a missing key are not found. 403, 5xx, a
connection failure or a timeout raise :class:`~flowcred.errors.SecretSourceError`: a denied
token must never look like "not set here".
"""

from __future__ import annotations

import threading
from typing import Any

from flowcred.errors import ConfigurationError, SecretSourceError
from flowcred.redaction import Secret
from flowcred.sources.base import SecretSource

DEFAULT_KEY = "value"


class VaultKvSource(SecretSource):
    name = "vault"
    priority = 20.0

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        mount: str = "secret",
        namespace: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not token and not (role_id and secret_id):
            raise ConfigurationError(
                "the vault source needs FLOWCRED_VAULT_TOKEN or FLOWCRED_VAULT_ROLE_ID and "
                "FLOWCRED_VAULT_SECRET_ID"
            )
        self.url = url
        self.mount = mount.strip("/")
        self._token = token
        self._role_id = role_id
        self._secret_id = secret_id
        self._namespace = namespace
        self._timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        auth = "approle" if self._role_id else "token"
        return f"VaultKvSource(url={self.url!r}, mount={self.mount!r}, auth={auth!r})"

    def _connected(self, *, relogin: bool = False) -> Any:
        with self._lock:
            if self._client is not None and not relogin:
                return self._client
            try:
                import hvac
            except ImportError:
                raise ConfigurationError(
                    "the vault source needs hvac: pip install 'flowcred[sources]'"
                ) from None
            client = hvac.Client(
                url=self.url, token=self._token, namespace=self._namespace, timeout=self._timeout
            )
            if self._role_id and self._secret_id:
                self._call(
                    lambda: client.auth.approle.login(
                        role_id=self._role_id, secret_id=self._secret_id
                    ),
                    "AppRole login",
                )
            self._client = client
            return client

    def _call(self, call: Any, what: str) -> Any:
        import hvac.exceptions as vault_errors
        import requests

        try:
            return call()
        except vault_errors.InvalidPath:
            return None
        except vault_errors.Forbidden:
            raise _Denied from None
        except vault_errors.VaultError as exc:
            raise SecretSourceError(
                self.name, f"{what} failed: {type(exc).__name__} from {self.url}"
            ) from None
        except requests.RequestException as exc:
            raise SecretSourceError(
                self.name, f"{what} failed: {self.url} unreachable ({type(exc).__name__})"
            ) from None

    def get(self, secret_name: str) -> Secret | None:
        path, _, key = secret_name.rpartition("#") if "#" in secret_name else (secret_name, "", "")
        path = path.strip("/")
        key = key or DEFAULT_KEY
        if not path:
            return None
        what = f"reading {self.mount}/{path}"
        try:
            response = self._read(self._connected(), path, what)
        except _Denied:
            if not self._role_id:
                raise SecretSourceError(self.name, f"{what}: permission denied (403)") from None
            try:  # an AppRole token may have expired: log in again, once
                response = self._read(self._connected(relogin=True), path, what)
            except _Denied:
                raise SecretSourceError(self.name, f"{what}: permission denied (403)") from None
        if response is None:
            return None
        data = (response.get("data") or {}).get("data") if isinstance(response, dict) else None
        if not isinstance(data, dict):
            raise SecretSourceError(self.name, f"{what}: not a KV v2 answer")
        value = data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            import json

            value = json.dumps(value)
        return Secret(value)

    def _read(self, client: Any, path: str, what: str) -> Any:
        return self._call(
            lambda: client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.mount, raise_on_deleted_version=True
            ),
            what,
        )

    def describe(self, secret_name: str) -> str:
        path, sep, key = secret_name.rpartition("#")
        if not sep:
            path, key = secret_name, DEFAULT_KEY
        return f"vault:{self.mount}/{path.strip('/')}#{key}"

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            adapter = getattr(client, "adapter", None)
            if adapter is not None:
                adapter.close()


class _Denied(Exception):
    """Vault answered 403 (internal: turned into SecretSourceError after a re-login)."""
