"""The web UI (``/ui``), served by ``flowcred serve`` beside the REST API.

Server-rendered Jinja2 pages with a little plain JavaScript (``static/app.js``), all served from
this package: no CDN, no inline script. Pages call the same broker view as the REST API
(:mod:`flowcred.web.auth`), so roles, tenants, delete protection and audit are the broker's and
the same for every front end. No page, cookie, URL or script state ever holds a credential's
secret: secret fields are password inputs that are never filled back in, and pages show only
whether they are set.

:func:`install_ui` adds the routes, the static files, the security headers and the session
store to an app (``create_app`` calls it unless ``FLOWCRED_UI_ENABLED=false``).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from flowcred.settings import FlowcredSettings
from flowcred.web.security import UiHeaders
from flowcred.web.sessions import SessionStore
from flowcred.web.templating import STATIC


def install_ui(app: FastAPI, settings: FlowcredSettings) -> None:
    """Serve the UI from ``app``: pages under ``/ui``, ``/`` redirecting there."""
    from flowcred.web.pages import ROUTERS

    app.state.ui_sessions = SessionStore(
        idle_seconds=settings.ui_session_idle_minutes * 60,
        absolute_seconds=settings.ui_session_max_hours * 3600,
    )
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_middleware(UiHeaders)


__all__ = ["install_ui"]
