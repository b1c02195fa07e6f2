"""``/api/audit-events``: query the audit trail and verify its chain (admin only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError

from flowcred.api.deps import Admin, get_broker
from flowcred.api.routing import ApiRoute
from flowcred.api.schemas import (
    ERROR_RESPONSES,
    MAX_ID,
    AuditEventPage,
    AuditEventPublic,
    VerifyResponse,
)
from flowcred.audit import AuditChainBroken, AuditFilter
from flowcred.audit.events import ACTIONS

router = APIRouter(
    prefix="/api/audit-events", tags=["audit"], responses=ERROR_RESPONSES, route_class=ApiRoute
)


@router.get("", response_model=AuditEventPage)
def list_events(
    request: Request,
    caller: Admin,
    eventType: Annotated[str | None, Query(max_length=32)] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    result: Annotated[str | None, Query(pattern="^(success|failure|denied)$")] = None,
    resourceId: Annotated[str | None, Query(max_length=256)] = None,
    actor: Annotated[str | None, Query(max_length=256)] = None,
    executionId: Annotated[str | None, Query(max_length=256)] = None,
    tenantId: Annotated[str | None, Query(max_length=128)] = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    since: Annotated[datetime | None, Query(description="The CLI's name for `from`.")] = None,
    until: Annotated[datetime | None, Query(description="The CLI's name for `to`.")] = None,
    cursor: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditEventPage:
    """Events oldest first, filtered; page on with ``cursor`` = the last id seen.

    ``since`` / ``until`` are accepted as the CLI spells ``from`` / ``to``; giving both spellings
    of one bound is refused. Unknown parameters are refused (422) by the route class.
    """
    for a, b, name in ((from_, since, "since"), (to, until, "until")):
        if a is not None and b is not None:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", name), "msg": "give one spelling"}]
            )
    known_actions = set().union(*ACTIONS.values())
    for value, name, known in (
        (eventType, "eventType", ACTIONS.keys()),
        (action, "action", known_actions),
    ):
        if value is not None and value not in known:
            # A misspelt filter used to match nothing and look like an empty trail.
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", name), "msg": f"unknown {name}"}]
            )
    from_ = from_ or since
    to = to or until
    tenant = caller.tenant_filter()
    if tenantId is not None:
        if not caller.owns(tenantId):
            return AuditEventPage(items=[])
        tenant = tenantId
    flt = AuditFilter(
        event_type=eventType,
        action=action,
        result=result,
        resource_id=resourceId,
        actor=actor,
        execution_id=executionId,
        tenant=tenant,
        since=from_,
        until=to,
    )
    events = get_broker(request).audit.list(flt, after_id=cursor, limit=limit)
    items = [AuditEventPublic(**e.to_dict()) for e in events]
    return AuditEventPage(items=items, nextCursor=items[-1].id if len(items) == limit else None)


@router.get("/{event_id}/verify", response_model=VerifyResponse)
def verify_chain(
    event_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, caller: Admin
) -> VerifyResponse:
    """Recompute every hash and check every link up to ``event_id``.

    A platform admin gets the full answer. A tenant admin names one of its own events (any other
    id is 404, exactly like a missing one) and gets the answer scoped to its tenant: the whole
    chain up to there is still verified, but counts and ids are only of its own events, and a
    break at another tenant's event is reported at the tenant's next event (see
    :meth:`flowcred.audit.AuditLog.verify`).
    """
    audit = get_broker(request).audit
    tenant = caller.tenant_filter()
    if tenant is None:
        if event_id > audit.last_id():
            raise HTTPException(status_code=404, detail="audit event not found")
    else:
        event = audit.get(event_id)
        if event is None or event.tenant != tenant:
            raise HTTPException(status_code=404, detail="audit event not found")
    try:
        report = audit.verify(up_to=event_id, tenant=tenant)
    except AuditChainBroken as exc:
        report = exc.report
    return VerifyResponse(**report.to_dict())
