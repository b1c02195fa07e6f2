"""Who is using the web UI: the session cookie → the API key it was opened with → a caller.

Every page and action goes through :func:`signed_in` (or :func:`signed_in_form` for a POST,
which also checks CSRF). The caller it returns is the REST API's own
(:func:`flowcred.api.deps.caller_for`): the same broker view, roles and tenant rules, and every
event it causes names the signed-in key as actor and the browser's address as source.

* No session, an expired one, or a key that has since been revoked or has expired → sign in
  again (the page redirects to ``/ui/login``; a script's request gets 401).
* A role that may not do something → 403, audited as ``api_key``/``access_denied`` exactly like
  the REST API's refusal, whatever the page showed.
* A POST without this site's origin or the session's CSRF token → 403, audited the same way with
  ``reason: csrf``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from flowcred.api.deps import Caller, caller_for, client_address, get_broker
from flowcred.audit.events import API_KEY
from flowcred.web.security import CsrfRefused, check_csrf
from flowcred.web.sessions import SessionStore, UiSession

#: The session cookie. HttpOnly, SameSite=Strict, Path=/ui; Secure when served over HTTPS.
SESSION_COOKIE = "flowcred_session"

#: Roles that may sign in: a worker key resolves secrets for engines and has no pages.
UI_ROLES = frozenset({"admin", "developer", "viewer"})
EDIT_ROLES = frozenset({"admin", "developer"})
ADMIN_ROLES = frozenset({"admin"})


class SignInRequired(Exception):
    """No live session: the browser must sign in (again)."""


class UiForbidden(Exception):
    """The signed-in key's role may not do this."""

    def __init__(self, message: str = "Your role may not do that.") -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class UiUser:
    """The signed-in key: its caller (the REST API's) and its session."""

    caller: Caller
    session: UiSession

    @property
    def role(self) -> str:
        return self.caller.key.role

    @property
    def can_edit(self) -> bool:
        return self.role in EDIT_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES

    @property
    def name(self) -> str:
        return self.caller.key.name or self.caller.key.id


def sessions_of(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.ui_sessions
    return store


def request_scheme(request: Request) -> str:
    """``https`` when the browser talks HTTPS to us (directly or, as the app's HTTPS rule
    judges it, through a trusted proxy that set ``X-Forwarded-Proto``)."""
    settings = get_broker(request).settings
    if request.url.scheme == "https":
        return "https"
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    if forwarded == "https" and settings.trusted_proxies:
        host = client_address(request)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return "http"
        for network in settings.trusted_proxies:
            if address in ipaddress.ip_network(network, strict=False):
                return "https"
    return "http"


async def signed_in(request: Request) -> UiUser:
    """The live session's user, or :class:`SignInRequired`."""
    cached: UiUser | None = getattr(request.state, "ui_user", None)
    if cached is not None:
        return cached
    store = sessions_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    session = store.get(token)
    if session is None:
        raise SignInRequired()
    broker = get_broker(request)
    key = await run_in_threadpool(broker.api_keys.get, session.key_id)
    if key is None or not key.usable(broker.clock.now()) or key.role not in UI_ROLES:
        store.end(token)
        raise SignInRequired()
    user = UiUser(caller=caller_for(broker, key, client_address(request)), session=session)
    request.state.ui_user = user
    request.state.flowcred_caller = user.caller
    return user


async def audit_ui_denial(request: Request, user: UiUser, **details: object) -> None:
    """One ``api_key``/``access_denied`` event, as the REST API writes for a refused role."""
    await run_in_threadpool(
        get_broker(request).audit_denial,
        user.caller.view.access,
        API_KEY,
        "access_denied",
        details={
            "role": user.role,
            "path": request.url.path,
            "method": request.method,
            "via": "ui",
            **details,
        },
    )


async def require(request: Request, user: UiUser, roles: frozenset[str]) -> None:
    """Refuse (audited, 403) unless the user's role is in ``roles``."""
    if user.role not in roles:
        await audit_ui_denial(request, user)
        raise UiForbidden()


async def signed_in_form(request: Request) -> tuple[UiUser, FormData]:
    """A state-changing request: the session, then same origin and the CSRF token, then the
    form (read once; Starlette keeps it on the request)."""
    user = await signed_in(request)
    form = await request.form()
    sent = form.get("csrf_token")
    token = sent if isinstance(sent, str) else request.headers.get("x-csrf-token")
    try:
        check_csrf(
            user.session.csrf_token,
            token,
            request.headers,
            request_scheme(request),
            request.headers.get("host", ""),
        )
    except CsrfRefused as exc:
        await audit_ui_denial(request, user, reason="csrf", why=exc.reason)
        raise
    return user, form


User = Annotated[UiUser, Depends(signed_in)]
UserForm = Annotated[tuple[UiUser, FormData], Depends(signed_in_form)]
