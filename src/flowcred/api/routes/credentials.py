"""``/api/credentials``: create, list, view, edit, rotate, roll back, delete, resolve, test."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from flowcred.api.deps import Admin, Caller, Editor, Resolver, Viewer, deny_tenant, get_broker
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
    TestResult,
    VersionPublic,
)
from flowcred.errors import FieldProblem, InvalidCredential
from flowcred.records import Credential
from flowcred.runtime.live_test import describe, http_check
from flowcred.store.credentials import UNSET

router = APIRouter(prefix="/api/credentials", tags=["credentials"], responses=ERROR_RESPONSES)

# Ids are database integers: anything outside 1..2**63-1 can name no credential.
CredentialId = Annotated[int, Path(ge=1, le=MAX_ID)]

MAX_PAGE = 500


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


def _tenant_for(caller: Caller, request: Request, credential_id: int) -> str:
    """The tenant to resolve ``credential_id`` in: the key's own, or for a platform key the
    credential's (an unknown id then fails as not found)."""
    if not caller.platform:
        return caller.key.tenant
    return get_broker(request).tenant_of(credential_id) or "default"


def _if_match(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise InvalidCredential(
            [FieldProblem("If-Match", "must be the credential's version number")]
        )
    return int(text)


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
    family: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[str | None, Query(pattern="^(active|expired|error)$")] = None,
    environment: Annotated[str | None, Query(max_length=64)] = None,
    tenantId: Annotated[str | None, Query(max_length=128)] = None,
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
    credential_id: CredentialId, request: Request, caller: Viewer
) -> CredentialPublic:
    """One credential's metadata (config without secret fields)."""
    record = caller.view.credentials.get(credential_id, tenant=caller.tenant_filter())
    return _public(request, [record])[0]


@router.get("/{credential_id}/versions", response_model=list[VersionPublic])
def list_versions(credential_id: CredentialId, caller: Viewer) -> list[VersionPublic]:
    """The kept secret versions (metadata only), newest first."""
    _, versions = caller.view.credentials.describe(credential_id, tenant=caller.tenant_filter())
    return [
        VersionPublic(
            version=v.version, createdAt=v.created_at, kekVersion=v.kek_version, current=v.current
        )
        for v in versions
    ]


@router.patch("/{credential_id}", response_model=CredentialPublic)
def update_credential(
    credential_id: CredentialId, body: CredentialUpdate, request: Request, caller: Editor
) -> CredentialPublic:
    """Edit the name, non-secret config (merged; null removes a key) or expiry."""
    # Only an expiresAt that was sent changes the expiry (null clears it); absent leaves it.
    expires_at = body.expiresAt if "expiresAt" in body.model_fields_set else UNSET
    record = caller.view.credentials.update(
        credential_id,
        tenant=caller.tenant_filter(),
        name=body.name,
        config=body.config,
        expires_at=expires_at,
    )
    return _public(request, [record])[0]


@router.put("/{credential_id}/secret", response_model=CredentialPublic)
def rotate_secret(
    credential_id: CredentialId,
    body: SecretRotate,
    request: Request,
    response: Response,
    caller: Editor,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> CredentialPublic:
    """Rotate: a new secret version under the same id. ``If-Match: <version>`` → 409 if stale."""
    record = caller.view.credentials.rotate(
        credential_id,
        tenant=caller.tenant_filter(),
        secret=body.secret,
        secret_value=body.secretValue,
        expected_version=_if_match(if_match),
    )
    response.headers["ETag"] = f'"{record.current_version}"'
    return _public(request, [record])[0]


@router.post("/{credential_id}/rollback", response_model=CredentialPublic)
def rollback_secret(
    credential_id: CredentialId,
    body: Rollback,
    request: Request,
    caller: Editor,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> CredentialPublic:
    """Make a kept older version current again."""
    record = caller.view.credentials.rollback(
        credential_id,
        body.version,
        tenant=caller.tenant_filter(),
        expected_version=_if_match(if_match),
    )
    return _public(request, [record])[0]


@router.delete("/{credential_id}", status_code=204)
def delete_credential(
    credential_id: CredentialId,
    caller: Admin,
    force: bool = False,
) -> Response:
    """Delete; 409 naming the flows while flows reference it, unless ``force=true`` (the broker's
    rule, the same for the CLI and the Python API)."""
    caller.view.credentials.delete(credential_id, tenant=caller.tenant_filter(), force=force)
    return Response(status_code=204)


def _tenant_without_read(caller: Caller, request: Request, credential_id: int) -> str | None:
    """:func:`_tenant_for` when it needs no database read; None otherwise."""
    if not caller.platform:
        return caller.key.tenant
    return get_broker(request).cached_tenant_of(credential_id)


@router.post("/{credential_id}/resolve", response_model=ResolveResponse)
async def resolve_credential(
    credential_id: CredentialId,
    request: Request,
    caller: Resolver,
    body: ResolveRequest | None = None,
) -> ResolveResponse:
    """Material for one run, audited with the key, client address and execution id.

    Async on purpose: the hot path (a cached credential) runs on the event loop and its audit
    event joins the next group commit, so every request in flight shares one disk flush instead
    of each holding a pool thread through its own.
    """
    tenant = _tenant_without_read(caller, request, credential_id)
    if tenant is None:
        tenant = await run_in_threadpool(_tenant_for, caller, request, credential_id)
    material = await caller.view.provider(tenant=tenant).aresolve(
        credential_id, execution_id=body.executionId if body else None
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


@router.post("/{credential_id}/test", response_model=TestResult)
def test_credential(credential_id: CredentialId, request: Request, caller: Editor) -> TestResult:
    """Live test: a GET to the credential's ``test_url`` with its material; a 2xx answer means
    ok. Audited once, with the outcome."""
    tenant = _tenant_for(caller, request, credential_id)
    ok, details = caller.view.provider(tenant=tenant).test(credential_id, http_check)
    status = details.get("status")
    return TestResult(
        ok=ok, status=status if isinstance(status, int) else None, message=describe(ok, details)
    )
