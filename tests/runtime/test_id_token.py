"""ID token validation against a JWKS served over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _token_endpoint import ScriptedEndpoint
from joserfc import jwt
from joserfc.jwk import RSAKey

from flowcred.clock import ManualClock
from flowcred.errors import TokenRefreshFailed
from flowcred.runtime.circuit_breaker import BreakerRegistry
from flowcred.runtime.oauth2_grants import GrantClient
from flowcred.runtime.retry import RetryPolicy

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
OTHER = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
ROTATED = RSAKey.generate_key(2048, parameters={"kid": "k2"}, private=True)
NONCE = "n-0S6_WzA2Mj"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def grants(clock: ManualClock) -> Iterator[GrantClient]:
    client = GrantClient(
        clock=clock,
        retry=RetryPolicy(jitter=False, sleep=lambda s: None),
        breakers=BreakerRegistry(clock=clock),
        timeout=2.0,
    )
    yield client
    client.close()


def serve_jwks(endpoint: ScriptedEndpoint, *keys: RSAKey) -> None:
    endpoint.route("/jwks", {"keys": [k.as_dict(private=False) for k in keys]})


def make(endpoint: ScriptedEndpoint, clock: ManualClock, key: RSAKey = KEY, **override: Any) -> str:
    now = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "iss": endpoint.base,
        "sub": "user-1",
        "aud": "cid",
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
    }
    claims.update(override)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def check(grants: GrantClient, endpoint: ScriptedEndpoint, token: str) -> dict[str, Any]:
    return grants.validate_id_token(
        token,
        issuer=endpoint.base + "/",
        jwks_uri=f"{endpoint.base}/jwks",
        client_id="cid",
        nonce=NONCE,
    )


def test_good_token_accepted_and_jwks_cached(
    endpoint: ScriptedEndpoint, grants: GrantClient, clock: ManualClock
) -> None:
    serve_jwks(endpoint, KEY)
    for _ in range(5):
        assert check(grants, endpoint, make(endpoint, clock))["sub"] == "user-1"
    assert len(endpoint.gets("/jwks")) == 1


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"iss": "https://evil.example"}, "iss"),
        ({"aud": "other"}, "aud"),
        ({"nonce": "wrong"}, "nonce"),
        ({"nonce": None}, "nonce"),
    ],
)
def test_wrong_claims_refused(
    endpoint: ScriptedEndpoint,
    grants: GrantClient,
    clock: ManualClock,
    override: dict[str, Any],
    reason: str,
) -> None:
    serve_jwks(endpoint, KEY)
    with pytest.raises(TokenRefreshFailed, match=reason) as info:
        check(grants, endpoint, make(endpoint, clock, **override))
    assert info.value.permanent
    assert "evil" not in str(info.value) and "wrong" not in str(info.value)


def test_expired_refused(
    endpoint: ScriptedEndpoint, grants: GrantClient, clock: ManualClock
) -> None:
    serve_jwks(endpoint, KEY)
    token = make(endpoint, clock)
    clock.advance(300 + 61)
    with pytest.raises(TokenRefreshFailed, match="expired"):
        check(grants, endpoint, token)


def test_bad_signature_refused(
    endpoint: ScriptedEndpoint, grants: GrantClient, clock: ManualClock
) -> None:
    serve_jwks(endpoint, KEY)
    with pytest.raises(TokenRefreshFailed, match="signature"):
        check(grants, endpoint, make(endpoint, clock, key=OTHER))


def test_unsigned_token_refused(
    endpoint: ScriptedEndpoint, grants: GrantClient, clock: ManualClock
) -> None:
    serve_jwks(endpoint, KEY)
    good = make(endpoint, clock)
    header, payload, _ = good.split(".")
    with pytest.raises(TokenRefreshFailed):
        check(grants, endpoint, f"eyJhbGciOiJub25lIn0.{payload}.")
    with pytest.raises(TokenRefreshFailed):
        check(grants, endpoint, f"{header}.{payload}.AAAA")


def test_unknown_kid_refetches_once(
    endpoint: ScriptedEndpoint, grants: GrantClient, clock: ManualClock
) -> None:
    serve_jwks(endpoint, KEY)
    check(grants, endpoint, make(endpoint, clock))
    serve_jwks(endpoint, KEY, ROTATED)
    assert check(grants, endpoint, make(endpoint, clock, key=ROTATED))["sub"] == "user-1"
    assert len(endpoint.gets("/jwks")) == 2
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k9"}, private=True)
    with pytest.raises(TokenRefreshFailed):
        check(grants, endpoint, make(endpoint, clock, key=stranger))
    assert len(endpoint.gets("/jwks")) == 3
