"""What every ``/ui`` response and state-changing request must satisfy, in one place.

* :class:`UiHeaders` (ASGI middleware) adds to every ``/ui`` response ``Cache-Control:
  no-store`` (no page is kept by the browser or a proxy), a strict Content-Security-Policy (only
  this origin's scripts, styles and images; no inline script; no framing; forms post only here),
  and the usual hardening headers. Static assets get the same CSP but may be cached.
* :func:`check_csrf` guards every POST: the request's ``Origin`` (or ``Sec-Fetch-Site``) must be
  this site, and the session's CSRF token must come back in the form (``csrf_token``) or the
  ``X-CSRF-Token`` header, compared in constant time. SameSite=Strict cookies already keep other
  sites' requests from carrying the session; the token also covers a browser that ignores it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UI_PREFIX = "/ui"
STATIC_PREFIX = "/ui/static/"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)

_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with its own
    # form posts, and the origin check needs the real one. Other sites still get no referrer.
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)


class UiHeaders:
    """Security headers on every response under ``/ui`` (and the ``/`` redirect)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/" or path == UI_PREFIX or path.startswith(UI_PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        static = path.startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"cache-control", b"pragma")
                ]
                headers.extend(_HEADERS)
                if static:
                    headers.append((b"cache-control", b"private, max-age=300"))
                else:
                    headers.append((b"cache-control", b"no-store"))
                    headers.append((b"pragma", b"no-cache"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CsrfRefused(Exception):
    """A state-changing request without this site's origin or the session's token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def same_origin(headers: Mapping[str, str], scheme: str, host: str) -> bool:
    """The request came from a page of this site (Origin, else Sec-Fetch-Site, else allowed:
    a browser old enough to send neither still has to present the token)."""
    origin = headers.get("origin")
    if origin is not None:
        return origin.lower() == f"{scheme}://{host}".lower()
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    return True


def check_csrf(
    expected: str, sent: str | None, headers: Mapping[str, str], scheme: str, host: str
) -> None:
    """Raise :class:`CsrfRefused` unless the request is same-origin and carries ``expected``."""
    if not same_origin(headers, scheme, host):
        raise CsrfRefused("cross_origin")
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("missing_token" if not sent else "wrong_token")
