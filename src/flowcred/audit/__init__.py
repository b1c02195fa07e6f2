"""The tamper-evident audit trail: every change and every access of a credential.

``events`` defines what is recorded, ``recorder`` appends to the keyed hash chain (group commit,
fail closed), ``chain`` verifies it, ``checkpoint`` pins its end outside the database, and
``log`` queries, exports and verifies.
"""

from __future__ import annotations

from flowcred.audit.chain import AuditChainBroken, VerifyReport
from flowcred.audit.events import Access, Actor, AuditEvent, PendingEvent
from flowcred.audit.log import AuditFilter, AuditLog
from flowcred.audit.recorder import AuditRecorder, AuditWriteFailed

__all__ = [
    "Access",
    "Actor",
    "AuditChainBroken",
    "AuditEvent",
    "AuditFilter",
    "AuditLog",
    "AuditRecorder",
    "AuditWriteFailed",
    "PendingEvent",
    "VerifyReport",
]
