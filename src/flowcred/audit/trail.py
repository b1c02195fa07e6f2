"""Turning broker operations into audit events: one event per operation, success or not.

The broker calls this layer for every public operation, so every access path (Python API, CLI and
later the HTTP API and web UI) is audited in one place. Changes append inside their own write
transaction (:meth:`AuditTrail.on_write`); reads and failures go through group commit
(:meth:`AuditTrail.record`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flowcred.audit.events import CREDENTIAL, Access, PendingEvent, Result
from flowcred.audit.recorder import Appended, AuditRecorder
from flowcred.clock import Clock
from flowcred.errors import AccessDenied, CredentialNotFound, FlowcredError, InvalidCredential
from flowcred.records import Credential

OnWrite = Callable[[Any, Credential], None]


def is_foreign(exc: BaseException) -> bool:
    """True for a CredentialNotFound raised because the credential belongs to another tenant."""
    return isinstance(exc, CredentialNotFound) and getattr(exc, "foreign", False)


def failure_details(exc: FlowcredError, attempted: str) -> dict[str, Any]:
    """What went wrong, by error class and field names (messages never carry secrets)."""
    details: dict[str, Any] = {"attempted": attempted, "error": type(exc).__name__}
    if not is_foreign(exc):
        details["message"] = str(exc)
    if isinstance(exc, InvalidCredential):
        details["fields"] = sorted({p.field for p in exc.problems})
    return details


class AuditTrail:
    """Builds events with the caller's actor and source and hands them to the recorder."""

    def __init__(self, recorder: AuditRecorder, clock: Clock) -> None:
        self.recorder = recorder
        self._clock = clock

    def event(
        self,
        access: Access,
        event_type: str,
        action: str,
        result: Result,
        *,
        tenant: str | None = None,
        resource_type: str | None = None,
        resource_id: str | int | None = None,
        execution_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> PendingEvent:
        return PendingEvent(
            event_type=event_type,
            action=action,
            result=result,
            actor=access.actor,
            created_at=self._clock.now(),
            source=access.source,
            tenant=tenant,
            resource_type=resource_type,
            resource_id=None if resource_id is None else str(resource_id),
            execution_id=execution_id,
            details=details or {},
        )

    def record(
        self, access: Access, event_type: str, action: str, result: Result, **kw: Any
    ) -> Appended:
        """Append through group commit; returns once durable, raises AuditWriteFailed if not."""
        return self.recorder.record(self.event(access, event_type, action, result, **kw))

    def credential_read(
        self,
        access: Access,
        action: str,
        record_or_id: Credential | int,
        *,
        tenant: str | None,
        execution_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.recorder.record(
            self.read_event(access, action, record_or_id, tenant, execution_id, details)
        )

    def read_event(
        self,
        access: Access,
        action: str,
        record_or_id: Credential | int,
        tenant: str | None,
        execution_id: str | None,
        details: Mapping[str, Any] | None,
    ) -> PendingEvent:
        """The success event of reading a credential (for the recorder's ``record`` or
        ``arecord``)."""
        cid = record_or_id.id if isinstance(record_or_id, Credential) else record_or_id
        return self.event(
            access,
            CREDENTIAL,
            action,
            "success",
            tenant=tenant,
            resource_type=CREDENTIAL,
            resource_id=cid,
            execution_id=execution_id,
            details=details,
        )

    def on_write(
        self,
        access: Access,
        action: str,
        details: Callable[[Credential], Mapping[str, Any]] | None = None,
    ) -> tuple[OnWrite, Callable[[], None]]:
        """A store hook appending the success event in the write's transaction, and a function to
        call after the commit (it moves the checkpoint forward)."""
        appended: list[Appended] = []

        def hook(conn: Any, record: Credential) -> None:
            event = self.event(
                access,
                CREDENTIAL,
                action,
                "success",
                tenant=record.tenant,
                resource_type=CREDENTIAL,
                resource_id=record.id,
                details=details(record) if details is not None else None,
            )
            appended.append(self.recorder.append_in(conn, event))

        def after_commit() -> None:
            for item in appended:
                self.recorder.committed(item)

        return hook, after_commit

    def failure(
        self,
        access: Access,
        action: str,
        exc: FlowcredError,
        *,
        tenant: str | None,
        ref: int | str | None,
        execution_id: str | None = None,
    ) -> None:
        """Record a failed or denied credential operation (the caller re-raises ``exc``)."""
        denied = isinstance(exc, AccessDenied) or is_foreign(exc)
        self.record(
            access,
            CREDENTIAL,
            "access_denied" if denied else action,
            "denied" if denied else "failure",
            tenant=tenant,
            resource_type=CREDENTIAL,
            resource_id=ref,
            execution_id=execution_id,
            details=failure_details(exc, action),
        )
