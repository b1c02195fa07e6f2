"""The Auth Configs list: search, filters, status badges, last use, connections, paging.

It reads through the signed-in caller's broker view, so a tenant key sees its own tenant's
configs only and the read is audited as that key (``credential``/``listed``), as in the REST API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from flowcred.api.deps import get_broker
from flowcred.credential_status import STATUS_FILTERS
from flowcred.errors import InvalidCredential
from flowcred.records import Credential
from flowcred.web.auth import User
from flowcred.web.routing import UiRoute
from flowcred.web.templating import render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

PAGE_SIZE = 25

#: How the Auth Configs document names each family.
FAMILY_LABELS: dict[str, str] = {
    "oauth2": "OAuth2 Provider",
    "connector": "Native Connector",
    "custom": "Custom",
    "messaging": "Messaging",
    "service_account": "Service Account",
}

STATUS_LABELS: dict[str, str] = {
    "active": "Active",
    "expired": "Expired",
    "error": "Error",
    "expiring_soon": "Expiring soon",
}


def status_key(record: Credential) -> str:
    """The badge a credential shows: its status, or *expiring soon* while active."""
    if record.status == "active" and record.expiring_soon:
        return "expiring_soon"
    return str(record.status)


def _clean(value: str | None, limit: int = 128) -> str | None:
    value = (value or "").strip()
    return value[:limit] or None


def rows_for(request: Request, records: list[Credential]) -> list[dict[str, Any]]:
    """What the table shows of each record (never a secret: records hold none)."""
    broker = get_broker(request)
    counts = broker.bindings.connections(records)
    rows = []
    for record in records:
        try:
            spec = broker.catalog.get(record.type)
            title, provider = spec.title, spec.provider
        except InvalidCredential:
            title, provider = record.type, None
        rows.append(
            {
                "record": record,
                "family_label": FAMILY_LABELS.get(record.family, record.family),
                "type_title": title,
                "provider": provider or title,
                "status": status_key(record),
                "status_label": STATUS_LABELS[status_key(record)],
                "connections": counts.get(record.id, 0),
            }
        )
    return rows


@router.get("/ui/credentials")
def credential_list(
    request: Request,
    user: User,
    q: str | None = None,
    family: str | None = None,
    type: str | None = None,
    status: str | None = None,
    environment: str | None = None,
    cursor: int | None = None,
) -> Response:
    broker = get_broker(request)
    filters = {
        "q": _clean(q),
        "family": family if family in FAMILY_LABELS else None,
        "type": _clean(type, 64),
        "status": status if status in STATUS_FILTERS else None,
        "environment": _clean(environment, 64),
    }
    error = ""
    records: list[Credential] = []
    try:
        records = user.caller.view.credentials.list(
            tenant=user.caller.tenant_filter(),
            environment=filters["environment"],
            type=filters["type"],
            family=filters["family"],
            status=filters["status"],
            search=filters["q"],
            after_id=cursor if cursor and cursor > 0 else None,
            limit=PAGE_SIZE + 1,
        )
    except InvalidCredential as exc:
        error = "; ".join(f"{p.field} {p.message}" for p in exc.problems)
    page = records[:PAGE_SIZE]
    next_cursor = page[-1].id if len(records) > PAGE_SIZE and page else None
    query = {k: v for k, v in filters.items() if v}
    catalog = broker.catalog
    types = sorted(((n, catalog.get(n).title) for n in catalog.names()), key=lambda p: p[1].lower())
    return render(
        request,
        "credential_list.html",
        {
            "active": "credentials",
            "rows": rows_for(request, page),
            "filters": filters,
            "query": query,
            "next_cursor": next_cursor,
            "paged": bool(cursor),
            "families": FAMILY_LABELS,
            "statuses": STATUS_LABELS,
            "types": types,
            "error": error,
        },
    )
