"""Deleting an auth config from the UI (admins only): a confirm page with the warning, then the
POST. Never forced: while flows bind the config the page names them (``#delete-blocked``) and
disables the button, and a POST sent anyway meets the broker's delete protection
(:class:`~flowcred.errors.CredentialInUse`), whose refusal is shown; nothing is deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from flowcred.errors import CredentialInUse
from flowcred.web.auth import ADMIN_ROLES, UiUser, User, UserForm, require
from flowcred.web.pages.credential_detail import credential_id_of, detail_url, find
from flowcred.web.routing import UiRoute
from flowcred.web.templating import render

router = APIRouter(route_class=UiRoute, include_in_schema=False)


def in_use_text(flows: Sequence[str]) -> str:
    """The delete-blocked reason: flow names only (identifiers, never secrets)."""
    count = len(flows)
    return (
        f"In use by {count} flow{'' if count == 1 else 's'}: {', '.join(flows)}. "
        "Remove the binding first."
    )


def _delete_context(request: Request, user: UiUser, cid: int) -> dict[str, Any]:
    shown = find(request, user, cid)
    flows = user.caller.view.bindings.flows_using(shown.record)
    return {
        "active": "credentials",
        "shown": shown,
        "record": shown.record,
        "flows": flows,
        "blocked": in_use_text(flows) if flows else "",
    }


@router.get("/ui/credentials/{credential_id}/delete")
async def delete_form(request: Request, user: User, credential_id: str) -> Response:
    await require(request, user, ADMIN_ROLES)
    cid = credential_id_of(credential_id)
    context = await run_in_threadpool(_delete_context, request, user, cid)
    return render(request, "credential_delete.html", context)


@router.post("/ui/credentials/{credential_id}/delete")
async def delete(request: Request, user_form: UserForm, credential_id: str) -> Response:
    """Delete, never forced: while flows bind the config the broker refuses (CredentialInUse)
    and the refusal is shown; nothing is deleted."""
    user, _form = user_form
    await require(request, user, ADMIN_ROLES)
    cid = credential_id_of(credential_id)

    def work() -> Any:
        return user.caller.view.credentials.delete(cid, tenant=user.caller.tenant_filter())

    try:
        record = await run_in_threadpool(work)
    except CredentialInUse as exc:
        user.session.add_flash("error", "Not deleted. " + in_use_text(exc.flows))
        return RedirectResponse(detail_url(cid), status_code=303)
    user.session.add_flash("ok", f"Deleted {record.name}.")
    return RedirectResponse("/ui/credentials", status_code=303)
