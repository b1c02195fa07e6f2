"""The optional user-level JWT of a webhook endpoint, checked against the issuer's JWKS.

An endpoint may require, on top of its shared secret, a JWT naming the user on whose behalf the
engine calls. Header layout (one header per credential, so neither can shadow the other):

* ``Authorization`` carries the shared secret of the endpoint's ``credentials_path`` file
  (``Bearer`` or ``Basic``), exactly as without a JWT;
* the JWT travels in ``X-User-Token`` (``JwtRequirement.header``), bare or as
  ``Bearer <jwt>``.

An endpoint without a shared secret may set ``header="Authorization"`` and take the JWT there;
with a shared secret configured that layout is refused at start, since one header cannot hold
both. Checks, all required: the signature against the issuer's JWKS (asymmetric algorithms
only: never ``none`` or HMAC, whose key would be public), ``iss`` equals the issuer, ``aud``
contains the audience, ``exp`` is present and in the future, ``nbf`` (when present) is past, each
with ``leeway`` seconds. Every failure is the same :class:`~flowcred.errors.WebhookUnauthorized`
to the caller; the log names the failed check, never the token.

JWKS documents are fetched with httpx and cached for ``ttl`` seconds. A token whose ``kid`` is
not in the cached set triggers a refetch (the issuer rotated its keys), at most once per
``min_refetch`` seconds, so callers sending random ``kid`` values cannot make the verifier hammer
the issuer. If a refetch fails, the keys already held stay in use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from flowcred.clock import Clock, SystemClock
from flowcred.errors import WebhookUnauthorized
from flowcred.webhooks import DEFAULT_REALM, HeaderSource, header_values

__all__ = ["ALGORITHMS", "JwksFetchFailed", "JwtRequirement", "JwtVerifier", "fetch_jwks"]

log = logging.getLogger("flowcred.webhooks")

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
DEFAULT_HEADER = "X-User-Token"


@dataclass(frozen=True, slots=True)
class JwtRequirement:
    """What an endpoint's user JWT must satisfy; see the module docstring for the layout."""

    issuer: str
    audience: str
    jwks_url: str
    header: str = DEFAULT_HEADER
    leeway: int = 60
    algorithms: tuple[str, ...] = ALGORITHMS

    def __post_init__(self) -> None:
        refused = [a for a in self.algorithms if a not in ALGORITHMS]
        if refused:
            raise ValueError(f"JWT algorithms not allowed for webhooks: {', '.join(refused)}")


class JwksFetchFailed(Exception):
    """The JWKS could not be fetched or is not a key set (internal; becomes a 401)."""


def fetch_jwks(url: str, timeout: float = 5.0) -> Mapping[str, Any]:
    """GET the JWKS document at ``url`` (no redirects followed) as a JSON object."""
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise JwksFetchFailed(f"{type(exc).__name__}") from None
    if response.status_code != 200:
        raise JwksFetchFailed(f"HTTP {response.status_code}")
    try:
        document = response.json()
    except ValueError:
        raise JwksFetchFailed("the answer is not JSON") from None
    if not isinstance(document, dict):
        raise JwksFetchFailed("the answer is not a JSON object")
    return document


class JwtVerifier:
    """Checks the user JWT of requests against one :class:`JwtRequirement`; thread-safe.

    ``fetch(url) -> JSON object`` gets the JWKS (:func:`fetch_jwks` by default); ``clock``
    decides ``exp`` / ``nbf`` and the cache's age. ``fetches`` counts JWKS downloads.
    """

    def __init__(
        self,
        requirement: JwtRequirement,
        *,
        clock: Clock | None = None,
        fetch: Callable[[str], Mapping[str, Any]] = fetch_jwks,
        ttl: float = 3600.0,
        min_refetch: float = 60.0,
    ) -> None:
        self.requirement = requirement
        self._clock = clock or SystemClock()
        self._fetch = fetch
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._lock = threading.Lock()
        self._keys: tuple[KeySet, frozenset[str]] | None = None
        self._fetched_at: float | None = None
        self.fetches = 0

    # -- the key set ------------------------------------------------------------------------

    def _refetch(self) -> tuple[KeySet, frozenset[str]] | None:
        """Download the JWKS; on failure keep (and return) what is held."""
        self._fetched_at = self._clock.monotonic()
        self.fetches += 1
        try:
            keys = KeySet.import_key_set(dict(self._fetch(self.requirement.jwks_url)))  # type: ignore[arg-type]
        except JwksFetchFailed as exc:
            log.warning("JWKS at %s unavailable: %s", self.requirement.jwks_url, exc)
            return self._keys
        except Exception:
            log.warning("JWKS at %s is not a usable key set", self.requirement.jwks_url)
            return self._keys
        self._keys = (keys, frozenset(str(k.kid) for k in keys.keys if k.kid))
        return self._keys

    def _key_set(self, kid: str | None) -> KeySet | None:
        with self._lock:
            now = self._clock.monotonic()
            age = None if self._fetched_at is None else now - self._fetched_at
            held = self._keys
            if held is None or age is None or age >= self._ttl:
                if held is None and age is not None and age < self._min_refetch:
                    return None  # the last attempt failed moments ago: do not hammer
                held = self._refetch()
            elif kid is not None and kid not in held[1] and age >= self._min_refetch:
                held = self._refetch()
            return None if held is None else held[0]

    # -- the check --------------------------------------------------------------------------

    def token_in(self, headers: HeaderSource) -> str | None:
        """The JWT from the configured header (``Bearer `` prefix optional), if exactly one."""
        values = header_values(headers, self.requirement.header)
        if len(values) != 1:
            return None
        value = values[0].strip()
        scheme, _, rest = value.partition(" ")
        if rest and scheme.lower() == "bearer":
            value = rest.strip()
        return value or None

    def claims(self, headers: HeaderSource, *, challenge: str | None = None) -> dict[str, Any]:
        """The verified claims of the request's JWT; raises ``WebhookUnauthorized(challenge)``."""
        refused = WebhookUnauthorized(challenge or f'Bearer realm="{DEFAULT_REALM}"')
        token = self.token_in(headers)
        if token is None:
            log.info("webhook request refused: no user JWT in %s", self.requirement.header)
            raise refused
        failed = self._failed_check(token)
        if isinstance(failed, str):
            log.info("webhook request refused: the user JWT %s", failed)
            raise refused
        return failed

    def _failed_check(self, token: str) -> str | dict[str, Any]:
        """The claims, or the name of the first check that failed."""
        req = self.requirement
        try:
            header = jws.extract_compact(token.encode()).headers()
        except Exception:
            return "is not a compact JWS"
        alg = header.get("alg")
        if alg not in req.algorithms:
            return "is signed with an algorithm that is not allowed"
        kid = header.get("kid")
        keys = self._key_set(str(kid) if kid is not None else None)
        if keys is None:
            return "cannot be checked: the issuer's JWKS is unavailable"
        try:
            claims = dict(jwt.decode(token, keys, algorithms=[str(alg)]).claims)
        except (JoseError, ValueError):
            return "signature does not verify against the issuer's keys"
        if claims.get("iss") != req.issuer:
            return "iss is not the configured issuer"
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if req.audience not in audiences:
            return "aud does not contain the configured audience"
        now = self._clock.now().timestamp()
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float) or exp + req.leeway <= now:
            return "has expired (or has no exp)"
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, int | float) or nbf - req.leeway > now):
            return "is not valid yet (nbf)"
        return claims
