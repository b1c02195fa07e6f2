"""JWT assertions (RFC 7523): Google service-account grants and private_key_jwt client auth.

Parsing a PEM private key costs ~30 ms, signing ~0.25 ms, so parsed keys are cached by
``(key id, sha256 of the PEM)``: the PEM itself is never a dict key (no secret sits in a
long-lived structure twice), and a rotated key with the same id is a new entry. The cache is
bounded (LRU, :data:`CACHE_SIZE` keys). :func:`cache_info` exposes load/hit counts so tests
and metrics can see that a key is parsed once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc7523.assertion import (
    private_key_jwt_sign,
    sign_jwt_bearer_assertion,
)
from joserfc.jwk import ECKey, RSAKey

from flowcred.errors import FieldProblem, InvalidCredential

CACHE_SIZE = 256
ASSERTION_LIFETIME = 3600
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

PrivateKey = RSAKey | ECKey


@dataclass(frozen=True)
class CacheInfo:
    """``loads``: PEMs parsed; ``hits``: lookups served from the cache; ``size``: entries."""

    loads: int
    hits: int
    size: int


_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], PrivateKey] = OrderedDict()
_loads = 0
_hits = 0


def cache_info() -> CacheInfo:
    with _lock:
        return CacheInfo(_loads, _hits, len(_cache))


def cache_clear() -> None:
    global _loads, _hits
    with _lock:
        _cache.clear()
        _loads = 0
        _hits = 0


def load_private_key(
    pem: str, key_id: str | None = None, *, field: str = "private_key"
) -> PrivateKey:
    """The parsed RSA or EC private key for ``pem``, from the cache when seen before.

    Raises ``InvalidCredential`` naming ``field`` (never the value) when the PEM is unusable.
    """
    global _loads, _hits
    digest = hashlib.sha256(pem.encode()).hexdigest()
    cache_key = (key_id or "", digest)
    with _lock:
        found = _cache.get(cache_key)
        if found is not None:
            _cache.move_to_end(cache_key)
            _hits += 1
            return found
    key: PrivateKey
    try:
        try:
            key = RSAKey.import_key(pem)
        except Exception:
            key = ECKey.import_key(pem)
        if not key.is_private:
            raise ValueError("public key")
    except Exception:
        raise InvalidCredential(
            [FieldProblem(field, "is not a usable PEM RSA or EC private key")]
        ) from None
    with _lock:
        _loads += 1
        _cache[cache_key] = key
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return key


def _alg(key: PrivateKey) -> str:
    return "RS256" if isinstance(key, RSAKey) else "ES256"


def service_account_assertion(
    key_file: Mapping[str, Any],
    *,
    scopes: tuple[str, ...] = (),
    subject: str | None = None,
    now: float,
) -> tuple[str, str]:
    """``(token_uri, assertion)`` for a Google service-account key file (RFC 7523 §2.1).

    Claims: ``iss`` = ``client_email``, ``scope`` (space-joined, when given), ``aud`` =
    ``token_uri``, ``iat`` = ``now``, ``exp`` = ``iat + 3600``, ``sub`` when impersonating.
    The header carries ``kid`` = ``private_key_id``.
    """
    problems = [
        FieldProblem(name, "is required in the service-account key file")
        for name in ("client_email", "private_key", "token_uri")
        if not isinstance(key_file.get(name), str) or not key_file.get(name)
    ]
    if problems:
        raise InvalidCredential(problems)
    key_id = key_file.get("private_key_id")
    key = load_private_key(str(key_file["private_key"]), str(key_id) if key_id else None)
    header: dict[str, Any] = {"alg": _alg(key)}
    if key_id:
        header["kid"] = str(key_id)
    claims: dict[str, Any] = {}
    if scopes:
        claims["scope"] = " ".join(scopes)
    iat = int(now)
    assertion = sign_jwt_bearer_assertion(
        key,
        issuer=str(key_file["client_email"]),
        audience=str(key_file["token_uri"]),
        subject=subject,
        issued_at=iat,
        expires_at=iat + ASSERTION_LIFETIME,
        claims=claims,
        header=header,
    )
    return str(key_file["token_uri"]), str(assertion)


def client_assertion(
    pem: str, *, client_id: str, token_url: str, key_id: str | None, now: float
) -> str:
    """A private_key_jwt client assertion (OIDC Core §9 / RFC 7523 §2.2): iss = sub =
    client_id, aud = the token endpoint, a fresh ``jti``, valid for 5 minutes."""
    key = load_private_key(pem, key_id, field="private_key_pem")
    header: dict[str, Any] = {"alg": _alg(key)}
    if key_id:
        header["kid"] = key_id
    iat = int(now)
    return str(
        private_key_jwt_sign(
            key,
            client_id,
            token_url,
            alg=_alg(key),
            header=header,
            issued_at=iat,
            expires_at=iat + 300,
        )
    )
