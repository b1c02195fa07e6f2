"""``create_app(settings)``: the FastAPI application served by ``flowcred serve``.

No settings object exists at import time; each app gets its own, so tests can build several apps
with different settings in one process. The broker is opened in the lifespan, so a wrong key or an
unreachable database fails start-up rather than every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from flowcred.broker import Broker, open_broker
from flowcred.errors import FlowcredError
from flowcred.settings import FlowcredSettings


def create_app(settings: FlowcredSettings, *, broker: Broker | None = None) -> FastAPI:
    """Build the app. Pass ``broker`` to share one already open (it is then not closed here)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = broker is None
        app.state.broker = broker if broker is not None else open_broker(settings=settings)
        try:
            yield
        finally:
            if owned:
                await app.state.broker.aclose()

    app = FastAPI(title="flowcred", version="0.1.0", lifespan=lifespan)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness and readiness in one answer; reveals no configuration."""
        return {"status": "ok"}

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"], response_model=None)
    async def ready() -> dict[str, str] | JSONResponse:
        """The database answers and the key matches it."""
        try:
            app.state.broker.check_ready()
        except FlowcredError:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return {"status": "ok"}

    return app
