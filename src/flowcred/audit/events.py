"""Audit events: who did what to which resource, from where, in which run, with what result.

An event's *body* is its canonical JSON (sorted keys, no whitespace, UTF-8), and the body is what
the hash chain authenticates and what queries read back, so the stored text is the event: no
separate column can be altered without breaking the chain. The event's position (its ``id``) is
not in the body; the chain's links order events, and ids are checked to be consecutive.

No secret value ever enters a body: every string in it is passed through the redaction registry
before hashing, so a secret that reached an event by mistake is stored as ``***``.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

Result = Literal["success", "failure", "denied"]

# Event types and their actions. The hooks marked "later" are recorded by features still to come
# ([oauth], [api], [bindings]); their names are fixed here so every layer uses the same words.
CREDENTIAL: Final = "credential"
KEK: Final = "kek"
TOKEN: Final = (
    "token"  # authorized, refreshed, refresh_failed, breaker_opened, authorization_started
)
API_KEY: Final = "api_key"  # created, revoked, rotated, authentication_failed, access_denied,
# signed_in / signed_out (web UI sessions)
FLOW: Final = "flow"  # later: validated, bindings_registered

ACTIONS: Final[Mapping[str, frozenset[str]]] = {
    CREDENTIAL: frozenset(
        {
            "created",
            "updated",
            "rotated",
            "rolled_back",
            "deleted",
            "resolved",
            "password_read",
            "tested",
            "access_denied",
            "viewed",
            "listed",
        }
    ),
    KEK: frozenset({"rotated", "retired"}),
    TOKEN: frozenset(
        {"refreshed", "refresh_failed", "authorized", "breaker_opened", "authorization_started"}
    ),
    API_KEY: frozenset(
        {
            "created",
            "revoked",
            "rotated",
            "authentication_failed",
            "access_denied",
            "signed_in",
            "signed_out",
        }
    ),
    FLOW: frozenset({"validated", "bindings_registered", "bindings_deleted"}),
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: ``kind`` is user, api_key, service or system; ``id`` is stable."""

    kind: str
    id: str
    name: str = ""

    @classmethod
    def os_user(cls) -> Actor:
        """The operating-system user running this process (the CLI's actor)."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # pragma: no cover - containers without a passwd entry
            user = "unknown"
        return cls("user", user, user)

    @classmethod
    def system(cls) -> Actor:
        return cls("system", "flowcred", "flowcred")

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "name": self.name}


@dataclass(frozen=True, slots=True)
class Access:
    """The context of a call: the actor, the source address when known, and what it may do.

    ``may_resolve`` says whether the caller may read secrets (resolve). A caller that may not
    (a developer or viewer API key) must not be able to send a secret somewhere else either, so
    the broker refuses its changes of destination fields unless they carry the secret again.
    Local callers (the Python API, the CLI: they hold the key file) may resolve.
    """

    actor: Actor
    source: str | None = None
    may_resolve: bool = True


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event not yet on the chain."""

    event_type: str
    action: str
    result: Result
    actor: Actor
    created_at: datetime
    source: str | None = None
    tenant: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    execution_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        allowed = ACTIONS.get(self.event_type)
        if allowed is None or self.action not in allowed:
            raise ValueError(f"unknown audit event {self.event_type}.{self.action}")
        if self.result not in ("success", "failure", "denied"):
            raise ValueError(f"unknown audit result {self.result!r}")

    def to_dict(self) -> dict[str, Any]:
        """The body's fields (everything but the position and the chain values)."""
        return {
            "created_at": format_time(self.created_at),
            "event_type": self.event_type,
            "action": self.action,
            "result": self.result,
            "actor": self.actor.to_dict(),
            "source": self.source,
            "tenant": self.tenant,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "execution_id": self.execution_id,
            "details": dict(self.details),
        }


def format_time(value: datetime) -> str:
    """UTC, microseconds, ``Z``: one spelling per instant, so text order is time order."""
    if value.utcoffset() is None or value.utcoffset():
        value = value.astimezone(UTC)
    # isoformat is several times faster than strftime, and this runs once per event.
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_body(fields: Mapping[str, Any]) -> str:
    """The canonical JSON text of an event body."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An event on the chain, as read back from its stored body."""

    id: int
    created_at: datetime
    event_type: str
    action: str
    result: str
    actor: Actor
    source: str | None
    tenant: str | None
    resource_type: str | None
    resource_id: str | None
    execution_id: str | None
    details: dict[str, Any]
    key_version: int
    previous_hash: str
    hash: str

    @classmethod
    def from_row(
        cls, event_id: int, key_version: int, previous: bytes, digest: bytes, body: str
    ) -> AuditEvent:
        data = json.loads(body)
        actor = data.get("actor") or {}
        return cls(
            id=event_id,
            created_at=datetime.fromisoformat(data["created_at"].replace("Z", "+00:00")),
            event_type=data["event_type"],
            action=data["action"],
            result=data["result"],
            actor=Actor(actor.get("kind", ""), actor.get("id", ""), actor.get("name", "")),
            source=data.get("source"),
            tenant=data.get("tenant"),
            resource_type=data.get("resource_type"),
            resource_id=data.get("resource_id"),
            execution_id=data.get("execution_id"),
            details=data.get("details") or {},
            key_version=key_version,
            previous_hash=bytes(previous).hex(),
            hash=bytes(digest).hex(),
        )

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape used by ``--json``, export and the HTTP API."""
        return {
            "id": self.id,
            "createdAt": format_time(self.created_at),
            "eventType": self.event_type,
            "action": self.action,
            "result": self.result,
            "actor": self.actor.to_dict(),
            "source": self.source,
            "tenant": self.tenant,
            "resourceType": self.resource_type,
            "resourceId": self.resource_id,
            "executionId": self.execution_id,
            "details": self.details,
            "keyVersion": self.key_version,
            "previousHash": self.previous_hash,
            "hash": self.hash,
        }
