"""A tenant admin's chain verification reveals nothing of other tenants (hardening item 15).

The chain is global, so verifying up to an event still checks every event before it; but a
tenant admin's answer names and counts only its own tenant's events: another tenant's event id
is a 404 exactly like a missing one, ``totalChecked`` is the number of its own events, and a
break at another tenant's event is reported at the tenant's next event, without the other id.
A platform admin keeps the full answer. Run with two tenants interleaved on the chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

from flowcred.audit import AuditFilter

if TYPE_CHECKING:  # conftest.py is not importable under --import-mode=importlib
    from conftest import ApiEnv

MISSING_EVENT = 10**9


def _interleave(env: ApiEnv) -> dict[str, list[int]]:
    """Credentials created alternately in acme and globex; each tenant's event ids."""
    for tenant in ("acme", "globex", "acme", "globex", "acme"):
        env.seed(tenant)
    return {
        tenant: [e.id for e in env.broker.audit.list(AuditFilter(tenant=tenant), limit=1000)]
        for tenant in ("acme", "globex")
    }


def _verify(env: ApiEnv, event_id: int, tenant: str) -> tuple[int, dict[str, object]]:
    response = env.client.get(
        f"/api/audit-events/{event_id}/verify", headers=env.headers("admin", tenant)
    )
    return response.status_code, response.json()


@contextmanager
def _tampering(env: ApiEnv) -> Iterator[None]:
    """Lift the append-only guard, as a database owner can (and put it back on PostgreSQL)."""
    engine = env.broker.engine
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
    try:
        yield
    finally:
        if postgres:
            with engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE audit_events ENABLE TRIGGER USER")


def _modify(env: ApiEnv, event_id: int) -> None:
    """Make event ``event_id`` fail its MAC (a key version that does not exist)."""
    with env.broker.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE audit_events SET key_version = 999 WHERE id = "
            + ("%s" if env.broker.engine.dialect.name == "postgresql" else "?"),
            (event_id,),
        )


def _mentions(body: dict[str, object], event_id: int) -> bool:
    text = str(body["message"])
    return body["firstInvalidId"] == event_id or f"event {event_id} " in text


def test_tenant_admin_verify_counts_only_its_own_events(any_db_api_env: ApiEnv) -> None:
    env = any_db_api_env
    ids = _interleave(env)
    last_acme = ids["acme"][-1]
    status, body = _verify(env, last_acme, "acme")
    assert status == 200, body
    assert body["isValid"] is True and body["firstInvalidId"] is None
    assert body["totalChecked"] == len(ids["acme"])
    assert (
        body["message"] == f"audit chain intact: {len(ids['acme'])} events of tenant acme verified"
    )
    # The platform admin keeps the full answer: every event up to there.
    status, full = _verify(env, last_acme, "*")
    assert status == 200 and full["isValid"] is True
    assert full["totalChecked"] == last_acme


def test_tenant_admin_gets_404_for_another_tenants_event_like_a_missing_one(
    any_db_api_env: ApiEnv,
) -> None:
    env = any_db_api_env
    ids = _interleave(env)
    foreign = _verify(env, ids["globex"][0], "acme")
    missing = _verify(env, MISSING_EVENT, "acme")
    assert foreign[0] == 404
    assert foreign == missing
    # Its own events and the platform admin are not affected.
    assert _verify(env, ids["acme"][0], "acme")[0] == 200
    assert _verify(env, ids["globex"][0], "*")[0] == 200


def test_break_at_another_tenants_event_is_reported_without_its_id(
    any_db_api_env: ApiEnv,
) -> None:
    env = any_db_api_env
    ids = _interleave(env)
    broken = ids["globex"][-1]
    next_acme = min(i for i in ids["acme"] if i > broken)
    with _tampering(env):
        _modify(env, broken)
        status, body = _verify(env, ids["acme"][-1], "acme")
        assert status == 200
        assert body["isValid"] is False and body["kind"] == "modified"
        assert body["firstInvalidId"] == next_acme
        assert body["message"] == (
            f"audit chain broken before event {next_acme} of tenant acme "
            "(modified, at an event of another tenant)"
        )
        assert not _mentions(body, broken)
        assert body["totalChecked"] == len([i for i in ids["acme"] if i < broken])
        # The platform admin sees exactly where.
        status, full = _verify(env, ids["acme"][-1], "*")
        assert (full["firstInvalidId"], full["kind"]) == (broken, "modified")
        # globex, whose event it is, is told its own id.
        status, own = _verify(env, broken, "globex")
        assert (own["isValid"], own["firstInvalidId"]) == (False, broken)


@pytest.mark.parametrize("position", [0, -1], ids=["first", "last"])
def test_break_at_the_tenants_own_event_names_it(any_db_api_env: ApiEnv, position: int) -> None:
    env = any_db_api_env
    ids = _interleave(env)
    broken = ids["acme"][position]
    with _tampering(env):
        _modify(env, broken)
        status, body = _verify(env, ids["acme"][-1], "acme")
    assert status == 200
    assert (body["isValid"], body["firstInvalidId"], body["kind"]) == (False, broken, "modified")
    assert body["totalChecked"] == ids["acme"].index(broken)
