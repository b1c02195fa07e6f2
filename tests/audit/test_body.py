"""The audit body renderer produces exactly the canonical JSON the chain is defined over."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from flowcred.audit.events import Actor, PendingEvent, canonical_body
from flowcred.audit.recorder import AuditRecorder, _redacted
from flowcred.redaction import SecretRegistry

SECRET = "hunter2-Sup3r-secret"


class _Renderer(AuditRecorder):
    """Only the body renderer, without a database."""

    def __init__(self, registry: SecretRegistry) -> None:
        self._registry = registry


EVENTS = [
    PendingEvent(
        "credential",
        "resolved",
        "success",
        Actor("user", 'a"li\\ce', "Ålice ✓"),
        datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC),
        source="10.0.0.1",
        tenant="acme",
        resource_type="credential",
        resource_id="12",
        execution_id=f"run {SECRET} x",
        details={"b": [1, SECRET, None], "a": {"z": None, "y": "\n\t\u2028"}, "n": 1.5},
    ),
    PendingEvent(
        "kek",
        "rotated",
        "failure",
        Actor("system", "flowcred", ""),
        datetime(2026, 5, 1, 1, 2, 3, tzinfo=timezone(timedelta(hours=5))),
    ),
    PendingEvent(
        "credential",
        "listed",
        "denied",
        Actor("api_key", "k1", SECRET),
        datetime(2026, 1, 1, tzinfo=UTC),
        tenant=SECRET,
        details={SECRET: SECRET},
    ),
]


@pytest.mark.parametrize("event", EVENTS)
def test_body_is_canonical_json_with_free_form_strings_redacted(event: PendingEvent) -> None:
    registry = SecretRegistry()
    registry.register(SECRET)
    body = _Renderer(registry).body(event)
    assert body == canonical_body(_redacted(event.to_dict(), registry.redact))
    assert json.loads(body)["action"] == event.action
    assert SECRET not in body


def test_vocabulary_is_enforced() -> None:
    with pytest.raises(ValueError):
        PendingEvent("credential", "stolen", "success", Actor.system(), datetime.now(UTC))
    with pytest.raises(ValueError):
        PendingEvent("credential", "resolved", "maybe", Actor.system(), datetime.now(UTC))  # type: ignore[arg-type]
