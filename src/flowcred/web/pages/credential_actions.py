"""The actions of an auth config's page: Edit, Rotate secret, Roll back, Re-authorize (Delete is
in :mod:`flowcred.web.pages.credential_delete`).

Each is checked twice: the page shows a control only to a role that may use it, and every
handler checks the role again server-side (:func:`~flowcred.web.auth.require`, audited), so a
forged POST by a viewer is refused (403) and changes nothing. POSTs are CSRF-checked
(``UserForm``) and answer 303 back to a page with a flash (PRG). The rules themselves (what a
valid secret is, that a developer moving a destination must send the secret again, delete
protection while flows bind the config) are the broker's; these handlers only show its answers.

Secret inputs are never filled back in: a failed submit shows the errors next to the fields and
empty secret inputs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from flowcred.catalog.schema import CredentialType
from flowcred.errors import AccessDenied, InvalidCredential, VersionConflict
from flowcred.web import forms
from flowcred.web.auth import EDIT_ROLES, UiUser, User, UserForm, require
from flowcred.web.pages.credential_detail import Shown, credential_id_of, detail_url, find
from flowcred.web.pages.oauth_start import start_authorization
from flowcred.web.routing import UiRoute
from flowcred.web.templating import render

router = APIRouter(route_class=UiRoute, include_in_schema=False)


async def _editable(request: Request, user: UiUser, credential_id: str) -> Shown:
    """The config ``credential_id`` names, for an editor (others: 403, audited; unknown or
    another tenant's: 404)."""
    await require(request, user, EDIT_ROLES)
    return await run_in_threadpool(find, request, user, credential_id_of(credential_id))


def _int(form: FormData, name: str) -> int | None:
    raw = form.get(name)
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        text = raw.strip()
        return int(text) if len(text) <= 18 else None
    return None


# -- Edit ------------------------------------------------------------------------------------


def _edit_page(
    request: Request,
    shown: Shown,
    *,
    values: dict[str, Any] | None = None,
    name: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    errors = errors or {}
    spec = shown.spec
    config_views = (
        forms.field_views(
            spec,
            values=shown.record.config if values is None else values,
            errors=errors,
            secret=False,
        )
        if spec is not None
        else []
    )
    secret_views = (
        forms.field_views(spec, errors=errors, secret=True, secrets_optional=True)
        if spec is not None
        else []
    )
    return render(
        request,
        "credential_edit.html",
        {
            "active": "credentials",
            "shown": shown,
            "record": shown.record,
            "name_value": shown.record.name if name is None else name,
            "config_views": config_views,
            "secret_views": secret_views,
            "errors": errors,
        },
        status_code=status,
    )


def config_changes(spec: CredentialType, stored: dict[str, Any], form: FormData) -> dict[str, Any]:
    """The non-secret fields the form changed: a new value as typed, ``None`` for a field that
    was cleared (the broker then removes it). Unchanged fields are left out, so the audit
    event names only what changed and an unchanged destination is never "moved"."""
    current = {v.name: v.value for v in forms.field_views(spec, values=stored, secret=False)}
    changes: dict[str, Any] = {}
    for field in spec.fields:
        if field.secret:
            continue
        raw = form.get(forms.PREFIX + field.name)
        if not isinstance(raw, str):
            continue
        value = raw if field.kind in ("text", "json") else raw.strip()
        if value == current.get(field.name, ""):
            continue
        if value == "":
            if field.name in stored:
                changes[field.name] = None
            continue
        changes[field.name] = value
    return changes


@router.get("/ui/credentials/{credential_id}/edit")
async def edit_form(request: Request, user: User, credential_id: str) -> Response:
    shown = await _editable(request, user, credential_id)
    return _edit_page(request, shown)


@router.post("/ui/credentials/{credential_id}/edit")
async def edit(request: Request, user_form: UserForm, credential_id: str) -> Response:
    user, form = user_form
    shown = await _editable(request, user, credential_id)
    cid = shown.record.id
    record, spec = shown.record, shown.spec
    raw_name = form.get("name")
    name = raw_name.strip() if isinstance(raw_name, str) else record.name
    changes = config_changes(spec, record.config, form) if spec is not None else {}
    secret = forms.submitted(spec, form, secret=True)[1] if spec is not None else {}
    typed = {
        f.name: form.get(forms.PREFIX + f.name)
        for f in (spec.fields if spec is not None else [])
        if not f.secret and isinstance(form.get(forms.PREFIX + f.name), str)
    }
    if name == record.name and not changes and not secret:
        user.session.add_flash("ok", "Nothing changed.")
        return RedirectResponse(detail_url(cid), status_code=303)

    def work() -> Any:
        return user.caller.view.credentials.update(
            cid,
            tenant=user.caller.tenant_filter(),
            name=name if name != record.name else None,
            config=changes or None,
            secret=secret or None,
        )

    try:
        updated = await run_in_threadpool(work)
    except InvalidCredential as exc:
        errors = forms.field_errors(exc, spec)
        if "name" not in errors and name == "":
            errors["name"] = "must not be empty"
        return _edit_page(request, shown, values=typed, name=name, errors=errors, status=422)
    except AccessDenied as exc:
        # A developer moving a destination (test_url, host, ...) must send the secret again.
        errors = {"_form": f"{exc}. Enter the secret again below to change it."}
        return _edit_page(request, shown, values=typed, name=name, errors=errors, status=403)
    user.session.add_flash("ok", f"Saved changes to {updated.name}.")
    return RedirectResponse(detail_url(cid), status_code=303)


# -- Rotate ----------------------------------------------------------------------------------


def _rotate_page(
    request: Request, shown: Shown, *, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    errors = errors or {}
    views = (
        forms.field_views(shown.spec, errors=errors, secret=True) if shown.spec is not None else []
    )
    return render(
        request,
        "credential_rotate.html",
        {
            "active": "credentials",
            "shown": shown,
            "record": shown.record,
            "secret_views": views,
            "errors": errors,
        },
        status_code=status,
    )


@router.get("/ui/credentials/{credential_id}/rotate")
async def rotate_form(request: Request, user: User, credential_id: str) -> Response:
    shown = await _editable(request, user, credential_id)
    return _rotate_page(request, shown)


@router.post("/ui/credentials/{credential_id}/rotate")
async def rotate(request: Request, user_form: UserForm, credential_id: str) -> Response:
    user, form = user_form
    shown = await _editable(request, user, credential_id)
    cid = shown.record.id
    secret = forms.submitted(shown.spec, form, secret=True)[1] if shown.spec is not None else {}

    def work() -> Any:
        return user.caller.view.credentials.rotate(
            cid,
            tenant=user.caller.tenant_filter(),
            secret=secret,
            expected_version=_int(form, "expected_version"),
        )

    try:
        record = await run_in_threadpool(work)
    except InvalidCredential as exc:
        return _rotate_page(request, shown, errors=forms.field_errors(exc, shown.spec), status=422)
    except VersionConflict as exc:
        errors = {
            "_form": f"Someone changed the secret meanwhile (now version {exc.actual}). "
            "Nothing was rotated: reload the page and enter the new secret again."
        }
        return _rotate_page(request, shown, errors=errors, status=409)
    user.session.add_flash(
        "ok", f"Rotated the secret of {record.name}: version {record.current_version} is current."
    )
    return RedirectResponse(detail_url(cid), status_code=303)


# -- Roll back -------------------------------------------------------------------------------


@router.post("/ui/credentials/{credential_id}/rollback")
async def rollback(request: Request, user_form: UserForm, credential_id: str) -> Response:
    user, form = user_form
    await require(request, user, EDIT_ROLES)
    cid = credential_id_of(credential_id)
    version = _int(form, "version")
    if version is None:
        user.session.add_flash("error", "Choose a version to roll back to.")
        return RedirectResponse(detail_url(cid), status_code=303)

    def work() -> Any:
        return user.caller.view.credentials.rollback(
            cid,
            version,
            tenant=user.caller.tenant_filter(),
            expected_version=_int(form, "expected_version"),
        )

    try:
        record = await run_in_threadpool(work)
    except InvalidCredential as exc:
        text = "; ".join(p.message for p in exc.problems)
        user.session.add_flash("error", f"Not rolled back: {text}.")
    except VersionConflict as exc:
        user.session.add_flash(
            "error",
            f"Not rolled back: the secret changed meanwhile (now version {exc.actual}). "
            "Check the versions and try again.",
        )
    else:
        user.session.add_flash(
            "ok",
            f"Rolled back {record.name}: the secret of version {version} is current again "
            f"as version {record.current_version}.",
        )
    return RedirectResponse(detail_url(cid), status_code=303)


# -- Re-authorize ----------------------------------------------------------------------------


@router.post("/ui/credentials/{credential_id}/authorize")
async def authorize(request: Request, user_form: UserForm, credential_id: str) -> Response:
    user, _form = user_form
    await require(request, user, EDIT_ROLES)
    cid = credential_id_of(credential_id)
    try:
        return await run_in_threadpool(start_authorization, request, user, cid)
    except InvalidCredential as exc:
        text = "; ".join(f"{p.field} {p.message}" for p in exc.problems)
        user.session.add_flash("error", f"Cannot authorize: {text}.")
        return RedirectResponse(detail_url(cid), status_code=303)
