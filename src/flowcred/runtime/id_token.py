"""OpenID Connect ID token validation (OIDC Core §3.1.3.7) against the issuer's JWKS.

Checks: the signature (asymmetric algorithms only, never ``none`` or HMAC), ``iss`` equals the
configured issuer, ``aud`` contains the client id (and ``azp``, when present with several
audiences, equals it), ``exp`` is in the future and ``iat`` present (60 s leeway), ``nonce``
equals the one sent. Every failure is ``TokenRefreshFailed(permanent=True)`` whose message
names the failed check, never a claim value or the token.

JWKS documents are cached per ``jwks_uri`` for ``ttl`` seconds; a token whose ``kid`` is not in
the cached set triggers exactly one refetch (keys rotate), after which it is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from flowcred.clock import Clock
from flowcred.errors import TokenRefreshFailed

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LEEWAY = 60


class JwksCache:
    """JWKS per URI, fetched with ``fetch(uri) -> JSON object``; thread-safe."""

    def __init__(
        self, fetch: Callable[[str], Mapping[str, Any]], clock: Clock, ttl: float = 3600.0
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, KeySet, frozenset[str]]] = {}
        self.fetches = 0

    def _load(self, uri: str) -> tuple[KeySet, frozenset[str]]:
        document = self._fetch(uri)
        self.fetches += 1
        try:
            keys = KeySet.import_key_set(dict(document))  # type: ignore[arg-type]
        except Exception:
            raise TokenRefreshFailed(f"the JWKS at {uri} is not a usable key set") from None
        kids = frozenset(str(k.kid) for k in keys.keys if k.kid)
        with self._lock:
            self._sets[uri] = (self._clock.monotonic(), keys, kids)
        return keys, kids

    def keys_for(self, uri: str, kid: str | None) -> KeySet:
        """The key set for ``uri``, refetched once if ``kid`` is unknown or the entry is stale."""
        with self._lock:
            entry = self._sets.get(uri)
        if entry is None or self._clock.monotonic() - entry[0] >= self._ttl:
            keys, kids = self._load(uri)
        else:
            _, keys, kids = entry
        if kid is not None and kid not in kids and entry is not None:
            keys, kids = self._load(uri)
        return keys


def _fail(check: str) -> TokenRefreshFailed:
    return TokenRefreshFailed(f"the ID token was refused: {check}", permanent=True)


def validate_id_token(
    id_token: str,
    *,
    issuer: str,
    client_id: str,
    nonce: str | None,
    jwks: JwksCache,
    jwks_uri: str,
    now: int,
) -> dict[str, Any]:
    """The verified claims of ``id_token``; see the module docstring for the checks."""
    try:
        header = jws.extract_compact(id_token.encode()).headers()
    except Exception:
        raise _fail("it is not a compact JWS") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise _fail("its signing algorithm is not allowed")
    kid = header.get("kid")
    keys = jwks.keys_for(jwks_uri, str(kid) if kid is not None else None)
    try:
        token = jwt.decode(id_token, keys, algorithms=[str(alg)])
    except JoseError:
        raise _fail("the signature does not verify against the issuer's keys") from None
    claims = dict(token.claims)
    if claims.get("iss") != issuer:
        raise _fail("iss is not the configured issuer")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
    if client_id not in audiences:
        raise _fail("aud does not contain the client id")
    if len(audiences) > 1 and claims.get("azp") not in (None, client_id):
        raise _fail("azp is not the client id")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + LEEWAY <= now:
        raise _fail("it has expired")
    if not isinstance(claims.get("iat"), int | float):
        raise _fail("iat is missing")
    if nonce is not None and claims.get("nonce") != nonce:
        raise _fail("nonce does not match the one sent")
    return claims
