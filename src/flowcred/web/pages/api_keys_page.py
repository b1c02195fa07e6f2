"""API keys (admins): the keys with their state, create (the key shown once), rotate, revoke.

Everything goes through :class:`flowcred.api_key_admin.ApiKeyAdmin`, the CLI's rules and audit:
a tenant admin manages only its tenant's keys. A new key is rendered straight into the answer
of the POST that made it (``no-store``, never put in a URL, a flash or the session), so it is
shown exactly once. Revoking a key also ends every UI session signed in with it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from flowcred.api.deps import get_broker
from flowcred.api_key_admin import ApiKeyAdmin
from flowcred.errors import FieldProblem, InvalidCredential
from flowcred.store.api_keys import DEFAULT_EXPIRY, ROLES, ApiKey, Expiry, Role
from flowcred.web.auth import ADMIN_ROLES, UiUser, User, UserForm, require, sessions_of
from flowcred.web.routing import UiRoute
from flowcred.web.templating import render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

SHOWN_ONCE = "This key is shown only once and cannot be shown again. Store it now."
DEFAULT_GRACE_DAYS = 7


def _admin(request: Request, user: UiUser) -> ApiKeyAdmin:
    return ApiKeyAdmin(
        get_broker(request), user.caller.view.access, tenant=user.caller.tenant_filter()
    )


def _page(
    request: Request,
    user: UiUser,
    *,
    new_key: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    broker = get_broker(request)
    keys = _admin(request, user).list()
    now = broker.clock.now()
    rows = [{"key": k, "state": k.state(now)} for k in keys]
    own_tenant = user.caller.tenant_filter()
    return render(
        request,
        "api_keys.html",
        {
            "active": "api-keys",
            "rows": rows,
            "roles": ROLES,
            "new_key": new_key,
            "errors": errors or {},
            "values": values
            or {"role": "worker", "tenant": own_tenant or "*", "name": "", "days": "365"},
            "tenant_locked": own_tenant,
            "shown_once": SHOWN_ONCE,
            "grace_days": DEFAULT_GRACE_DAYS,
        },
        status_code=status_code,
    )


@router.get("/ui/api-keys")
async def api_keys(request: Request, user: User) -> Response:
    await require(request, user, ADMIN_ROLES)
    return await run_in_threadpool(_page, request, user)


def _role(value: str) -> Role:
    for role in ROLES:
        if role == value:
            return role
    raise InvalidCredential([FieldProblem("role", f"must be one of {', '.join(ROLES)}")])


def _expiry(days: str, now: Any) -> Expiry:
    if not days.strip():
        return DEFAULT_EXPIRY
    if not (days.isascii() and days.isdigit()) or not 1 <= int(days) <= 3650:
        raise InvalidCredential([FieldProblem("days", "must be a whole number of days, 1-3650")])
    result: Expiry = now + timedelta(days=int(days))
    return result


def _shown(key: ApiKey, raw: str, headline: str) -> dict[str, Any]:
    return {"key": key, "raw": raw, "headline": headline}


@router.post("/ui/api-keys")
async def create_key(request: Request, user_form: UserForm) -> Response:
    user, form = user_form
    await require(request, user, ADMIN_ROLES)
    values = {
        "role": str(form.get("role") or ""),
        "tenant": str(form.get("tenant") or "").strip() or (user.caller.tenant_filter() or "*"),
        "name": str(form.get("name") or "").strip(),
        "days": str(form.get("days") or "").strip(),
    }

    def work() -> Response:
        try:
            now = get_broker(request).clock.now()
            key, raw = _admin(request, user).create(
                role=_role(values["role"]),
                tenant=values["tenant"],
                name=values["name"],
                expires_at=_expiry(values["days"], now),
            )
        except InvalidCredential as exc:
            errors = {p.field: p.message for p in exc.problems}
            return _page(request, user, errors=errors, values=values, status_code=422)
        user.session.add_flash("ok", f"Created API key {key.id}.")
        return _page(request, user, new_key=_shown(key, raw, "New API key"))

    return await run_in_threadpool(work)


@router.post("/ui/api-keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str, user_form: UserForm) -> Response:
    user, form = user_form
    await require(request, user, ADMIN_ROLES)
    days_text = str(form.get("grace_days") or DEFAULT_GRACE_DAYS)

    def work() -> Response:
        try:
            grace = float(days_text)
        except ValueError:
            grace = float(DEFAULT_GRACE_DAYS)
        try:
            key, raw = _admin(request, user).rotate(key_id, grace_seconds=max(grace, 0) * 86400)
        except InvalidCredential as exc:
            user.session.add_flash("error", "; ".join(p.message for p in exc.problems))
            return RedirectResponse("/ui/api-keys", status_code=303)
        user.session.add_flash(
            "ok", f"Rotated API key {key_id}: the old key works for {grace:g} more days."
        )
        return _page(request, user, new_key=_shown(key, raw, f"Replacement for {key_id}"))

    return await run_in_threadpool(work)


@router.post("/ui/api-keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, user_form: UserForm) -> Response:
    user, _form = user_form
    await require(request, user, ADMIN_ROLES)

    def work() -> Response:
        try:
            key = _admin(request, user).revoke(key_id)
        except InvalidCredential as exc:
            user.session.add_flash("error", "; ".join(p.message for p in exc.problems))
            return RedirectResponse("/ui/api-keys", status_code=303)
        ended = sessions_of(request).end_for_key(key.id)
        note = f" and ended its {ended} UI session{'s' if ended != 1 else ''}" if ended else ""
        user.session.add_flash("ok", f"Revoked API key {key.id}{note}.")
        return RedirectResponse("/ui/api-keys", status_code=303)

    return await run_in_threadpool(work)
