"""``/api/types``: the credential-type catalog."""

from __future__ import annotations

from fastapi import APIRouter, Request

from flowcred.api.deps import Anyone, get_broker
from flowcred.api.schemas import ERROR_RESPONSES, FieldPublic, TypePublic

router = APIRouter(prefix="/api/types", tags=["types"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[TypePublic])
def list_types(request: Request, _caller: Anyone) -> list[TypePublic]:
    """Every credential type with its fields (which are secret, required, defaults, formats)."""
    catalog = get_broker(request).catalog
    return [
        TypePublic(
            name=t.name,
            title=t.title,
            family=t.family,
            provider=t.provider,
            description=t.description,
            aliases=list(t.aliases),
            composite=t.is_composite,
            fields=[
                FieldPublic(
                    name=f.name,
                    label=f.label,
                    kind=f.kind,
                    secret=f.secret,
                    required=f.required,
                    default=f.default,
                    enum=f.enum,
                    format=f.format,
                    help=f.help,
                )
                for f in t.fields
            ],
        )
        for t in (catalog.get(name) for name in catalog.names())
    ]
