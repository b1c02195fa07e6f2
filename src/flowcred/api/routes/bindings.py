"""``/api/bindings``: register which credentials a flow references (its connections).

The rules (references must name credentials of the tenant, a platform key must say which tenant,
every change audited) are the broker's (:class:`flowcred.flow_bindings.Bindings`); this module only
maps HTTP onto it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from flowcred.api.deps import Caller, Editor, deny_tenant
from flowcred.api.routing import ApiRoute
from flowcred.api.schemas import ERROR_RESPONSES, MAX_ID
from flowcred.errors import FieldProblem, InvalidCredential

router = APIRouter(
    prefix="/api/bindings", tags=["bindings"], responses=ERROR_RESPONSES, route_class=ApiRoute
)

FlowName = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9._:/-]+$")]
TenantQuery = Annotated[str | None, Query(max_length=128)]


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


def _tenant(caller: Caller, request: Request, *given: str | None) -> str:
    """The tenant a binding call acts in: the one named, else the key's; a platform key (tenant
    ``*``) must name one (422 otherwise)."""
    named = [t for t in given if t is not None]
    if len(set(named)) > 1:
        raise InvalidCredential([FieldProblem("tenantId", "query and body name different tenants")])
    if named:
        tenant = named[0]
    elif caller.platform:
        raise InvalidCredential(
            [FieldProblem("tenantId", "a platform key must say which tenant (tenantId)")]
        )
    else:
        tenant = caller.key.tenant
    if not caller.owns(tenant):
        deny_tenant(caller, request, tenant)
    return tenant


@router.put("/{flow}", response_model=BindingPublic)
def put_bindings(
    flow: FlowName,
    body: BindingsPut,
    request: Request,
    caller: Editor,
    tenantId: TenantQuery = None,
) -> BindingPublic:
    """Register ``flow``'s references; each referencing flow counts as a connection. Unknown
    references → 422 naming them."""
    tenant = _tenant(caller, request, body.tenantId, tenantId)
    binding = caller.view.bindings.set(flow, body.references, tenant=tenant)
    return BindingPublic(**binding.to_dict())


@router.delete("/{flow}", status_code=204)
def delete_bindings(
    flow: FlowName, request: Request, caller: Editor, tenantId: TenantQuery = None
) -> Response:
    """Unregister ``flow`` (idempotent: 204 whether or not it was registered)."""
    tenant = _tenant(caller, request, tenantId)
    caller.view.bindings.delete(flow, tenant=tenant)
    return Response(status_code=204)


@router.get("", response_model=list[BindingPublic])
def list_bindings(caller: Editor) -> list[BindingPublic]:
    """Registered flows and their references (this key's tenant, or all for a platform key)."""
    items = caller.view.bindings.list(tenant=caller.tenant_filter())
    return [BindingPublic(**b.to_dict()) for b in items]
