"""``/api/types``: the credential-type catalog."""

from __future__ import annotations

from fastapi import APIRouter, Request

from flowcred.api.deps import Anyone, get_broker
from flowcred.api.routing import ApiRoute
from flowcred.api.schemas import ERROR_RESPONSES, TypePublic

router = APIRouter(
    prefix="/api/types", tags=["types"], responses=ERROR_RESPONSES, route_class=ApiRoute
)


@router.get("", response_model=list[TypePublic])
def list_types(request: Request, _caller: Anyone) -> list[TypePublic]:
    """Every credential type with its fields (which are secret, required, defaults, formats)."""
    catalog = get_broker(request).catalog
    return [TypePublic(**catalog.get(name).public_dict()) for name in catalog.names()]
