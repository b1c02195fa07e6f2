"""Google service-account jwt-bearer grant: assertion claims, signature, key parsed once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _token_endpoint import ScriptedEndpoint
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from flowcred.clock import ManualClock
from flowcred.errors import InvalidCredential, TokenRefreshFailed
from flowcred.runtime import jwt_bearer
from flowcred.runtime.circuit_breaker import BreakerRegistry
from flowcred.runtime.oauth2_grants import GrantClient
from flowcred.runtime.retry import RetryPolicy

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = _KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
PUBLIC = RSAKey.import_key(
    _KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def grants(clock: ManualClock) -> Iterator[GrantClient]:
    jwt_bearer.cache_clear()
    client = GrantClient(
        clock=clock,
        retry=RetryPolicy(jitter=False, sleep=lambda s: None),
        breakers=BreakerRegistry(clock=clock),
        timeout=2.0,
    )
    yield client
    client.close()


def key_file(endpoint: ScriptedEndpoint, **extra: str) -> dict[str, str]:
    return {
        "type": "service_account",
        "client_email": "svc@proj.iam.gserviceaccount.com",
        "private_key_id": "kid-1",
        "private_key": PEM,
        "token_uri": endpoint.token_url,
        **extra,
    }


def test_assertion_claims_and_signature(
    endpoint: ScriptedEndpoint, grants: GrantClient, clock: ManualClock
) -> None:
    endpoint.queue(200, {"access_token": "ya29", "expires_in": 3599, "token_type": "Bearer"})
    tokens = grants.jwt_bearer(key_file(endpoint), scopes=("s1", "s2"), subject="u@x.com")
    assert tokens.access_token == "ya29"
    assert tokens.scopes == ("s1", "s2")
    (seen,) = endpoint.posts()
    assert seen.authorization is None
    assert seen.form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    token = jwt.decode(seen.form["assertion"], PUBLIC, algorithms=["RS256"])
    assert token.header["alg"] == "RS256" and token.header["kid"] == "kid-1"
    iat = int(clock.now().timestamp())
    claims = token.claims
    assert claims["iss"] == "svc@proj.iam.gserviceaccount.com"
    assert claims["scope"] == "s1 s2"
    assert claims["aud"] == endpoint.token_url
    assert claims["sub"] == "u@x.com"
    assert (claims["iat"], claims["exp"]) == (iat, iat + 3600)


def test_no_subject_claim_without_impersonation(
    endpoint: ScriptedEndpoint, grants: GrantClient
) -> None:
    endpoint.queue(200, {"access_token": "ya29"})
    grants.jwt_bearer(key_file(endpoint), scopes=("s",))
    claims = jwt.decode(endpoint.posts()[0].form["assertion"], PUBLIC).claims
    assert "sub" not in claims


def test_key_parsed_once_across_many_calls(endpoint: ScriptedEndpoint, grants: GrantClient) -> None:
    for _ in range(20):
        endpoint.queue(200, {"access_token": "ya29"})
    for _ in range(20):
        grants.jwt_bearer(key_file(endpoint), scopes=("s",))
    info = jwt_bearer.cache_info()
    assert (info.loads, info.hits, info.size) == (1, 19, 1)


def test_unusable_key_names_the_field_not_the_value(
    endpoint: ScriptedEndpoint, grants: GrantClient
) -> None:
    canary = "-----BEGIN PRIVATE KEY-----\ncanaryKEYmaterial\n-----END PRIVATE KEY-----\n"
    with pytest.raises(InvalidCredential, match="private_key") as info:
        grants.jwt_bearer(key_file(endpoint, private_key=canary))
    assert "canaryKEY" not in str(info.value)
    with pytest.raises(InvalidCredential, match="client_email"):
        grants.jwt_bearer({"private_key": PEM, "token_uri": endpoint.token_url})
    assert endpoint.posts() == []


def test_refused_assertion_is_permanent(endpoint: ScriptedEndpoint, grants: GrantClient) -> None:
    endpoint.queue(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    with pytest.raises(TokenRefreshFailed) as info:
        grants.jwt_bearer(key_file(endpoint))
    assert info.value.permanent and info.value.oauth_error == "invalid_grant"
    assert "Signature" not in str(info.value)
