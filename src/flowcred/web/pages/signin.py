"""Sign-in, sign-out and the page the OAuth callback lands on.

Sign-in takes an API key (admin, developer or viewer) and opens a server-side session
(:mod:`flowcred.web.sessions`); the key itself is never stored or sent back. Failed keys count
against the same per-address limiter as the REST API's and are audited the same way. The login
form has its own CSRF token (a SameSite=Strict cookie echoed in the form), so another site
cannot sign a browser in with the other site's key.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from flowcred.api.deps import client_address, get_broker, refuse_key
from flowcred.audit import Access, Actor
from flowcred.audit.events import API_KEY
from flowcred.errors import AccessDenied
from flowcred.web.auth import (
    SESSION_COOKIE,
    UI_ROLES,
    SignInRequired,
    UserForm,
    request_scheme,
    sessions_of,
    signed_in,
)
from flowcred.web.routing import UiRoute
from flowcred.web.security import same_origin
from flowcred.web.templating import render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

LOGIN_COOKIE = "flowcred_login"
HOME = "/ui/credentials"


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a path of the UI only (never another site)."""
    if not value or not value.startswith("/ui/") or value.startswith("//"):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value:
        return HOME
    return value


def _login_page(
    request: Request, *, error: str = "", notice: str = "", status: int = 200, next_url: str = ""
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"error": error, "notice": notice, "login_token": token, "next_url": next_url},
        status_code=status,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=1800,
        path="/ui/login",
        httponly=True,
        samesite="strict",
        secure=request_scheme(request) == "https",
    )
    return response


@router.get("/")
def root() -> Response:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
@router.get("/ui/")
def ui_home() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get("/ui/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    try:
        await signed_in(request)
    except SignInRequired:
        notice = "You have signed out." if request.query_params.get("signed_out") else ""
        return _login_page(request, notice=notice, next_url=safe_next(next))
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    sent = str(form.get("login_token") or "")
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if (
        not same_origin(request.headers, request_scheme(request), request.headers.get("host", ""))
        or not sent
        or not expected
        or not hmac.compare_digest(sent.encode(), expected.encode())
    ):
        return _login_page(
            request,
            error="The sign-in form expired. Please try again.",
            status=403,
            next_url=next_url,
        )
    broker = get_broker(request)
    source = client_address(request)
    raw = str(form.get("api_key") or "").strip()
    try:
        if not raw:
            raise AccessDenied("missing API key")
        key = await run_in_threadpool(broker.api_keys.authenticate, raw)
    except AccessDenied as exc:
        wait = await refuse_key(request, exc, via="ui")
        if wait:
            return _login_page(
                request,
                error=f"Too many failed attempts. Try again in {wait} s.",
                status=429,
                next_url=next_url,
            )
        return _login_page(
            request, error="That API key was not accepted.", status=401, next_url=next_url
        )
    access = Access(Actor("api_key", key.id, key.name), source)
    if key.role not in UI_ROLES:
        await run_in_threadpool(
            broker.audit_denial,
            access,
            API_KEY,
            "access_denied",
            details={"role": key.role, "path": request.url.path, "method": "POST", "via": "ui"},
        )
        return _login_page(
            request,
            error="Worker keys resolve secrets for engines and cannot sign in. "
            "Use an admin, developer or viewer key.",
            status=403,
            next_url=next_url,
        )
    token, _session = sessions_of(request).create(key.id)
    await run_in_threadpool(
        broker.audit_event,
        access,
        API_KEY,
        "signed_in",
        "success",
        tenant=key.tenant,
        resource_type=API_KEY,
        resource_id=key.id,
        details={"role": key.role, "via": "ui"},
    )
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request_scheme(request) == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/ui/login")
    return response


@router.post("/ui/logout")
async def logout(request: Request, user_form: UserForm) -> Response:
    user, _form = user_form
    sessions_of(request).end(request.cookies.get(SESSION_COOKIE))
    key = user.caller.key
    await run_in_threadpool(
        get_broker(request).audit_event,
        user.caller.view.access,
        API_KEY,
        "signed_out",
        "success",
        tenant=key.tenant,
        resource_type=API_KEY,
        resource_id=key.id,
        details={"via": "ui"},
    )
    response = RedirectResponse("/ui/login?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


@router.get("/ui/oauth/done")
def oauth_done(
    request: Request,
    credential: int | None = None,
    status: str | None = None,
    reason: str | None = None,
) -> Response:
    """Where the OAuth callback sends a browser. It needs no session (the browser arrives
    from the provider, and a SameSite=Strict cookie is not sent on that navigation); it shows
    only the outcome and continues to the credential's page, which then asks for the session."""
    ok = status == "authorized"
    target = f"/ui/credentials/{credential}" if credential and credential > 0 else HOME
    return render(
        request,
        "oauth_done.html",
        {
            "ok": ok,
            "reason": reason if reason and reason.replace("_", "").isalnum() else "",
            "target": target,
        },
        status_code=200 if ok else 400,
    )
