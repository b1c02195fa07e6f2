"""Webhook credentials from flowgen ``credentials_path`` files: the endpoint's file replaces the
worker's ``http_server.credentials_path`` file whole, over a real uvicorn server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.webhooks.conftest import BEARER, MCP_KEYS, PASSWORD, USER, WORKER_BEARER, basic

from flowcred.errors import CredentialsFileMalformed, CredentialsFileUnreadable
from flowcred.webhook_asgi import WebhookAuth, WebhookAuthMiddleware, WebhookEndpoint

Serve = Callable[[Any], str]


def write(tmp_path: Path, name: str, content: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content))
    path.chmod(0o600)
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "worker": write(tmp_path, "worker.json", {"bearer_auth": WORKER_BEARER}),
        "basic": write(
            tmp_path, "basic.json", {"basic_auth": {"username": USER, "password": PASSWORD}}
        ),
        "empty": write(tmp_path, "empty.json", {}),
        "mcp": write(tmp_path, "mcp.json", {"api_keys": list(MCP_KEYS)}),
        "bearer": write(tmp_path, "bearer.json", {"bearer_auth": BEARER}),
    }


def post(url: str, authorization: str | None = None) -> int:
    headers = {} if authorization is None else {"Authorization": authorization}
    return httpx.post(url, headers=headers, timeout=5).status_code


def test_middleware_reads_endpoint_files_over_the_worker_file(
    serve: Serve, files: dict[str, Path]
) -> None:
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    paths = ("/basic", "/empty", "/inherit", "/mcp")
    app = WebhookAuthMiddleware(
        Starlette(routes=[Route(p, ok, methods=["POST"]) for p in paths]),
        default_path=files["worker"],
        endpoints={
            "/basic": WebhookEndpoint(credentials_path=files["basic"]),
            "/empty": WebhookEndpoint(credentials_path=files["empty"]),
            "/mcp": WebhookEndpoint(credentials_path=files["mcp"], kind="mcp_tool"),
        },
    )
    url = serve(app)
    assert post(f"{url}/basic", basic(USER, PASSWORD)) == 200
    assert post(f"{url}/basic", f"Bearer {WORKER_BEARER}") == 401  # replaced, not merged
    assert post(f"{url}/empty") == 200  # its own {} file: no check
    assert post(f"{url}/inherit", f"Bearer {WORKER_BEARER}") == 200
    assert post(f"{url}/inherit") == 401
    assert post(f"{url}/mcp", f"Bearer {MCP_KEYS[1]}") == 200
    assert post(f"{url}/mcp", f"Bearer {WORKER_BEARER}") == 401


def test_dependency_reads_its_file_or_falls_back(serve: Serve, files: dict[str, Path]) -> None:
    app = FastAPI()
    own = WebhookAuth(credentials_path=files["bearer"], default_path=files["worker"])
    fallback = WebhookAuth(default_path=files["worker"])

    @app.post("/own", dependencies=[Depends(own)])
    async def own_route() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/fallback", dependencies=[Depends(fallback)])
    async def fallback_route() -> dict[str, bool]:
        return {"ok": True}

    url = serve(app)
    assert post(f"{url}/own", f"Bearer {BEARER}") == 200
    assert post(f"{url}/own", f"Bearer {WORKER_BEARER}") == 401
    assert post(f"{url}/fallback", f"Bearer {WORKER_BEARER}") == 200


def test_a_bad_file_fails_at_start_naming_the_path_not_the_content(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    with pytest.raises(CredentialsFileUnreadable, match="Failed to read credentials"):
        WebhookAuth(credentials_path=tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"bearer_auth": "' + BEARER)
    broken.chmod(0o600)
    with pytest.raises(CredentialsFileMalformed, match="Failed to parse credentials") as info:
        WebhookAuthMiddleware(Starlette(), default_path=broken)
    assert str(broken) in str(info.value) and BEARER not in str(info.value)
    with pytest.raises(ValueError, match="not both"):
        WebhookAuth(credentials={}, credentials_path=files["bearer"])
    with pytest.raises(ValueError, match="http or mcp"):
        WebhookAuth(credentials_path=files["bearer"], kind="nats")
