"""``/api/bindings``: register which credentials a flow references (its connections)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from flowcred.api.deps import Editor, deny_tenant, get_broker
from flowcred.api.routing import ApiRoute
from flowcred.api.schemas import ERROR_RESPONSES, MAX_ID
from flowcred.audit.events import FLOW

router = APIRouter(
    prefix="/api/bindings", tags=["bindings"], responses=ERROR_RESPONSES, route_class=ApiRoute
)

FlowName = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9._:/-]+$")]


class BindingsPut(BaseModel):
    """The flow's credential references: ids or handles (replaces what was registered)."""

    model_config = ConfigDict(extra="forbid")

    references: list[
        Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
        | Annotated[str, Field(min_length=1, max_length=128)]
    ] = Field(max_length=1000)
    tenantId: str | None = Field(default=None, max_length=128)


class BindingPublic(BaseModel):
    flow: str
    tenantId: str
    references: list[int | str]
    updatedAt: str


@router.put("/{flow}", response_model=BindingPublic)
def put_bindings(
    flow: FlowName, body: BindingsPut, request: Request, caller: Editor
) -> BindingPublic:
    """Register ``flow``'s references; each referencing flow counts as a connection."""
    tenant = body.tenantId or (caller.key.tenant if not caller.platform else "default")
    if not caller.owns(tenant):
        deny_tenant(caller, request, tenant)
    broker = get_broker(request)
    binding = broker.bindings.put(flow, tenant, body.references)
    broker.audit_event(
        caller.view.access,
        FLOW,
        "bindings_registered",
        "success",
        tenant=tenant,
        resource_type="flow",
        resource_id=flow,
        details={"references": [str(r) for r in binding.references]},
    )
    data = binding.to_dict()
    return BindingPublic(**data)


@router.get("", response_model=list[BindingPublic])
def list_bindings(request: Request, caller: Editor) -> list[BindingPublic]:
    """Registered flows and their references (this key's tenant, or all for a platform key)."""
    items = get_broker(request).bindings.list(caller.tenant_filter())
    return [BindingPublic(**b.to_dict()) for b in items]
