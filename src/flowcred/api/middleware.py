"""ASGI middleware: request body size limit and HTTPS enforcement.

Both run before any route, so a refused request never reaches the broker and changes nothing.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail, "errors": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Answer 413 to a request body larger than ``max_bytes`` (declared or streamed).

    The refusal is raised when the route reads the body, which the API's route class does only
    after authenticating: a request without a valid key is 401 whatever its body, and a refused
    request that names a credential is audited like every other refusal. Nothing of an
    oversized body is read: a declared length over the limit fails the first read, and a
    streamed body fails as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = HTTPException(413, f"request body larger than {self.max_bytes} bytes")
        declared_over = False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reply(send, 400, "invalid Content-Length")
                    return
                declared_over = declared > self.max_bytes
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared_over:
                # An HTTPException, because FastAPI turns any other error raised while it
                # reads the body into a 400; this one it lets through to its handler.
                raise too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        await self.app(scope, limited_receive, send)


class RequireHttps:
    """Refuse plain-HTTP requests (403), judging ``X-Forwarded-Proto`` only from trusted proxies.

    Health probes are exempt: they reveal nothing and load balancers often probe over HTTP.
    ``exempt_paths`` are exempt too (exact paths): the OAuth callback, which a provider may be
    registered to reach over a plain-HTTP loopback address; its code is useless without the
    PKCE verifier and client secret that never leave the server.
    """

    def __init__(
        self, app: ASGIApp, trusted_proxies: Sequence[str], exempt_paths: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self.exempt = frozenset(exempt_paths)

    def _trusted(self, host: str | None) -> bool:
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/health") or path in self.exempt:
            await self.app(scope, receive, send)
            return
        scheme = scope.get("scheme", "http")
        client = scope.get("client")
        if self._trusted(client[0] if client else None):
            for name, value in scope.get("headers", []):
                if name == b"x-forwarded-proto":
                    scheme = value.decode("latin-1").split(",")[0].strip().lower()
        if scheme != "https":
            await _reply(send, 403, "HTTPS is required")
            return
        await self.app(scope, receive, send)
