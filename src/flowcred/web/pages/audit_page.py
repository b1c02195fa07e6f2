"""The audit trail (admins): filters, paging newest first, and Verify chain with its result.

The same rules as ``/api/audit-events``: admins only (others get the 403 page, audited), a tenant
admin sees its own tenant's events and gets the tenant-scoped verification, and an unknown event
type or action is an error on the page rather than an empty list that looks like a quiet trail.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from flowcred.api.deps import get_broker
from flowcred.audit import AuditChainBroken, AuditFilter
from flowcred.audit.events import ACTIONS
from flowcred.web.auth import ADMIN_ROLES, UiUser, User, UserForm, require
from flowcred.web.routing import UiRoute
from flowcred.web.templating import render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

PAGE_SIZE = 50
RESULTS = ("success", "failure", "denied")
FILTER_NAMES = ("event_type", "action", "result", "actor", "resource_id", "since", "until")


def _when(text: str) -> datetime:
    """A ``datetime-local`` input (``2026-12-03T12:30``), read as UTC."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def parse_filters(params: dict[str, str]) -> tuple[dict[str, str], dict[str, str], AuditFilter]:
    """``(shown values, errors by field, filter)`` from the query; bad values are errors."""
    shown = {name: (params.get(name) or "").strip()[:256] for name in FILTER_NAMES}
    errors: dict[str, str] = {}
    known_actions = set().union(*ACTIONS.values())
    if shown["event_type"] and shown["event_type"] not in ACTIONS:
        errors["event_type"] = "is not an event type of the trail"
    if shown["action"] and shown["action"] not in known_actions:
        errors["action"] = "is not an action of the trail"
    if shown["result"] and shown["result"] not in RESULTS:
        errors["result"] = "must be success, failure or denied"
    bounds: dict[str, datetime | None] = {"since": None, "until": None}
    for name in bounds:
        if shown[name]:
            try:
                bounds[name] = _when(shown[name])
            except ValueError:
                errors[name] = "must be a date and time"
    flt = AuditFilter(
        event_type=shown["event_type"] or None,
        action=shown["action"] or None,
        result=shown["result"] or None,
        actor=shown["actor"] or None,
        resource_id=shown["resource_id"] or None,
        since=bounds["since"],
        until=bounds["until"],
    )
    return shown, errors, flt


def _page(
    request: Request, user: UiUser, params: dict[str, str], verify: dict[str, Any] | None
) -> Response:
    broker = get_broker(request)
    shown, errors, flt = parse_filters(params)
    tenant = user.caller.tenant_filter()
    events: list[Any] = []
    cursor_text = params.get("cursor", "")
    cursor = int(cursor_text) if cursor_text.isascii() and cursor_text.isdigit() else None
    if not errors:
        flt = replace(flt, tenant=tenant)
        events = broker.audit.list(flt, after_id=cursor, limit=PAGE_SIZE + 1, newest_first=True)
    page = events[:PAGE_SIZE]
    next_cursor = page[-1].id if len(events) > PAGE_SIZE and page else None
    query = {k: v for k, v in shown.items() if v}
    return render(
        request,
        "audit.html",
        {
            "active": "audit",
            "events": page,
            "filters": shown,
            "errors": errors,
            "query": query,
            "next_cursor": next_cursor,
            "paged": cursor is not None,
            "event_types": sorted(ACTIONS),
            "actions": sorted(set().union(*ACTIONS.values())),
            "results": RESULTS,
            "verify": verify,
        },
        status_code=422 if errors else 200,
    )


@router.get("/ui/audit")
async def audit_page(request: Request, user: User) -> Response:
    await require(request, user, ADMIN_ROLES)
    params = dict(request.query_params)
    return await run_in_threadpool(_page, request, user, params, None)


def verify_chain(request: Request, user: UiUser) -> dict[str, Any]:
    """The REST verify's answer up to the last event (scoped to a tenant admin's tenant)."""
    audit = get_broker(request).audit
    tenant = user.caller.tenant_filter()
    last = audit.last_id()
    if tenant is not None:
        own = audit.list(AuditFilter(tenant=tenant), limit=1, newest_first=True)
        last = own[0].id if own else 0
    if last == 0:
        return {"ok": True, "checked": 0, "message": "The trail is empty.", "first_invalid": None}
    try:
        report = audit.verify(up_to=last, tenant=tenant)
    except AuditChainBroken as exc:
        report = exc.report
    return {
        "ok": report.is_valid,
        "checked": report.total_checked,
        "message": report.message,
        "first_invalid": report.first_invalid_id,
        "kind": report.kind,
    }


@router.post("/ui/audit/verify")
async def audit_verify(request: Request, user_form: UserForm) -> Response:
    user, form = user_form
    await require(request, user, ADMIN_ROLES)
    params = _filters_from(form)

    def work() -> Response:
        return _page(request, user, params, verify_chain(request, user))

    return await run_in_threadpool(work)


def _filters_from(form: FormData) -> dict[str, str]:
    """The filters the page had, carried through the verify form so the list stays as it was."""
    return {name: str(form.get(name) or "") for name in FILTER_NAMES}
