"""The credential-type catalog (every signed-in role): each type with its family, category and
connection test, and one page per type with its fields. A type holds no secret (secret fields
have no default), so nothing here needs hiding."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from flowcred.api.deps import get_broker
from flowcred.connectors.runner import live_test_of
from flowcred.errors import CredentialNotFound, InvalidCredential
from flowcred.web.auth import User
from flowcred.web.pages.credential_list import FAMILY_LABELS
from flowcred.web.routing import UiRoute
from flowcred.web.templating import render

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@router.get("/ui/types")
def types_page(request: Request, user: User) -> Response:
    catalog = get_broker(request).catalog
    rows: list[dict[str, Any]] = []
    for name in catalog.names():
        spec = catalog.get(name)
        rows.append(
            {
                "spec": spec,
                "family_label": FAMILY_LABELS.get(spec.family, spec.family),
                "live_test": live_test_of(spec),
                "search": " ".join(
                    str(v)
                    for v in (spec.title, spec.name, spec.provider, spec.family, spec.category)
                    if v
                ),
            }
        )
    rows.sort(key=lambda r: str(r["spec"].title).lower())
    return render(request, "types.html", {"active": "types", "rows": rows})


@router.get("/ui/types/{type_name}")
def type_page(request: Request, user: User, type_name: str) -> Response:
    catalog = get_broker(request).catalog
    try:
        spec = catalog.get(type_name)
    except InvalidCredential:
        raise CredentialNotFound(type_name) from None
    return render(
        request,
        "type_detail.html",
        {
            "active": "types",
            "spec": spec,
            "type_info": spec.public_dict(),
            "family_label": FAMILY_LABELS.get(spec.family, spec.family),
            "live_test": live_test_of(spec),
        },
    )
