"""The seams of the authorization-code flow (``runtime/authorization.py``), and its refusal.

:class:`~flowcred.runtime.authorization.AuthorizationFlow` talks to the token endpoint and the
token store only through these protocols, so the broker wires the real GrantClient and token
manager and a test can wire a recording sink.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from flowcred.audit import Access, Actor
from flowcred.catalog.oauth_spec import OAuthSpec
from flowcred.credential_reads import CredentialReads
from flowcred.errors import AccessDenied
from flowcred.records import Credential
from flowcred.runtime.token_set import TokenSet


class ExchangeCode(Protocol):
    """``GrantClient.exchange_code``: code + verifier at ``token_url`` -> :class:`TokenSet`.

    Raises ``TokenRefreshFailed`` / ``CircuitOpen`` on failure.
    """

    def __call__(
        self,
        token_url: str,
        client: Any,
        code: str,
        *,
        redirect_uri: str,
        code_verifier: str,
        keep: tuple[str, ...] = (),
        default_lifetime: float | None = None,
    ) -> TokenSet: ...


class TokenSink(Protocol):
    """``broker.tokens.authorized``: store the token set (replacing any) and audit it."""

    def __call__(
        self, credential_id: int, tenant: str, tokens: TokenSet, *, access: Access
    ) -> None: ...


class IdTokenCheck(Protocol):
    """Validate an ID token for ``credential`` (signature via JWKS, iss, aud, exp, nonce).

    The lead wires it to ``GrantClient.endpoints(spec, config)`` + ``validate_id_token``.
    Raises ``TokenRefreshFailed`` when the token is not acceptable; returns the claims.
    """

    def __call__(
        self,
        id_token: str,
        *,
        credential: Credential,
        spec: OAuthSpec,
        client_id: str,
        nonce: str,
    ) -> Mapping[str, Any]: ...


class EndpointsLike(Protocol):
    @property
    def authorization_url(self) -> str | None: ...

    @property
    def token_url(self) -> str: ...


class Caller(Protocol):
    """Who starts an authorization: a ``BrokerView`` (API) or the ``Broker`` (CLI)."""

    @property
    def access(self) -> Access: ...

    @property
    def credentials(self) -> CredentialReads: ...


class AuthorizationRefused(AccessDenied):
    """An authorization that cannot start or complete; ``reason`` is a stable code.

    Reasons: ``invalid_state`` (unknown, replayed, expired or from another store),
    ``provider_error`` (the provider answered ``error=``; ``oauth_error`` holds its code when it
    is a plain code), ``missing_code``, ``credential_gone``, ``exchange_failed``,
    ``id_token_invalid``, ``not_configured``. The message never holds a state, code or token.
    """

    def __init__(self, reason: str, message: str, *, oauth_error: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.oauth_error = oauth_error


CALLBACK_PATH = "/api/oauth/callback"


@dataclass(frozen=True, slots=True)
class CompletedAuthorization:
    """A completed authorization: which credential, who started it, what was granted."""

    credential_id: int
    tenant: str
    actor: Actor
    scopes: tuple[str, ...]
    expires_at: datetime | None
    has_refresh_token: bool


def callback_url(public_url: str | None, host: str, port: int) -> str:
    """flowcred's own redirect URI: ``{public_url}/api/oauth/callback`` or ``http://host:port``."""
    base = (public_url or f"http://{host}:{port}").rstrip("/")
    return base + CALLBACK_PATH


def _origin_path(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _config_scopes(value: object) -> tuple[str, ...] | None:
    if isinstance(value, str):
        found = tuple(s for s in value.replace(",", " ").split() if s)
        return found or None
    if isinstance(value, (list, tuple)):
        found = tuple(str(s).strip() for s in value if str(s).strip())
        return found or None
    return None
