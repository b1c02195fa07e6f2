"""GrantClient against a scripted loopback token endpoint: form parameters, client auth,
error classification, retries, breaker, discovery, and no secret in any message."""

from __future__ import annotations

import base64
import threading
from email.utils import format_datetime
from urllib.parse import unquote_plus

import pytest
from _token_endpoint import ScriptedEndpoint
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from flowcred.catalog.oauth_spec import OAuthSpec
from flowcred.clock import ManualClock
from flowcred.errors import CircuitOpen, InvalidCredential, TokenRefreshFailed
from flowcred.runtime.circuit_breaker import BreakerRegistry
from flowcred.runtime.oauth2_grants import GrantClient, OAuthClient
from flowcred.runtime.retry import RetryPolicy

SECRET = "canary-secret-Zq8!"
REFRESH = "canary-refresh-7Hk"
CODE = "canary-code-Pp3"
VERIFIER = "canary-verifier-Ww9"
OK = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, "scope": "a b"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def opened() -> list[str]:
    return []


@pytest.fixture
def grants(clock: ManualClock, slept: list[float], opened: list[str]):
    client = GrantClient(
        clock=clock,
        retry=RetryPolicy(jitter=False, sleep=slept.append),
        breakers=BreakerRegistry(clock=clock, on_open=opened.append),
        timeout=0.5,
    )
    yield client
    client.close()


def basic() -> OAuthClient:
    return OAuthClient("my client", SECRET)


def assert_no_canary(exc: BaseException) -> None:
    text = str(exc) + repr(exc)
    for canary in (SECRET, REFRESH, CODE, VERIFIER, "echoed"):
        assert canary not in text


def test_client_credentials_form_and_basic_auth(
    endpoint: ScriptedEndpoint, grants: GrantClient
) -> None:
    endpoint.queue(200, OK)
    tokens = grants.client_credentials(
        endpoint.token_url,
        OAuthClient("my client", "s:e&c/ret"),
        scopes=("a", "b"),
        audience="https://api",
        extra_params={"resource": "r1"},
    )
    assert tokens.access_token == "at-1"
    assert tokens.scopes == ("a", "b")
    (seen,) = endpoint.posts()
    assert seen.form == {
        "grant_type": "client_credentials",
        "scope": "a b",
        "audience": "https://api",
        "resource": "r1",
    }
    assert seen.authorization is not None and seen.authorization.startswith("Basic ")
    user, _, password = base64.b64decode(seen.authorization[6:]).decode().partition(":")
    assert "%" in password  # form-urlencoded per RFC 6749 §2.3.1
    assert (unquote_plus(user), unquote_plus(password)) == ("my client", "s:e&c/ret")


def test_client_secret_post_puts_credentials_in_the_form(
    endpoint: ScriptedEndpoint, grants: GrantClient
) -> None:
    endpoint.queue(200, OK)
    grants.client_credentials(
        endpoint.token_url, OAuthClient("cid", SECRET, auth_method="client_secret_post")
    )
    (seen,) = endpoint.posts()
    assert seen.authorization is None
    assert seen.form["client_id"] == "cid" and seen.form["client_secret"] == SECRET


def test_private_key_jwt_assertion_verifies_with_the_public_key(
    endpoint: ScriptedEndpoint, grants: GrantClient, clock: ManualClock
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = RSAKey.import_key(
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    endpoint.queue(200, OK)
    client = OAuthClient("cid", auth_method="private_key_jwt", private_key_pem=pem, key_id="k1")
    grants.client_credentials(endpoint.token_url + "?x=1", client)
    (seen,) = endpoint.posts()
    assert seen.authorization is None
    assert seen.form["client_id"] == "cid"
    assert seen.form["client_assertion_type"] == (
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    token = jwt.decode(seen.form["client_assertion"], public, algorithms=["RS256"])
    assert token.header["kid"] == "k1"
    claims = token.claims
    assert claims["iss"] == claims["sub"] == "cid"
    assert claims["aud"] == endpoint.token_url
    assert claims["jti"]
    assert claims["exp"] > claims["iat"] == int(clock.now().timestamp())


def test_refresh_form(endpoint: ScriptedEndpoint, grants: GrantClient) -> None:
    endpoint.queue(200, {"access_token": "at-2"})
    tokens = grants.refresh(endpoint.token_url, basic(), REFRESH, scopes=("x",))
    assert tokens.refresh_token is None
    assert tokens.with_refresh_token(REFRESH).refresh_token == REFRESH
    assert endpoint.posts()[0].form == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH,
        "scope": "x",
    }


def test_password_form(endpoint: ScriptedEndpoint, grants: GrantClient) -> None:
    endpoint.queue(200, OK)
    grants.password(endpoint.token_url, basic(), "alice", "pw", scopes=("s",))
    assert endpoint.posts()[0].form == {
        "grant_type": "password",
        "username": "alice",
        "password": "pw",
        "scope": "s",
    }


def test_exchange_code_form_and_public_client(
    endpoint: ScriptedEndpoint, grants: GrantClient
) -> None:
    endpoint.queue(200, {**OK, "refresh_token": "rt", "id_token": "idt"})
    tokens = grants.exchange_code(
        endpoint.token_url,
        OAuthClient("pub", auth_method="none"),
        CODE,
        redirect_uri="http://127.0.0.1/cb",
        code_verifier=VERIFIER,
        keep=("token_type",),
    )
    assert tokens.refresh_token == "rt" and tokens.id_token == "idt"
    (seen,) = endpoint.posts()
    assert seen.authorization is None
    assert seen.form == {
        "grant_type": "authorization_code",
        "code": CODE,
        "redirect_uri": "http://127.0.0.1/cb",
        "code_verifier": VERIFIER,
        "client_id": "pub",
    }


def test_missing_client_secret_is_a_configuration_problem(grants: GrantClient) -> None:
    with pytest.raises(InvalidCredential, match="client_secret"):
        grants.client_credentials("http://127.0.0.1:9/token", OAuthClient("cid"))


@pytest.mark.parametrize(
    ("error", "reauthorize"),
    [("invalid_grant", True), ("invalid_client", False), ("unauthorized_client", False)],
)
def test_permanent_errors_are_not_retried(
    endpoint: ScriptedEndpoint, grants: GrantClient, error: str, reauthorize: bool
) -> None:
    endpoint.queue(400, {"error": error, "error_description": f"echoed {SECRET}"})
    with pytest.raises(TokenRefreshFailed) as info:
        grants.refresh(endpoint.token_url, basic(), REFRESH)
    exc = info.value
    assert (exc.oauth_error, exc.permanent, exc.reauthorize, exc.status_code) == (
        error,
        True,
        reauthorize,
        400,
    )
    assert len(endpoint.posts()) == 1
    assert endpoint.token_url in str(exc)
    assert_no_canary(exc)


def test_other_4xx_is_permanent_and_a_garbage_error_code_is_dropped(
    endpoint: ScriptedEndpoint, grants: GrantClient
) -> None:
    endpoint.queue(403, {"error": f"<b>{SECRET}</b>"})
    with pytest.raises(TokenRefreshFailed) as info:
        grants.refresh(endpoint.token_url, basic(), REFRESH)
    assert info.value.permanent and info.value.oauth_error is None
    assert not info.value.reauthorize
    assert_no_canary(info.value)


def test_5xx_retried_until_exhausted(
    endpoint: ScriptedEndpoint, grants: GrantClient, slept: list[float]
) -> None:
    for _ in range(5):
        endpoint.queue(503, {"error": "temporarily_unavailable", "echo": SECRET})
    with pytest.raises(TokenRefreshFailed) as info:
        grants.refresh(endpoint.token_url, basic(), REFRESH)
    assert not info.value.permanent
    assert info.value.status_code == 503
    assert len(endpoint.posts()) == 5
    assert slept == [1.0, 2.0, 4.0, 8.0]
    assert_no_canary(info.value)


def test_5xx_then_success(endpoint: ScriptedEndpoint, grants: GrantClient) -> None:
    endpoint.queue(502)
    endpoint.queue(500)
    endpoint.queue(200, OK)
    assert grants.client_credentials(endpoint.token_url, basic()).access_token == "at-1"
    assert len(endpoint.posts()) == 3


def test_429_honours_retry_after_seconds_and_date(
    endpoint: ScriptedEndpoint, grants: GrantClient, slept: list[float], clock: ManualClock
) -> None:
    endpoint.queue(429, headers={"Retry-After": "3"})
    endpoint.queue(429, headers={"Retry-After": format_datetime(clock.now(), usegmt=True)})
    endpoint.queue(429, headers={"Retry-After": "86400"})
    endpoint.queue(200, OK)
    grants.client_credentials(endpoint.token_url, basic())
    assert slept == [3.0, 0.0, 8.0]  # the last capped at max_delay
    assert len(endpoint.posts()) == 4


def test_timeout_is_transient(
    endpoint: ScriptedEndpoint, grants: GrantClient, slept: list[float]
) -> None:
    endpoint.queue(200, OK, delay=1.0)
    endpoint.queue(200, OK)
    assert grants.client_credentials(endpoint.token_url, basic()).access_token == "at-1"
    assert len(slept) == 1


def test_connection_refused_exhausts_as_transient(grants: GrantClient) -> None:
    with pytest.raises(TokenRefreshFailed) as info:
        grants.refresh("http://127.0.0.1:9/token", basic(), REFRESH)
    assert not info.value.permanent and info.value.status_code is None
    assert_no_canary(info.value)


def test_breaker_opens_per_attempt_and_then_makes_no_request(
    endpoint: ScriptedEndpoint, grants: GrantClient, clock: ManualClock, opened: list[str]
) -> None:
    for _ in range(5):
        endpoint.queue(500)
    with pytest.raises(TokenRefreshFailed):
        grants.client_credentials(endpoint.token_url + "?q=1", basic())
    assert opened == [endpoint.token_url]
    with pytest.raises(CircuitOpen) as info:
        grants.client_credentials(endpoint.token_url, basic())
    assert info.value.endpoint == endpoint.token_url
    assert len(endpoint.posts()) == 5
    clock.advance(30)
    endpoint.queue(200, OK)
    assert grants.client_credentials(endpoint.token_url, basic()).access_token == "at-1"
    assert len(endpoint.posts()) == 6


def test_permanent_4xx_does_not_count_as_a_breaker_failure(
    endpoint: ScriptedEndpoint, grants: GrantClient, opened: list[str]
) -> None:
    for _ in range(6):
        endpoint.queue(400, {"error": "invalid_grant"})
        with pytest.raises(TokenRefreshFailed):
            grants.refresh(endpoint.token_url, basic(), REFRESH)
    assert opened == []


def discovery(endpoint: ScriptedEndpoint, issuer: str | None = None) -> None:
    endpoint.route(
        "/.well-known/openid-configuration",
        {
            "issuer": issuer or endpoint.base,
            "token_endpoint": endpoint.token_url,
            "authorization_endpoint": f"{endpoint.base}/authorize",
            "jwks_uri": f"{endpoint.base}/jwks",
        },
    )


def test_discovery_cached_for_an_hour(
    endpoint: ScriptedEndpoint, grants: GrantClient, clock: ManualClock
) -> None:
    discovery(endpoint)
    spec = OAuthSpec(grant="authorization_code", scopes=("openid",))
    for _ in range(10):
        found = grants.endpoints(spec, {"issuer": endpoint.base + "/"})
    assert found.token_url == endpoint.token_url
    assert found.authorization_url == f"{endpoint.base}/authorize"
    assert found.jwks_uri == f"{endpoint.base}/jwks"
    assert found.issuer == endpoint.base
    assert len(endpoint.gets("/.well-known/openid-configuration")) == 1
    clock.advance(3599)
    grants.endpoints(spec, {"issuer": endpoint.base})
    assert len(endpoint.gets("/.well-known/openid-configuration")) == 1
    clock.advance(1)
    grants.endpoints(spec, {"issuer": endpoint.base})
    assert len(endpoint.gets("/.well-known/openid-configuration")) == 2


def test_discovery_refuses_another_issuer(endpoint: ScriptedEndpoint, grants: GrantClient) -> None:
    discovery(endpoint, issuer="https://evil.example")
    with pytest.raises(TokenRefreshFailed, match="another issuer"):
        grants.endpoints(OAuthSpec(grant="client_credentials"), {"issuer": endpoint.base})


def test_templates_and_config_urls_need_no_discovery(
    endpoint: ScriptedEndpoint, grants: GrantClient
) -> None:
    spec = OAuthSpec(
        grant="authorization_code",
        token_url="https://{shop}.example.com/oauth/token",
        authorization_url="https://{shop}.example.com/oauth/authorize",
    )
    found = grants.endpoints(spec, {"shop": "acme"})
    assert found.token_url == "https://acme.example.com/oauth/token"
    found = grants.endpoints(
        OAuthSpec(grant="client_credentials"), {"token_url": endpoint.token_url}
    )
    assert found.token_url == endpoint.token_url and found.authorization_url is None
    assert endpoint.requests == []
    with pytest.raises(InvalidCredential, match="token_url"):
        grants.endpoints(OAuthSpec(grant="client_credentials"), {})


def test_client_repr_hides_the_secret() -> None:
    assert SECRET not in repr(basic())


def test_concurrent_discovery_makes_one_request(
    endpoint: ScriptedEndpoint, grants: GrantClient
) -> None:
    discovery(endpoint)
    spec = OAuthSpec(grant="client_credentials")
    results: list[str] = []

    def work() -> None:
        results.append(grants.endpoints(spec, {"issuer": endpoint.base}).token_url)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert results == [endpoint.token_url] * 8
    assert len(endpoint.gets("/.well-known/openid-configuration")) == 1


def test_password_grant_error_carries_no_credentials(
    endpoint: ScriptedEndpoint, grants: GrantClient
) -> None:
    endpoint.queue(401, {"error": "invalid_client", "error_description": f"echoed {SECRET}"})
    with pytest.raises(TokenRefreshFailed) as info:
        grants.password(endpoint.token_url + "?token=" + SECRET, basic(), "alice", VERIFIER)
    assert info.value.oauth_error == "invalid_client" and not info.value.reauthorize
    assert_no_canary(info.value)
