"""``create_app(settings)``: the FastAPI application served by ``flowcred serve``.

No settings object exists at import time; each app gets its own, so tests can build several apps
with different settings in one process. The broker is opened in the lifespan (or passed in), so
a wrong key or an unreachable database fails start-up rather than every request.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from flowcred.api import access_log
from flowcred.api.deps import FailedKeyLimiter
from flowcred.api.docs import install_docs
from flowcred.api.error_handlers import install_error_handlers
from flowcred.api.middleware import BodySizeLimit, RequireHttps
from flowcred.api.routes import audit_events, bindings, connection_tests, credentials, oauth, types
from flowcred.api.schemas import Health
from flowcred.broker import Broker, open_broker
from flowcred.connectors.retest import Retester
from flowcred.errors import FlowcredError
from flowcred.runtime.authorization import AuthorizationFlow
from flowcred.settings import FlowcredSettings
from flowcred.web import install_ui


def create_app(
    settings: FlowcredSettings,
    *,
    broker: Broker | None = None,
    freeze_heap: bool = False,
    oauth_flow: AuthorizationFlow | None = None,
) -> FastAPI:
    """Build the app. Pass ``broker`` to share one already open (it is then not closed here).

    ``oauth_flow`` serves ``/api/oauth`` (authorize and the provider's callback); without it
    the broker's default flow does (``runtime.authorization.default_flow``).

    ``freeze_heap=True`` is for a process that exists to serve this app (``flowcred serve``):
    once start-up is done, everything alive is moved out of the garbage collector's reach
    (``gc.freeze``). The framework, catalog and broker make a large long-lived heap, and every
    full collection walked all of it, stalling every request in flight: under load that was
    most of the p99 latency of resolve. Not for an app embedded in someone else's process.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = broker is None
        app.state.broker = broker if broker is not None else open_broker(settings=settings)
        # A server lives long: watch the change feed from the start, so a key rotation made by
        # another process switches what this one seals with within the visibility bound.
        app.state.broker.watch_changes()
        # Optional periodic re-test (FLOWCRED_RETEST_INTERVAL_SECONDS; 0, the default, is off):
        # a daemon thread, never the event loop, stopped before the broker closes.
        retester = None
        if settings.retest_interval_seconds > 0:
            retester = Retester(app.state.broker, settings.retest_interval_seconds)
            retester.start()
        app.state.retester = retester
        if freeze_heap:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if retester is not None:
                # A test in flight ends within its own timeout; none starts after stop().
                retester.stop(join_timeout=settings.test_timeout_seconds + 1)
            if owned:
                await app.state.broker.aclose()

    app = FastAPI(
        title="flowcred",
        version="0.1.0",
        description="Credential broker for workflow engines. Authenticate with `X-API-Key`.",
        lifespan=lifespan,
        # Served by install_docs from local assets (FastAPI's own pages load them from a CDN).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.key_limiter = FailedKeyLimiter()
    app.state.oauth_flow = oauth_flow
    access_log.install()
    if broker is not None:
        app.state.broker = broker
    install_error_handlers(app)
    install_docs(app, require_key=settings.docs_require_key)

    app.include_router(credentials.router)
    app.include_router(connection_tests.router)
    app.include_router(types.router)
    app.include_router(bindings.router)
    app.include_router(audit_events.router)
    app.include_router(oauth.router)
    if settings.ui_enabled:
        install_ui(app, settings)

    @app.get("/health", tags=["health"], response_model=Health)
    async def health() -> Health:
        """The process is up. Unauthenticated; reveals no configuration."""
        return Health(status="ok")

    @app.get("/health/live", tags=["health"], response_model=Health)
    async def live() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get(
        "/health/ready",
        tags=["health"],
        response_model=Health,
        responses={503: {"model": Health}},
    )
    async def ready() -> Health | JSONResponse:
        """The database answers and the key matches it."""
        try:
            app.state.broker.check_ready()
        except FlowcredError:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return Health(status="ok")

    # Outermost last: CORS answers preflights, then HTTPS and size checks run before routing.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.require_https:
        app.add_middleware(
            RequireHttps,
            trusted_proxies=settings.trusted_proxies,
            exempt_paths=(oauth.CALLBACK_PATH,),
        )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type", "If-Match"],
            expose_headers=["ETag", "Retry-After"],
            max_age=600,
        )
    return app
