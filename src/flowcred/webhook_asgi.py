"""Webhook verification for FastAPI / Starlette apps: a dependency and an ASGI middleware.

Both answer every refusal with the same response -- status 401, body
``{"detail": "unauthorized"}`` and a ``WWW-Authenticate`` challenge that depends only on the
configuration -- so a caller cannot tell a missing credential from a wrong one. The rules are
:func:`flowcred.webhooks.verify`'s.

Dependency (one route, FastAPI)::

    hook = WebhookAuth(HttpCredentials(bearer_auth=Secret("s3cr3t")))

    @app.post("/hooks/orders")
    async def orders(claims: dict | None = Depends(hook)) -> dict: ...

Middleware (a whole worker: per-path endpoint credentials over a worker default, flowgen's
``http_server.credentials_path`` fallback)::

    app = WebhookAuthMiddleware(
        app,
        default=worker_credentials,
        endpoints={"/hooks/orders": WebhookEndpoint(orders_credentials, jwt=requirement)},
    )

Paths match exactly; a path not listed uses ``default``; an endpoint whose credentials are
``None`` falls back to ``default``, any other value replaces it whole. The JWT claims, when a JWT
is required, are returned by the dependency and put in ``request.state.webhook_claims`` by the
middleware. A JWT check (which may fetch a JWKS) runs in a worker thread, never on the event
loop.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import HTTPException, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from flowcred.clock import Clock
from flowcred.errors import WebhookUnauthorized
from flowcred.webhook_jwt import JwtRequirement, JwtVerifier
from flowcred.webhooks import (
    DEFAULT_REALM,
    HeaderSource,
    WebhookCredentials,
    check_layout,
    effective_credentials,
    load_webhook_credentials,
    verify,
)

__all__ = ["UNAUTHORIZED_BODY", "WebhookAuth", "WebhookAuthMiddleware", "WebhookEndpoint"]

#: The body of every 401, whatever was missing or wrong.
UNAUTHORIZED_BODY: dict[str, str] = {"detail": "unauthorized"}

JwtSetting = JwtRequirement | JwtVerifier | None


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """One endpoint's own settings: its credentials (given, or its ``credentials_path`` file
    read as ``kind``; neither: fall back to the default) and its JWT requirement."""

    credentials: WebhookCredentials = None
    jwt: JwtSetting = None
    credentials_path: str | os.PathLike[str] | None = None
    kind: str = "http"

    def own_credentials(self) -> WebhookCredentials:
        """The endpoint's credentials, loading its file if it names one."""
        return load_webhook_credentials(self.credentials, self.credentials_path, self.kind)


def _verifier(jwt: JwtSetting, clock: Clock | None) -> JwtVerifier | None:
    if jwt is None or isinstance(jwt, JwtVerifier):
        return jwt
    return JwtVerifier(jwt, clock=clock)


async def _check(
    headers: HeaderSource,
    credentials: WebhookCredentials,
    jwt: JwtVerifier | None,
    realm: str,
) -> dict[str, Any] | None:
    """:func:`verify`, with a JWT check moved off the event loop (it may fetch a JWKS)."""
    if jwt is None:
        return verify(headers, credentials, realm=realm)
    call = functools.partial(verify, headers, credentials, jwt=jwt, realm=realm)
    return await anyio.to_thread.run_sync(call)


class WebhookAuth:
    """A FastAPI dependency verifying one endpoint: ``Depends(WebhookAuth(credentials))``.

    ``credentials`` (or the file at ``credentials_path``) are the endpoint's own; ``default``
    (or ``default_path``) the worker's, used only when the endpoint has none. Files are read
    once, here, as ``kind`` (``http`` or ``mcp``). ``jwt`` adds the user-level JWT check. The
    dependency's value is the verified JWT claims (``None`` without a JWT); a refusal raises a 401
    :class:`~fastapi.HTTPException` with :data:`UNAUTHORIZED_BODY`'s detail.
    """

    def __init__(
        self,
        credentials: WebhookCredentials = None,
        *,
        jwt: JwtSetting = None,
        default: WebhookCredentials = None,
        credentials_path: str | os.PathLike[str] | None = None,
        default_path: str | os.PathLike[str] | None = None,
        kind: str = "http",
        realm: str = DEFAULT_REALM,
        clock: Clock | None = None,
    ) -> None:
        self.credentials = effective_credentials(
            load_webhook_credentials(credentials, credentials_path, kind),
            load_webhook_credentials(default, default_path, kind),
        )
        self.jwt = _verifier(jwt, clock)
        self.realm = realm
        check_layout(self.credentials, self.jwt)

    async def __call__(self, request: Request) -> dict[str, Any] | None:
        try:
            return await _check(request.headers, self.credentials, self.jwt, self.realm)
        except WebhookUnauthorized as exc:
            raise HTTPException(
                status_code=401,
                detail=UNAUTHORIZED_BODY["detail"],
                headers={"WWW-Authenticate": exc.challenge},
            ) from None


class WebhookAuthMiddleware:
    """ASGI middleware verifying every HTTP request by its path; see the module docstring.

    ``default`` (or the file at ``default_path``, read as ``kind``) is the worker's
    ``http_server.credentials_path``; ``endpoints`` maps exact paths to a
    :class:`WebhookEndpoint` (or bare credentials);
    ``exempt`` paths (health checks) are never checked. WebSocket connections are checked too
    and closed with code 1008 before acceptance when refused. Lifespan events pass through.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: WebhookCredentials = None,
        default_path: str | os.PathLike[str] | None = None,
        endpoints: Mapping[str, WebhookEndpoint | WebhookCredentials] | None = None,
        exempt: Iterable[str] = (),
        kind: str = "http",
        realm: str = DEFAULT_REALM,
        clock: Clock | None = None,
    ) -> None:
        self.app = app
        self.realm = realm
        self.exempt = frozenset(exempt)
        default = self._default = load_webhook_credentials(default, default_path, kind)
        verifiers: dict[JwtRequirement, JwtVerifier] = {}
        self._endpoints: dict[str, tuple[WebhookCredentials, JwtVerifier | None]] = {}
        for path, setting in (endpoints or {}).items():
            endpoint = (
                setting
                if isinstance(setting, WebhookEndpoint)
                else WebhookEndpoint(credentials=setting)
            )
            jwt = endpoint.jwt
            if isinstance(jwt, JwtRequirement):
                # One verifier (one JWKS cache) per requirement, shared by its endpoints.
                jwt = verifiers.setdefault(jwt, JwtVerifier(jwt, clock=clock))
            credentials = effective_credentials(endpoint.own_credentials(), default)
            check_layout(credentials, jwt)
            self._endpoints[path] = (credentials, jwt)

    def settings_for(self, path: str) -> tuple[WebhookCredentials, JwtVerifier | None]:
        """The credentials and JWT verifier that apply to ``path``."""
        return self._endpoints.get(path, (self._default, None))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        credentials, jwt = self.settings_for(scope["path"])
        try:
            claims = (
                None
                if scope["path"] in self.exempt
                else await _check(scope["headers"], credentials, jwt, self.realm)
            )
        except WebhookUnauthorized as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            response = JSONResponse(
                UNAUTHORIZED_BODY, status_code=401, headers={"WWW-Authenticate": exc.challenge}
            )
            await response(scope, receive, send)
            return
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["webhook_claims"] = claims
        await self.app(scope, receive, send)
