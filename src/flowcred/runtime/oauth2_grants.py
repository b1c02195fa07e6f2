"""OAuth 2.0 token-endpoint calls: the grants flowcred performs, with retries and breakers.

:class:`GrantClient` is the only place flowcred talks to token endpoints. It owns one
``httpx.Client`` (timeout from the constructor, redirects never followed: a token endpoint that
redirects is misconfigured, and following would re-send credentials to another URL).

Every request goes through the endpoint's :class:`~flowcred.runtime.circuit_breaker.
CircuitBreaker` (key: origin + path, never the query) and the :class:`~flowcred.runtime.retry.
RetryPolicy`:

* connection errors, timeouts, 5xx and 429 are *transient*: retried with backoff (429 and 503
  honour ``Retry-After`` in seconds or as an HTTP date, capped at the policy's ``max_delay``),
  counted per attempt as breaker failures; on exhaustion ``TokenRefreshFailed(permanent=False,
  status_code=<last status or None>)``;
* ``invalid_grant`` is permanent and needs reauthorization; ``invalid_client`` and
  ``unauthorized_client`` are permanent client misconfiguration (``reauthorize=False``); any
  other 4xx is permanent. A permanent answer is a healthy endpoint: it closes the breaker;
* an open breaker raises ``CircuitOpen`` with no request made, and is never retried. With a
  breaker threshold below the retry attempts, a call whose retries open the breaker ends in
  ``CircuitOpen`` rather than ``TokenRefreshFailed`` (defaults: both 5, so the 5th failed
  attempt opens the breaker and the call ends in ``TokenRefreshFailed``).

Discovery documents and JWKS are fetched through the same machinery (their own breaker keys);
a non-200 or non-JSON answer there is ``TokenRefreshFailed(permanent=True)``.

Messages name the endpoint (origin + path) and the RFC 6749 error code only (a code that is not
a plain identifier is dropped); ``error_description`` and response bodies are never copied, as
providers echo input there.
"""

from __future__ import annotations

import base64
import email.utils
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import quote_plus, urlsplit

import httpx

from flowcred.catalog.oauth_spec import ClientAuthMethod, OAuthSpec, fill
from flowcred.clock import Clock
from flowcred.errors import FieldProblem, InvalidCredential, TokenRefreshFailed
from flowcred.runtime import jwt_bearer as _jwt
from flowcred.runtime.circuit_breaker import BreakerRegistry
from flowcred.runtime.id_token import JwksCache
from flowcred.runtime.id_token import validate_id_token as _validate_id_token
from flowcred.runtime.retry import RetryPolicy
from flowcred.runtime.token_set import TokenSet

T = TypeVar("T")

DISCOVERY_TTL = 3600.0
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ERROR_CODE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_REAUTHORIZE = frozenset({"invalid_grant"})
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})


@dataclass(frozen=True, repr=False)
class OAuthClient:
    """A registered OAuth client. ``repr`` shows the client id and auth method only."""

    client_id: str
    client_secret: str | None = None
    auth_method: ClientAuthMethod = "client_secret_basic"
    private_key_pem: str | None = None
    key_id: str | None = None

    def __repr__(self) -> str:
        return f"OAuthClient(client_id={self.client_id!r}, auth_method={self.auth_method!r})"


@dataclass(frozen=True)
class Endpoints:
    """Where a provider's endpoints are, resolved from the catalog, config or discovery."""

    token_url: str
    authorization_url: str | None
    issuer: str | None
    jwks_uri: str | None


def endpoint_key(url: str) -> str:
    """``url``'s origin and path: the breaker key and the name used in messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


class _Transient(Exception):
    """One failed attempt that may succeed if repeated."""

    def __init__(self, status_code: int | None, retry_after: float | None) -> None:
        super().__init__("transient")
        self.status_code = status_code
        self.retry_after = retry_after


class GrantClient:
    """Token-endpoint grants; thread-safe; one per process (it pools connections)."""

    def __init__(
        self,
        *,
        clock: Clock,
        retry: RetryPolicy,
        breakers: BreakerRegistry,
        timeout: float = 10.0,
    ) -> None:
        self._clock = clock
        self._retry = retry
        self._breakers = breakers
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)
        self._lock = threading.Lock()
        self._discovery: dict[str, tuple[float, dict[str, Any]]] = {}
        self._discovery_locks: dict[str, threading.Lock] = {}
        self._jwks = JwksCache(self._get_json, clock)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GrantClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints ---------------------------------------------------------------------------

    def endpoints(self, spec: OAuthSpec, config: Mapping[str, Any]) -> Endpoints:
        """Resolve endpoints: catalog template (filled from config), else config ``token_url`` /
        ``authorization_url``, else OpenID discovery of ``issuer`` (cached 1 h per issuer).

        Discovery runs when an issuer is known and the token URL, the authorization URL (for
        ``authorization_code``) or, for ``openid`` scopes, the JWKS URI is still missing. The
        discovered ``issuer`` must equal the configured one. Raises ``InvalidCredential``
        naming the missing fields, ``TokenRefreshFailed`` when discovery fails.
        """

        def pick(template: str | None, name: str) -> str | None:
            if template:
                return fill(template, config, what=name.replace("_", " "))
            value = config.get(name)
            return str(value) if isinstance(value, str) and value else None

        token_url = pick(spec.token_url, "token_url")
        authorization_url = pick(spec.authorization_url, "authorization_url")
        issuer = pick(spec.issuer, "issuer")
        if issuer:
            issuer = issuer.rstrip("/")
        jwks_uri = pick(None, "jwks_uri")
        wants_auth = spec.grant == "authorization_code"
        scopes = config.get("scopes")
        configured = scopes.split() if isinstance(scopes, str) else scopes or ()
        wants_jwks = "openid" in spec.scopes or "openid" in configured
        missing = (
            not token_url or (wants_auth and not authorization_url) or (wants_jwks and not jwks_uri)
        )
        if missing and issuer:
            meta = self.discover(issuer)
            token_url = token_url or _str(meta.get("token_endpoint"))
            authorization_url = authorization_url or _str(meta.get("authorization_endpoint"))
            jwks_uri = jwks_uri or _str(meta.get("jwks_uri"))
        if not token_url:
            raise InvalidCredential(
                [FieldProblem("token_url", "is required (or an issuer that publishes one)")]
            )
        if wants_auth and not authorization_url:
            raise InvalidCredential(
                [FieldProblem("authorization_url", "is required (or an issuer that publishes one)")]
            )
        return Endpoints(token_url, authorization_url, issuer, jwks_uri)

    def discover(self, issuer: str) -> dict[str, Any]:
        """``{issuer}/.well-known/openid-configuration``, cached for 1 h per issuer.

        Concurrent callers for one issuer share one fetch. Raises ``TokenRefreshFailed`` when the
        document's ``issuer`` differs from ``issuer`` (a mix-up or a spoofed document).
        """
        issuer = issuer.rstrip("/")
        with self._lock:
            lock = self._discovery_locks.setdefault(issuer, threading.Lock())
        with lock:
            with self._lock:
                cached = self._discovery.get(issuer)
            if cached is not None and self._clock.monotonic() - cached[0] < DISCOVERY_TTL:
                return cached[1]
            url = f"{issuer}/.well-known/openid-configuration"
            meta = dict(self._get_json(url))
            if _str(meta.get("issuer"), strip=True) != issuer:
                raise TokenRefreshFailed(
                    f"the discovery document at {endpoint_key(url)} names another issuer",
                    permanent=True,
                )
            with self._lock:
                self._discovery[issuer] = (self._clock.monotonic(), meta)
            return meta

    # -- grants ------------------------------------------------------------------------------

    def client_credentials(
        self,
        token_url: str,
        client: OAuthClient,
        *,
        scopes: Iterable[str] = (),
        audience: str | None = None,
        extra_params: Mapping[str, str] | None = None,
        keep: Iterable[str] = (),
        default_lifetime: float | None = None,
    ) -> TokenSet:
        """RFC 6749 §4.4."""
        form = {"grant_type": "client_credentials"}
        return self._grant(
            token_url, client, form, tuple(scopes), audience, extra_params, keep, default_lifetime
        )

    def refresh(
        self,
        token_url: str,
        client: OAuthClient,
        refresh_token: str,
        *,
        scopes: Iterable[str] = (),
        extra_params: Mapping[str, str] | None = None,
        keep: Iterable[str] = (),
        default_lifetime: float | None = None,
    ) -> TokenSet:
        """RFC 6749 §6. A response without a refresh token yields a set without one: the caller
        keeps the old one with :meth:`TokenSet.with_refresh_token`."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._grant(
            token_url, client, form, tuple(scopes), None, extra_params, keep, default_lifetime
        )

    def password(
        self,
        token_url: str,
        client: OAuthClient,
        username: str,
        password: str,
        *,
        scopes: Iterable[str] = (),
        audience: str | None = None,
        extra_params: Mapping[str, str] | None = None,
        keep: Iterable[str] = (),
        default_lifetime: float | None = None,
    ) -> TokenSet:
        """RFC 6749 §4.3 (resource owner password credentials)."""
        form = {"grant_type": "password", "username": username, "password": password}
        return self._grant(
            token_url, client, form, tuple(scopes), audience, extra_params, keep, default_lifetime
        )

    def exchange_code(
        self,
        token_url: str,
        client: OAuthClient,
        code: str,
        *,
        redirect_uri: str,
        code_verifier: str | None,
        keep: Iterable[str] = (),
        default_lifetime: float | None = None,
    ) -> TokenSet:
        """RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5) when ``code_verifier`` is given."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        return self._grant(token_url, client, form, (), None, None, keep, default_lifetime)

    def jwt_bearer(
        self,
        key_file: Mapping[str, Any],
        *,
        scopes: Iterable[str] = (),
        subject: str | None = None,
        keep: Iterable[str] = (),
        default_lifetime: float | None = None,
    ) -> TokenSet:
        """RFC 7523 §2.1 with a Google service-account key file; no client authentication."""
        requested = tuple(scopes)
        token_uri, assertion = _jwt.service_account_assertion(
            key_file, scopes=requested, subject=subject, now=self._clock.now().timestamp()
        )
        form = {"grant_type": _jwt.JWT_BEARER_GRANT, "assertion": assertion}
        return self._token(token_uri, form, {}, requested, tuple(keep), default_lifetime)

    def validate_id_token(
        self, id_token: str, *, issuer: str, jwks_uri: str, client_id: str, nonce: str | None
    ) -> dict[str, Any]:
        """Verified claims of an ID token; see :mod:`flowcred.runtime.id_token`."""
        return _validate_id_token(
            id_token,
            issuer=issuer.rstrip("/"),
            client_id=client_id,
            nonce=nonce,
            jwks=self._jwks,
            jwks_uri=jwks_uri,
            now=int(self._clock.now().timestamp()),
        )

    # -- mechanics ---------------------------------------------------------------------------

    def _grant(
        self,
        token_url: str,
        client: OAuthClient,
        form: dict[str, str],
        scopes: tuple[str, ...],
        audience: str | None,
        extra_params: Mapping[str, str] | None,
        keep: Iterable[str],
        default_lifetime: float | None,
    ) -> TokenSet:
        if scopes:
            form["scope"] = " ".join(scopes)
        if audience:
            form["audience"] = audience
        for name, value in (extra_params or {}).items():
            form.setdefault(name, value)
        headers = self._authenticate(token_url, client, form)
        return self._token(token_url, form, headers, scopes, tuple(keep), default_lifetime)

    def _authenticate(
        self, token_url: str, client: OAuthClient, form: dict[str, str]
    ) -> dict[str, str]:
        method = client.auth_method
        if method in ("client_secret_basic", "client_secret_post") and not client.client_secret:
            raise InvalidCredential([FieldProblem("client_secret", f"is required for {method}")])
        if method == "client_secret_basic":
            assert client.client_secret is not None
            pair = f"{quote_plus(client.client_id)}:{quote_plus(client.client_secret)}"
            return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        form["client_id"] = client.client_id
        if method == "client_secret_post":
            assert client.client_secret is not None
            form["client_secret"] = client.client_secret
        elif method == "private_key_jwt":
            if not client.private_key_pem:
                raise InvalidCredential(
                    [FieldProblem("private_key_pem", "is required for private_key_jwt")]
                )
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = _jwt.client_assertion(
                client.private_key_pem,
                client_id=client.client_id,
                token_url=endpoint_key(token_url),
                key_id=client.key_id,
                now=self._clock.now().timestamp(),
            )
        return {}

    def _token(
        self,
        token_url: str,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        scopes: tuple[str, ...],
        keep: tuple[str, ...],
        default_lifetime: float | None,
    ) -> TokenSet:
        name = endpoint_key(token_url)
        response = self._send(
            token_url,
            lambda: self._http.post(
                token_url, data=dict(form), headers={"Accept": "application/json", **headers}
            ),
        )
        status = response.status_code
        body = _json_object(response)
        if 200 <= status < 300:
            if body is None:
                raise TokenRefreshFailed(
                    f"the token endpoint {name} answered without a JSON object",
                    status_code=status,
                )
            try:
                return TokenSet.from_response(
                    body,
                    now=self._clock.now(),
                    requested_scopes=scopes,
                    keep=keep,
                    default_lifetime=default_lifetime,
                )
            except ValueError:
                raise TokenRefreshFailed(
                    f"the token endpoint {name} answered without an access_token",
                    status_code=status,
                ) from None
        code = body.get("error") if body else None
        oauth_error = code if isinstance(code, str) and _ERROR_CODE_RE.match(code) else None
        if 300 <= status < 400:
            what = "redirected (not followed)"
        elif oauth_error:
            what = f"refused the request: {oauth_error}"
        else:
            what = f"refused the request with HTTP {status}"
        raise TokenRefreshFailed(
            f"the token endpoint {name} {what}",
            oauth_error=oauth_error,
            permanent=True,
            reauthorize=oauth_error in _REAUTHORIZE,
            status_code=status,
        )

    def _get_json(self, url: str) -> Mapping[str, Any]:
        """GET a JSON object (discovery, JWKS) through the breaker and retry policy."""
        name = endpoint_key(url)
        response = self._send(
            url, lambda: self._http.get(url, headers={"Accept": "application/json"})
        )
        body = _json_object(response)
        if response.status_code != 200 or body is None:
            raise TokenRefreshFailed(
                f"{name} answered HTTP {response.status_code} without a JSON object",
                permanent=True,
                status_code=response.status_code,
            )
        return body

    def _send(self, url: str, call: Callable[[], httpx.Response]) -> httpx.Response:
        """One logical request: attempts through the breaker, transient failures retried."""
        name = endpoint_key(url)
        breaker = self._breakers.get(name)

        def attempt() -> httpx.Response:
            breaker.before_call()
            try:
                response = call()
            except httpx.TransportError:
                breaker.record_failure()
                raise _Transient(None, None) from None
            except BaseException:
                breaker.release()
                raise
            if response.status_code >= 500 or response.status_code == 429:
                breaker.record_failure()
                raise _Transient(response.status_code, self._retry_after(response))
            breaker.record_success()
            return response

        def classify(exc: BaseException) -> float | Literal[False] | None:
            return exc.retry_after if isinstance(exc, _Transient) else False

        try:
            return self._retry.run(attempt, retry_after=classify)
        except _Transient as exc:
            reason = (
                f"HTTP {exc.status_code}" if exc.status_code else "a connection error or timeout"
            )
            raise TokenRefreshFailed(
                f"{name} failed after {max(1, self._retry.attempts)} attempts ({reason})",
                permanent=False,
                status_code=exc.status_code,
            ) from None

    def _retry_after(self, response: httpx.Response) -> float | None:
        """``Retry-After`` in seconds (delta or HTTP date), or ``None`` when absent/unusable.
        The policy caps it at ``max_delay``."""
        value = response.headers.get("Retry-After")
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max((when - self._clock.now()).total_seconds(), 0.0)


def _str(value: object, *, strip: bool = False) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value.rstrip("/") if strip else value


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


__all__ = ["Endpoints", "GrantClient", "OAuthClient", "endpoint_key"]
