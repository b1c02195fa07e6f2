"""The dependency and the middleware over a real uvicorn server on loopback, called with httpx."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.webhooks.conftest import (
    BASIC_ONLY,
    BEARER,
    BEARER_ONLY,
    MCP,
    MCP_KEYS,
    PASSWORD,
    USER,
    WORKER,
    WORKER_BEARER,
    assert_no_canary,
    basic,
)

from flowcred.credential_files.http import HttpCredentials
from flowcred.webhook_asgi import WebhookAuth, WebhookAuthMiddleware, WebhookEndpoint

Serve = Callable[[Any], str]


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/bearer", dependencies=[Depends(WebhookAuth(BEARER_ONLY))])
    async def bearer() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/basic", dependencies=[Depends(WebhookAuth(BASIC_ONLY))])
    async def basic_route() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/mcp", dependencies=[Depends(WebhookAuth(MCP))])
    async def mcp() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/open", dependencies=[Depends(WebhookAuth(None))])
    async def open_route() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/fallback", dependencies=[Depends(WebhookAuth(None, default=WORKER))])
    async def fallback() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.fixture
def dependency_url(serve: Serve) -> str:
    return serve(fastapi_app())


def post(url: str, authorization: str | None = None) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return httpx.post(url, headers=headers, timeout=5)


def test_dependency_lets_right_credentials_through(dependency_url: str) -> None:
    assert post(f"{dependency_url}/bearer", f"Bearer {BEARER}").json() == {"ok": True}
    assert post(f"{dependency_url}/basic", basic(USER, PASSWORD)).status_code == 200
    for key in MCP_KEYS:
        assert post(f"{dependency_url}/mcp", f"Bearer {key}").status_code == 200
    assert post(f"{dependency_url}/open").status_code == 200  # nothing configured: no check


def test_missing_and_wrong_credentials_get_the_same_401(dependency_url: str) -> None:
    answers = [
        post(f"{dependency_url}/bearer"),
        post(f"{dependency_url}/bearer", "Bearer wrong"),
        post(f"{dependency_url}/bearer", basic(USER, BEARER)),
        post(f"{dependency_url}/basic", basic(USER, "wrong")),
        post(f"{dependency_url}/basic", f"Bearer {PASSWORD}"),  # bearer vs basic-only config
    ]
    assert {r.status_code for r in answers} == {401}
    assert {r.content for r in answers} == {b'{"detail":"unauthorized"}'}
    assert answers[0].headers["www-authenticate"] == 'Bearer realm="flowcred"'
    assert answers[-1].headers["www-authenticate"] == 'Basic realm="flowcred"'
    for r in answers:
        assert_no_canary(r.text, str(r.headers))


def test_dependency_falls_back_to_the_worker_default(dependency_url: str) -> None:
    assert post(f"{dependency_url}/fallback", f"Bearer {WORKER_BEARER}").status_code == 200
    assert post(f"{dependency_url}/fallback", f"Bearer {BEARER}").status_code == 401


async def claims(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "claims": request.state.webhook_claims})


@pytest.fixture
def middleware_url(serve: Serve) -> str:
    routes = [Route(p, claims, methods=["POST"]) for p in ("/own", "/inherit", "/empty", "/x")]
    routes.append(Route("/health", claims, methods=["POST"]))
    app = WebhookAuthMiddleware(
        Starlette(routes=routes),
        default=WORKER,
        endpoints={
            "/own": WebhookEndpoint(BASIC_ONLY),
            "/inherit": WebhookEndpoint(None),
            "/empty": HttpCredentials(),
        },
        exempt=["/health"],
    )
    return serve(app)


def test_middleware_endpoint_credentials_replace_the_worker_default(middleware_url: str) -> None:
    own = f"{middleware_url}/own"
    assert post(own, basic(USER, PASSWORD)).status_code == 200
    # The worker's bearer does not open an endpoint that has its own (basic-only) file.
    refused = post(own, f"Bearer {WORKER_BEARER}")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Basic realm="flowcred"'
    for path in ("/inherit", "/x"):  # no own file / not listed: the worker default applies
        assert post(f"{middleware_url}{path}", f"Bearer {WORKER_BEARER}").status_code == 200
        assert post(f"{middleware_url}{path}").status_code == 401
    assert post(f"{middleware_url}/empty").status_code == 200  # its own {} file: no check
    assert post(f"{middleware_url}/health").status_code == 200


def test_middleware_401_is_identical_for_missing_and_wrong(
    middleware_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [
        post(f"{middleware_url}/x"),
        post(f"{middleware_url}/x", "Bearer wrong"),
        post(f"{middleware_url}/x", f"Bearer {BEARER}"),
        post(f"{middleware_url}/x", basic(USER, WORKER_BEARER)),
    ]
    assert {r.status_code for r in answers} == {401}
    assert {r.content for r in answers} == {b'{"detail":"unauthorized"}'}
    assert {r.headers["www-authenticate"] for r in answers} == {'Bearer realm="flowcred"'}
    ok = post(f"{middleware_url}/x", f"Bearer {WORKER_BEARER}")
    assert ok.json() == {"ok": True, "claims": None}
    for r in [*answers, ok]:
        assert_no_canary(r.text, str(r.headers))
    assert "webhook request refused" in caplog.text
    assert_no_canary(caplog.text)
