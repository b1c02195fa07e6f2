"""``/api/credentials``: create, list, view, edit, rotate, roll back, delete, resolve (the live
tests are in :mod:`flowcred.api.routes.connection_tests`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from flowcred.api.deps import Admin, Caller, Editor, Resolver, Viewer, deny_tenant, get_broker
from flowcred.api.routing import ApiRoute
from flowcred.api.schemas import (
    ERROR_RESPONSES,
    MAX_ID,
    CredentialCreate,
    CredentialCreated,
    CredentialPage,
    CredentialPublic,
    CredentialUpdate,
    ResolveRequest,
    ResolveResponse,
    Rollback,
    SecretRotate,
    VersionPublic,
)
from flowcred.catalog import CredentialFamily
from flowcred.credential_status import STATUS_FILTERS
from flowcred.errors import FieldProblem, InvalidCredential
from flowcred.records import Credential
from flowcred.store.credentials import UNSET

# The filters credential_status.py defines; the rule itself lives there, not here.
STATUS_PATTERN = "^(" + "|".join(STATUS_FILTERS) + ")$"

router = APIRouter(
    prefix="/api/credentials",
    tags=["credentials"],
    responses=ERROR_RESPONSES,
    route_class=ApiRoute,
)

# Ids are database integers: anything outside 1..2**63-1 can name no credential.

MAX_PAGE = 500

_REF_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"


@dataclass(frozen=True)
class Target:
    """The credential a path names: an id (ASCII digits) or a handle, looked up in
    ``environment`` and, for a platform key, in ``tenant`` (``tenantId``; default ``default``)."""

    ref: int | str
    environment: str
    tenant: str | None

    def scope(self, caller: Caller) -> str | None:
        """The tenant to look in: the key's own, or what a platform key asked for (None: any,
        which for a handle means the default tenant)."""
        return caller.key.tenant if not caller.platform else self.tenant


async def _target(
    credential_id: Annotated[
        str,
        Path(
            pattern=_REF_PATTERN,
            description="The credential's id, or its handle (looked up in `environment`).",
        ),
    ],
    environment: Annotated[
        str,
        Query(
            pattern=r"^[A-Za-z0-9._-]{1,64}$",
            description="Environment of a handle reference (ignored for an id).",
        ),
    ] = "default",
    tenantId: Annotated[
        str | None,
        Query(
            max_length=128,
            description="Tenant of a handle reference, for a platform key (ignored otherwise).",
        ),
    ] = None,
) -> Target:
    # Async so FastAPI runs it on the loop (a sync dependency costs resolve a thread hop).
    # ASCII digits only (the path pattern): "²" is a digit to str.isdigit() but names nothing.
    ref: int | str = int(credential_id) if credential_id.isdigit() else credential_id
    return Target(ref=ref, environment=environment, tenant=tenantId)


CredentialRef = Annotated[Target, Depends(_target)]


def _etag(public: CredentialPublic) -> str:
    """A strong ETag of the representation: ``"<version>-<digest>"``. The version comes first so
    the value also serves as an ``If-Match`` precondition on rotate and rollback (which take the
    bare ``"<version>"`` that rotate answers with too)."""
    digest = hashlib.sha256(public.model_dump_json().encode()).hexdigest()[:16]
    return f'"{public.currentVersion}-{digest}"'


def _none_match(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _public(request: Request, records: list[Credential]) -> list[CredentialPublic]:
    broker = get_broker(request)
    counts = broker.bindings.connections(records)
    out = []
    for record in records:
        try:
            provider = broker.catalog.get(record.type).provider
        except InvalidCredential:
            provider = None
        out.append(CredentialPublic.of(record, provider=provider, connections=counts[record.id]))
    return out


def tenant_for(caller: Caller, request: Request, target: Target) -> str:
    """The tenant to resolve ``target`` in: the key's own, or for a platform key the one asked
    for, else the credential's (an unknown id then fails as not found)."""
    if not caller.platform:
        return caller.key.tenant
    if target.tenant is not None:
        return target.tenant
    if isinstance(target.ref, str) or not 0 < target.ref <= MAX_ID:
        return "default"
    return get_broker(request).tenant_of(target.ref) or "default"


def _if_match(value: str | None) -> int | None:
    """The version an ``If-Match`` names: ``N`` or an ETag ``"N-digest"`` of this API."""
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    number = text.split("-", 1)[0]
    if not (number.isascii() and number.isdigit() and len(number) <= 18):
        # A validation error (not InvalidCredential), so the route class audits the refusal.
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("header", "If-Match"),
                    "msg": "must be the credential's version number or ETag",
                }
            ]
        )
    return int(number)


@router.post("", status_code=201, response_model=CredentialCreated)
def create_credential(
    body: CredentialCreate, request: Request, caller: Editor
) -> CredentialCreated:
    """Create a credential (also accepts the Flow Studio ``type: "messaging"`` + ``channel``)."""
    if body.type == "messaging":
        if not body.channel:
            raise InvalidCredential([FieldProblem("channel", "is required when type is messaging")])
        type_name = body.channel
    else:
        type_name = body.type
    tenant = body.tenantId or (caller.key.tenant if not caller.platform else "default")
    if not caller.owns(tenant):
        deny_tenant(caller, request, tenant)
    record = caller.view.credentials.create(
        name=body.name,
        type=type_name,
        tenant=tenant,
        environment=body.environment or "default",
        handle=body.handle,
        config=body.config,
        secret=body.secret,
        secret_value=body.secretValue,
        expires_at=body.expiresAt,
    )
    return CredentialCreated(
        credentialId=record.id, name=record.name, type=body.type, createdAt=record.created_at
    )


@router.get("", response_model=CredentialPage)
def list_credentials(
    request: Request,
    caller: Viewer,
    type: Annotated[str | None, Query(max_length=64)] = None,
    family: CredentialFamily | None = None,
    status: Annotated[str | None, Query(pattern=STATUS_PATTERN)] = None,
    environment: Annotated[str | None, Query(max_length=64)] = None,
    tenantId: Annotated[str | None, Query(max_length=128)] = None,
    search: Annotated[
        str | None, Query(max_length=128, description="Part of the name or handle.")
    ] = None,
    cursor: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> CredentialPage:
    """List credentials with type, family, provider, status, last use and connections."""
    tenant = caller.tenant_filter()
    if tenantId is not None:
        if not caller.owns(tenantId):
            return CredentialPage(items=[])
        tenant = tenantId
    records = caller.view.credentials.list(
        tenant=tenant,
        environment=environment,
        type=type,
        family=family,
        status=status,
        search=search or None,
        after_id=cursor,
        limit=limit + 1,
    )
    page = records[:limit]
    more = len(records) > limit
    return CredentialPage(
        items=_public(request, page), nextCursor=page[-1].id if more and page else None
    )


@router.get("/{credential_id}", response_model=CredentialPublic)
def get_credential(
    target: CredentialRef,
    request: Request,
    response: Response,
    caller: Viewer,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> CredentialPublic | Response:
    """One credential's metadata (config without secret fields), with an ``ETag``; a matching
    ``If-None-Match`` answers 304 without a body."""
    record = caller.view.credentials.get(
        target.ref, tenant=target.scope(caller), environment=target.environment
    )
    public = _public(request, [record])[0]
    etag = _etag(public)
    if _none_match(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return public


@router.get("/{credential_id}/versions", response_model=list[VersionPublic])
def list_versions(target: CredentialRef, caller: Viewer) -> list[VersionPublic]:
    """The kept secret versions (metadata only), newest first."""
    _, versions = caller.view.credentials.describe(
        target.ref, tenant=target.scope(caller), environment=target.environment
    )
    return [
        VersionPublic(
            version=v.version, createdAt=v.created_at, kekVersion=v.kek_version, current=v.current
        )
        for v in versions
    ]


@router.patch("/{credential_id}", response_model=CredentialPublic)
def update_credential(
    target: CredentialRef, body: CredentialUpdate, request: Request, caller: Editor
) -> CredentialPublic:
    """Edit the name, non-secret config (merged; null removes a key) or expiry; with
    ``secretValue``/``secret`` also rotate, in one write. A developer key changing a destination
    field (``test_url``, ``host``, ``token_url``, ...) must send the secret: 403 otherwise."""
    # Only an expiresAt that was sent changes the expiry (null clears it); absent leaves it.
    expires_at = body.expiresAt if "expiresAt" in body.model_fields_set else UNSET
    record = caller.view.credentials.update(
        target.ref,
        tenant=target.scope(caller),
        environment=target.environment,
        name=body.name,
        config=body.config,
        expires_at=expires_at,
        secret=body.secret,
        secret_value=body.secretValue,
    )
    return _public(request, [record])[0]


@router.put("/{credential_id}/secret", response_model=CredentialPublic)
def rotate_secret(
    target: CredentialRef,
    body: SecretRotate,
    request: Request,
    response: Response,
    caller: Editor,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> CredentialPublic:
    """Rotate: a new secret version under the same id. ``If-Match: <version>`` → 409 if stale."""
    record = caller.view.credentials.rotate(
        target.ref,
        tenant=target.scope(caller),
        environment=target.environment,
        secret=body.secret,
        secret_value=body.secretValue,
        expected_version=_if_match(if_match),
    )
    response.headers["ETag"] = f'"{record.current_version}"'
    return _public(request, [record])[0]


@router.post("/{credential_id}/rollback", response_model=CredentialPublic)
def rollback_secret(
    target: CredentialRef,
    body: Rollback,
    request: Request,
    caller: Editor,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> CredentialPublic:
    """Make a kept older version current again."""
    record = caller.view.credentials.rollback(
        target.ref,
        body.version,
        tenant=target.scope(caller),
        environment=target.environment,
        expected_version=_if_match(if_match),
    )
    return _public(request, [record])[0]


@router.delete("/{credential_id}", status_code=204)
def delete_credential(
    target: CredentialRef,
    caller: Admin,
    force: bool = False,
) -> Response:
    """Delete; 409 naming the flows while flows reference it, unless ``force=true`` (the broker's
    rule, the same for the CLI and the Python API)."""
    caller.view.credentials.delete(
        target.ref, tenant=target.scope(caller), environment=target.environment, force=force
    )
    return Response(status_code=204)


def _tenant_without_read(caller: Caller, request: Request, target: Target) -> str | None:
    """:func:`tenant_for` when it needs no database read; None otherwise."""
    if not caller.platform:
        return caller.key.tenant
    if target.tenant is not None:
        return target.tenant
    if isinstance(target.ref, str) or not 0 < target.ref <= MAX_ID:
        return "default"
    return get_broker(request).cached_tenant_of(target.ref)


@router.post("/{credential_id}/resolve", response_model=ResolveResponse)
async def resolve_credential(
    target: CredentialRef,
    request: Request,
    response: Response,
    caller: Resolver,
    body: ResolveRequest | None = None,
) -> ResolveResponse:
    """Material for one run, audited with the key, client address and execution id.

    Answered with ``Cache-Control: no-store``: the body holds secrets, and no cache between the
    engine and flowcred may keep it.

    Async on purpose: the hot path (a cached credential) runs on the event loop and its audit
    event joins the next group commit, so every request in flight shares one disk flush instead
    of each holding a pool thread through its own.
    """
    response.headers["Cache-Control"] = "no-store"
    tenant = _tenant_without_read(caller, request, target)
    if tenant is None:
        tenant = await run_in_threadpool(tenant_for, caller, request, target)
    material = await caller.view.provider(tenant=tenant, environment=target.environment).aresolve(
        target.ref, execution_id=body.executionId if body else None
    )
    return ResolveResponse(
        credentialId=material.credential_id,
        handle=material.handle,
        type=material.type,
        version=material.version,
        headers=material.reveal_headers(),
        query=material.reveal_query(),
        cookies=material.reveal_cookies(),
        fields=material.reveal_fields(),
        expiresAt=material.expires_at,
    )
