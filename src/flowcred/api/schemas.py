"""Request and response models of the REST API (DESIGN §4).

Requests that carry a secret (``CredentialCreate``, ``CredentialUpdate``, ``SecretRotate``) are
separate from every response model, and no response model except ``ResolveResponse`` has an
attribute that could hold a secret, so a route cannot leak one by returning the wrong object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from flowcred.records import Credential

_NAME = Field(min_length=1, max_length=256)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- credentials -----------------------------------------------------------------------------


class CredentialCreate(_Request):
    """Create a credential. ``type`` names a catalog type, or is ``"messaging"`` with ``channel``
    naming the catalog type (the Flow Studio request). Give ``secretValue`` (the one secret, or the
    JSON text of a composite secret) or ``secret`` (an object of the type's secret fields)."""

    name: str = _NAME
    type: str = Field(min_length=1, max_length=64)
    channel: str | None = Field(default=None, max_length=64)
    tenantId: str | None = Field(default=None, max_length=128)
    environment: str | None = Field(default=None, max_length=64)
    handle: str | None = Field(default=None, max_length=128)
    config: dict[str, Any] | None = None
    secretValue: str | None = Field(default=None, max_length=65536)
    secret: dict[str, Any] | None = None
    expiresAt: datetime | None = None


class CredentialCreated(BaseModel):
    """Exactly the Flow Studio response: the id to place in node configs; never the secret."""

    credentialId: int
    name: str
    type: str
    createdAt: datetime


class CredentialPublic(BaseModel):
    """A credential's metadata, safe for any role that may view it."""

    credentialId: int
    name: str
    handle: str
    type: str
    family: str
    provider: str | None
    status: str
    tenantId: str
    environment: str
    config: dict[str, Any]
    currentVersion: int
    connections: int
    createdAt: datetime
    updatedAt: datetime
    lastUsedAt: datetime | None
    expiresAt: datetime | None

    @classmethod
    def of(cls, record: Credential, *, provider: str | None, connections: int) -> CredentialPublic:
        return cls(
            credentialId=record.id,
            name=record.name,
            handle=record.handle,
            type=record.type,
            family=record.family,
            provider=provider,
            status=record.status,
            tenantId=record.tenant,
            environment=record.environment,
            config=record.config,
            currentVersion=record.current_version,
            connections=connections,
            createdAt=record.created_at,
            updatedAt=record.updated_at,
            lastUsedAt=record.last_used_at,
            expiresAt=record.expires_at,
        )


class CredentialPage(BaseModel):
    items: list[CredentialPublic]
    nextCursor: int | None = None


class CredentialUpdate(_Request):
    """Edit non-secret fields: ``config`` is merged (a null value removes a key).

    ``secretValue`` or ``secret`` (as in :class:`SecretRotate`) rotates in the same write. A key
    that may not resolve (developer) must send one to change a destination field such as
    ``test_url``, ``host`` or ``token_url``; without it the request is refused with 403.
    """

    name: str | None = Field(default=None, min_length=1, max_length=256)
    config: dict[str, Any] | None = None
    expiresAt: datetime | None = None
    secretValue: str | None = Field(default=None, max_length=65536)
    secret: dict[str, Any] | None = None


class SecretRotate(_Request):
    """A new secret: ``secretValue`` (Flow Studio) or ``secret`` (the type's secret fields)."""

    secretValue: str | None = Field(default=None, max_length=65536)
    secret: dict[str, Any] | None = None


class Rollback(_Request):
    # Strict: a JSON ``true`` is not version 1; bounded: a database integer is 64-bit.
    version: StrictInt = Field(ge=1, le=2**63 - 1)


class VersionPublic(BaseModel):
    version: int
    createdAt: datetime
    kekVersion: int
    current: bool


# -- resolve -----------------------------------------------------------------------------------


class ResolveRequest(_Request):
    executionId: str | None = Field(default=None, max_length=256)


class ResolveResponse(BaseModel):
    """The material for one run: the only response that carries secret values."""

    credentialId: int
    handle: str
    type: str
    version: int
    headers: dict[str, str]
    query: dict[str, str]
    cookies: dict[str, str]
    fields: dict[str, Any]
    expiresAt: datetime | None


class TestResult(BaseModel):
    """The outcome of a live test; never the material used. ``status`` is the HTTP status an
    ``http`` test got (null for other families); ``message`` is scrubbed of the secret."""

    ok: bool
    status: int | None
    message: str
    latencyMs: float
    checkedAt: datetime


# -- catalog ------------------------------------------------------------------------------------


class FieldPublic(BaseModel):
    name: str
    label: str
    kind: str
    secret: bool
    destination: bool = False
    required: bool
    default: Any = None
    enum: list[str] | None = None
    format: str | None = None
    help: str = ""


class TypePublic(BaseModel):
    name: str
    title: str
    family: str
    provider: str | None
    description: str
    aliases: list[str]
    composite: bool
    fields: list[FieldPublic]
    # The OAuth block (grant, URL templates, default scopes, PKCE, auth method, keep) of types
    # whose tokens flowcred obtains; see CredentialType.public_dict. Holds no secret.
    oauth: dict[str, Any] | None = None


# -- audit ---------------------------------------------------------------------------------------


class ActorPublic(BaseModel):
    kind: str
    id: str
    name: str


class AuditEventPublic(BaseModel):
    id: int
    createdAt: datetime
    eventType: str
    action: str
    result: str
    actor: ActorPublic
    source: str | None
    tenant: str | None
    resourceType: str | None
    resourceId: str | None
    executionId: str | None
    details: dict[str, Any]
    keyVersion: int
    previousHash: str
    hash: str


class AuditEventPage(BaseModel):
    items: list[AuditEventPublic]
    nextCursor: int | None = None


class VerifyResponse(BaseModel):
    """Flowker's verify shape, plus how the chain broke."""

    isValid: bool
    firstInvalidId: int | None
    totalChecked: int
    message: str
    kind: str | None = None


# -- errors and health ---------------------------------------------------------------------------


class ProblemField(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[ProblemField] = []


class Health(BaseModel):
    status: str


# The largest id a credential or audit event can have (a signed 64-bit integer).
MAX_ID = 2**63 - 1

# Every error the API answers with has the ErrorBody shape; routers publish it in OpenAPI
# (422 included, replacing FastAPI's default validation-error schema).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Malformed request"),
        (401, "Missing or invalid API key"),
        (403, "The key's role or tenant may not do this"),
        (404, "Not found (also another tenant's object)"),
        (409, "Conflict with the stored state"),
        (413, "Request body too large"),
        (422, "Invalid input; errors name the fields"),
        (429, "Too many failed authentications"),
        (503, "Database or audit log unavailable"),
    )
}
