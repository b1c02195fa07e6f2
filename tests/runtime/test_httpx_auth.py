"""``provider.httpx_auth(ref)`` with real httpx clients against loopback servers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from tests.oauth_support.server import AuthzServer

from flowcred.broker import Broker, open_broker
from flowcred.settings import load_settings


@pytest.fixture
def broker_(tmp_path: Path) -> Iterator[Broker]:
    b = open_broker(settings=load_settings(home=tmp_path / "home"))
    try:
        yield b
    finally:
        b.close()


def _m2m(broker: Broker, server: AuthzServer) -> int:
    server.register_client("m2m-app", "m2m-secret", grant_types=("client_credentials",))
    return broker.credentials.create(
        name="API client",
        type="oauth2_client_credentials",
        config={"token_url": server.token_url, "client_id": "m2m-app"},
        secret={"client_secret": "m2m-secret"},
    ).id


def test_a_401_forces_one_refresh_and_one_retry_sync_and_async(
    broker_: Broker, authz_server: AuthzServer
) -> None:
    cid = _m2m(broker_, authz_server)
    auth = broker_.provider().httpx_auth(cid)
    with httpx.Client(auth=auth, timeout=10) as client:
        first = client.get(authz_server.resource_url)
        assert first.status_code == 200
        used = first.request.headers["Authorization"].removeprefix("Bearer ")
        authz_server.revoke(used)  # the API stops accepting it before it expires
        second = client.get(authz_server.resource_url)
        assert second.status_code == 200
        assert second.request.headers["Authorization"] != f"Bearer {used}"
    assert authz_server.count("client_credentials") == 2

    async def run() -> int:
        async with httpx.AsyncClient(auth=auth, timeout=10) as client:
            response = await client.get(authz_server.resource_url)
            authz_server.revoke(response.request.headers["Authorization"].split()[1])
            return (await client.get(authz_server.resource_url)).status_code

    assert asyncio.run(run()) == 200
    assert authz_server.count("client_credentials") == 3


class _AlwaysUnauthorized(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_second_401_is_returned_without_a_loop(
    broker_: Broker, authz_server: AuthzServer
) -> None:
    cid = _m2m(broker_, authz_server)
    api = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysUnauthorized)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        with httpx.Client(auth=broker_.provider().httpx_auth(cid), timeout=10) as client:
            answer = client.get(f"http://127.0.0.1:{api.server_address[1]}/")
        assert answer.status_code == 401
        assert _AlwaysUnauthorized.hits == 2, "one retry after the forced refresh, no more"
        assert authz_server.count("client_credentials") == 2
    finally:
        api.shutdown()
        api.server_close()


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []
    redirect_to = ""

    def do_GET(self) -> None:
        if self.path.startswith("/hop"):
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        type(self).seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_credentials_never_follow_a_redirect_to_another_origin(
    broker_: Broker, authz_server: AuthzServer
) -> None:
    cid = _m2m(broker_, authz_server)
    other = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    origin = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    for server in (other, origin):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Recorder.redirect_to = f"http://127.0.0.1:{other.server_address[1]}/landing"
        base = f"http://127.0.0.1:{origin.server_address[1]}"
        auth = broker_.provider().httpx_auth(cid)
        with httpx.Client(auth=auth, follow_redirects=True, timeout=10) as client:
            assert client.get(f"{base}/hop").status_code == 200
            # A request straight to another origin gets nothing either.
            assert client.get(_Recorder.redirect_to).status_code == 200
        assert _Recorder.seen == [None, None]
    finally:
        for server in (other, origin):
            server.shutdown()
            server.server_close()
