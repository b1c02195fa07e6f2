"""The user-level JWT of a webhook, checked against a JWKS served from loopback; both the
shared secret (in Authorization) and the JWT (in X-User-Token) must pass."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.webhooks.conftest import BEARER, BEARER_ONLY, assert_no_canary

from flowcred.clock import ManualClock
from flowcred.webhook_asgi import WebhookAuth, WebhookAuthMiddleware, WebhookEndpoint
from flowcred.webhook_jwt import JwtRequirement, JwtVerifier

Serve = Callable[[Any], str]
ISSUER = "https://issuer.test"
AUDIENCE = "flowgen-webhooks"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
IMPOSTOR = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)  # same kid
ROTATED = RSAKey.generate_key(2048, parameters={"kid": "k2"}, private=True)


class Jwks:
    """A loopback JWKS endpoint; ``keys`` is what it serves, ``hits`` how often it was asked."""

    def __init__(self) -> None:
        self.keys: list[RSAKey] = [KEY]
        self.hits = 0
        self.down = False

    async def endpoint(self, request: Request) -> JSONResponse:
        self.hits += 1
        if self.down:
            return JSONResponse({"error": "down"}, status_code=503)
        return JSONResponse({"keys": [k.as_dict(private=False) for k in self.keys]})


@pytest.fixture
def jwks(serve: Serve) -> tuple[Jwks, str]:
    server = Jwks()
    url = serve(Starlette(routes=[Route("/jwks", server.endpoint)]))
    return server, f"{url}/jwks"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


def token(clock: ManualClock, key: Any = KEY, alg: str = "RS256", **claims: Any) -> str:
    now = int(clock.now().timestamp())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now, "exp": now + 300}
    body.update(claims)
    header = {"alg": alg, **({"kid": key.kid} if key.kid else {})}
    return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, key)


@pytest.fixture
def app_url(serve: Serve, jwks: tuple[Jwks, str], clock: ManualClock) -> str:
    requirement = JwtRequirement(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks[1])
    app = FastAPI()
    hook = WebhookAuth(BEARER_ONLY, jwt=requirement, clock=clock)

    @app.post("/hook")
    async def hook_route(claims: dict[str, Any] | None = Depends(hook)) -> dict[str, Any]:
        return {"sub": (claims or {}).get("sub")}

    return serve(app)


def call(url: str, user_jwt: str | None, shared: str | None = BEARER) -> httpx.Response:
    headers = {}
    if shared is not None:
        headers["Authorization"] = f"Bearer {shared}"
    if user_jwt is not None:
        headers["X-User-Token"] = user_jwt
    return httpx.post(f"{url}/hook", headers=headers, timeout=5)


def test_valid_jwt_and_shared_secret_pass_and_the_claims_reach_the_route(
    app_url: str, clock: ManualClock, jwks: tuple[Jwks, str]
) -> None:
    assert call(app_url, token(clock)).json() == {"sub": "user-42"}
    assert call(app_url, "Bearer " + token(clock)).status_code == 200  # prefix optional
    assert call(app_url, token(clock, aud=["other", AUDIENCE])).status_code == 200
    assert jwks[0].hits == 1  # the JWKS is cached


def test_every_bad_jwt_gets_the_same_401(app_url: str, clock: ManualClock) -> None:
    now = int(clock.now().timestamp())
    bad = {
        "wrong audience": token(clock, aud="someone-else"),
        "wrong issuer": token(clock, iss="https://evil.test"),
        "expired": token(clock, exp=now - 3600),
        "no exp": token(clock, exp=None),
        "not yet valid": token(clock, nbf=now + 3600),
        "bad signature": token(clock, key=IMPOSTOR),
        "hmac": token(clock, key=OctKey.generate_key(256), alg="HS256"),
        "garbage": "not.a.jwt",
        "missing": None,
    }
    answers = {why: call(app_url, value) for why, value in bad.items()}
    assert {why: r.status_code for why, r in answers.items()} == dict.fromkeys(bad, 401)
    assert {r.content for r in answers.values()} == {b'{"detail":"unauthorized"}'}
    assert {r.headers["www-authenticate"] for r in answers.values()} == {'Bearer realm="flowcred"'}


def test_a_valid_jwt_does_not_excuse_a_wrong_shared_secret(
    app_url: str, clock: ManualClock, jwks: tuple[Jwks, str]
) -> None:
    assert call(app_url, token(clock), shared="wrong").status_code == 401
    assert call(app_url, token(clock), shared=None).status_code == 401
    assert jwks[0].hits == 0  # refused before any JWKS fetch


def test_a_token_expires_by_the_verifier_clock(app_url: str, clock: ManualClock) -> None:
    user_jwt = token(clock)
    assert call(app_url, user_jwt).status_code == 200
    clock.advance(300 + 61)  # past exp plus the 60 s leeway
    assert call(app_url, user_jwt).status_code == 401


def test_rotated_keys_are_refetched_at_most_once_per_interval(
    jwks: tuple[Jwks, str], clock: ManualClock
) -> None:
    server, url = jwks
    verifier = JwtVerifier(JwtRequirement(ISSUER, AUDIENCE, url), clock=clock, min_refetch=60)
    shared = {"X-User-Token": token(clock)}
    assert verifier.claims(shared)["sub"] == "user-42"
    server.keys = [ROTATED]
    rotated = {"X-User-Token": token(clock, key=ROTATED)}
    with pytest.raises(Exception, match="unauthorized"):
        verifier.claims(rotated)  # unknown kid, but the set was fetched moments ago
    clock.advance(61)
    assert verifier.claims(rotated)["sub"] == "user-42"
    for _ in range(5):  # random kids cannot make it hammer the issuer
        with pytest.raises(Exception, match="unauthorized"):
            verifier.claims({"X-User-Token": token(clock, key=IMPOSTOR)})
    assert server.hits == 2


def test_an_unavailable_jwks_refuses(jwks: tuple[Jwks, str], clock: ManualClock) -> None:
    server, url = jwks
    server.down = True
    verifier = JwtVerifier(JwtRequirement(ISSUER, AUDIENCE, url), clock=clock)
    with pytest.raises(Exception, match="unauthorized"):
        verifier.claims({"X-User-Token": token(clock)})


def test_jwt_in_authorization_only_without_a_shared_secret(
    serve: Serve, jwks: tuple[Jwks, str], clock: ManualClock
) -> None:
    in_authorization = JwtRequirement(ISSUER, AUDIENCE, jwks[1], header="Authorization")
    with pytest.raises(ValueError, match="X-User-Token"):
        WebhookAuth(BEARER_ONLY, jwt=in_authorization)

    async def route(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.state.webhook_claims["sub"]})

    app = WebhookAuthMiddleware(
        Starlette(routes=[Route("/hook", route, methods=["POST"])]),
        endpoints={"/hook": WebhookEndpoint(None, jwt=in_authorization)},
        clock=clock,
    )
    url = serve(app)
    ok = httpx.post(f"{url}/hook", headers={"Authorization": f"Bearer {token(clock)}"})
    assert ok.json() == {"sub": "user-42"}
    assert httpx.post(f"{url}/hook").status_code == 401


def test_middleware_requires_both_and_logs_no_secret(
    serve: Serve, jwks: tuple[Jwks, str], clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    requirement = JwtRequirement(ISSUER, AUDIENCE, jwks[1])

    async def route(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.state.webhook_claims["sub"]})

    app = WebhookAuthMiddleware(
        Starlette(routes=[Route("/hook", route, methods=["POST"])]),
        endpoints={"/hook": WebhookEndpoint(BEARER_ONLY, jwt=requirement)},
        clock=clock,
    )
    url = serve(app)
    good = token(clock)
    assert call(url, good).json() == {"sub": "user-42"}
    answers = [call(url, good, shared="wrong"), call(url, None), call(url, token(clock, aud="x"))]
    assert {r.status_code for r in answers} == {401}
    assert {r.content for r in answers} == {b'{"detail":"unauthorized"}'}
    assert "user JWT aud" in caplog.text
    assert_no_canary(caplog.text, *(r.text + str(r.headers) for r in answers))
    assert good not in caplog.text
