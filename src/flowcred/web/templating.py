"""Jinja2 rendering for the web UI: autoescaped templates from ``web/templates``.

Autoescaping is on for every template and undefined names are errors, so a missing value fails a
test instead of rendering empty. Pages receive records and public dicts only (config without
secret fields); no template is ever given a secret, so none can show one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def when(value: datetime | None) -> str:
    """A timestamp as people read it: ``2026-12-03 12:04 UTC``; ``—`` for none."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, coarsely (``3 min ago``, ``2 days ago``); ``never`` for none."""
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    if seconds < 0:
        return when(value)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "min")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 and unit != 'min' else ''} ago"
    return "just now"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["ago"] = ago
    return env


_ENV = _environment()


def _asset_version() -> str:
    """Changes whenever a static file does, so browsers never keep a stale script."""
    stamps = [int(p.stat().st_mtime) for p in STATIC.iterdir() if p.is_file()]
    return str(max(stamps, default=0))


ASSET_VERSION = _asset_version()


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with the page context (the signed-in user, CSRF token, flashes)."""
    user = getattr(request.state, "ui_user", None)
    base: dict[str, Any] = {
        "request": request,
        "user": user,
        "csrf_token": user.session.csrf_token if user is not None else "",
        # A page that sends the browser straight on (``keep_flash``) leaves them for the next.
        "flashes": user.session.take_flash()
        if user is not None and not (context or {}).get("keep_flash")
        else [],
        "asset_version": ASSET_VERSION,
        "active": "",
    }
    base.update(context or {})
    html = _ENV.get_template(template).render(base)
    return HTMLResponse(html, status_code=status_code, headers=headers)
