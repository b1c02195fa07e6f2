"""Fail closed: when the audit event cannot be made durable, no material and no change.

Audit writes are made to fail in the ways an operator can meet: the table refusing inserts (a
trigger, as a read-only table or a full disk would), and on PostgreSQL the recorder's connection
killed by the server. Then:

* ``resolve`` / ``get_password`` / ``aresolve`` / ``aget_password`` raise (AuditWriteFailed) and
  hand out nothing, even when the material sits in the resolve cache;
* credential changes (create, update, rotate, rollback, delete) raise and are not applied, since
  a change commits together with its event or not at all;
* once the cause is removed, everything works again and the chain verifies.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from flowcred.audit import AuditWriteFailed
from flowcred.broker import Broker, open_broker
from flowcred.errors import FlowcredError
from flowcred.settings import load_settings

SECRET = "sk_live_failclosed_0123456789"
NEW_SECRET = "sk_live_failclosed_rotated_987"


def plain_pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def inserts_refused(url: str) -> Iterator[None]:
    """While inside, every INSERT into audit_events fails (a BEFORE INSERT trigger)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
        try:
            conn.execute(
                "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit table is read-only'); END"
            )
            try:
                yield
            finally:
                conn.execute("DROP TRIGGER IF EXISTS test_refuse_audit")
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(plain_pg(url), autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit table is read-only'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()"
        )
        try:
            yield
        finally:
            # The session database is shared by the whole test run: never leave this behind.
            conn.execute("DROP TRIGGER IF EXISTS test_refuse_audit ON audit_events")
            conn.execute("DROP FUNCTION IF EXISTS test_refuse_audit()")


@pytest.fixture(params=[0.0, 30.0], ids=["nocache", "cache"])
def fc_broker(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[Broker]:
    settings = load_settings(
        home=tmp_path / "home", database_url=database_url, cache_ttl_seconds=request.param
    )
    b = open_broker(settings=settings)
    try:
        yield b
    finally:
        b.close()


def url_of(broker: Broker) -> str:
    return broker.engine.url.render_as_string(hide_password=False)


def count_events(broker: Broker) -> int:
    with broker.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM audit_events")).scalar_one())


def events_with_execution_id(broker: Broker, execution_id: str) -> int:
    return sum(1 for e in broker.audit.list(limit=1000) if e.execution_id == execution_id)


def read_calls(broker: Broker, cid: int) -> dict[str, Callable[[str], Any]]:
    provider = broker.provider()
    return {
        "resolve": lambda x: provider.resolve(cid, execution_id=x),
        "get_password": lambda x: provider.get_password(cid, execution_id=x),
        "aresolve": lambda x: asyncio.run(provider.aresolve(cid, execution_id=x)),
        "aget_password": lambda x: asyncio.run(provider.aget_password(cid, execution_id=x)),
    }


def material_text(result: Any) -> str:
    return result if isinstance(result, str) else result.fields["api_key"].reveal()


def test_reads_fail_closed_when_inserts_are_refused(fc_broker: Broker) -> None:
    broker = fc_broker
    cred = broker.credentials.create(name="svc", type="api_key", secret_value=SECRET)
    calls = read_calls(broker, cred.id)
    # Warm the cache (when on): material is in memory before the audit table breaks.
    for name, call in calls.items():
        assert material_text(call(f"warm-{name}")) == SECRET
    before = count_events(broker)
    with inserts_refused(url_of(broker)):
        for name, call in calls.items():
            returned: list[Any] = []
            with pytest.raises(AuditWriteFailed):
                returned.append(call(f"refused-{name}"))
            assert returned == [], f"{name} handed out material without its event"
        # Unknown references fail too, and their failure event cannot be written either.
        with pytest.raises(FlowcredError):
            broker.provider().resolve(cred.id + 1000, execution_id="refused-missing")
    assert count_events(broker) == before, "an event was written while inserts were refused"
    for name, call in calls.items():
        assert material_text(call(f"after-{name}")) == SECRET
        assert events_with_execution_id(broker, f"after-{name}") == 1
        assert events_with_execution_id(broker, f"refused-{name}") == 0
    assert broker.audit.verify().is_valid


def secret_of(broker: Broker, cid: int, version: int | None = None) -> str:
    return json.loads(broker._store.read_secret(cid, version))["api_key"]


def test_changes_fail_and_are_not_applied_when_inserts_are_refused(fc_broker: Broker) -> None:
    broker = fc_broker
    cred = broker.credentials.create(name="svc", type="api_key", secret_value=SECRET)
    broker.credentials.rotate(cred.id, secret_value=NEW_SECRET)  # version 2 current
    assert broker.provider().get_password(cred.id) == NEW_SECRET  # cache warm (when on)
    before = count_events(broker)
    with inserts_refused(url_of(broker)):
        with pytest.raises(FlowcredError):
            broker.credentials.create(name="never stored", type="api_key", secret_value="x" * 20)
        with pytest.raises(FlowcredError):
            broker.credentials.rotate(cred.id, secret_value="sk_live_must_not_be_stored")
        with pytest.raises(FlowcredError):
            broker.credentials.rollback(cred.id, 1)
        with pytest.raises(FlowcredError):
            broker.credentials.update(cred.id, name="renamed")
        with pytest.raises(FlowcredError):
            broker.credentials.delete(cred.id)
        with pytest.raises(AuditWriteFailed):
            broker.provider().get_password(cred.id)
    assert count_events(broker) == before
    # Nothing was applied: no new row, same current version and secret, same name, not deleted.
    records = broker.credentials.list()
    assert [r.name for r in records] == ["svc"]
    record = broker.credentials.get(cred.id)
    assert record.current_version == 2
    assert record.name == "svc"
    assert [v.version for v in broker.credentials.versions(cred.id)] == [2, 1]
    assert secret_of(broker, cred.id) == NEW_SECRET
    assert broker.provider().get_password(cred.id) == NEW_SECRET
    # And everything works again.
    broker.credentials.rotate(cred.id, secret_value="sk_live_after_recovery_42")
    assert broker.provider().get_password(cred.id) == "sk_live_after_recovery_42"
    broker.credentials.delete(cred.id)
    assert broker.credentials.list() == []
    assert broker.audit.verify().is_valid


@pytest.mark.postgres
@pytest.mark.parametrize("cache_ttl", [0.0, 30.0], ids=["nocache", "cache"])
def test_killed_connections_never_yield_material_without_its_event(
    clean_pg_url: str, tmp_path: Path, cache_ttl: float
) -> None:
    import psycopg

    settings = load_settings(
        home=tmp_path / "home", database_url=clean_pg_url, cache_ttl_seconds=cache_ttl
    )
    rounds = 8
    outcomes: dict[str, str] = {}
    with (
        open_broker(settings=settings) as broker,
        psycopg.connect(plain_pg(clean_pg_url), autocommit=True) as admin,
    ):
        cred = broker.credentials.create(name="svc", type="api_key", secret_value=SECRET)
        provider = broker.provider()
        assert provider.get_password(cred.id, execution_id="before-kill") == SECRET
        for n in range(rounds):
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            assert killed is not None and killed[0] >= 1, "the recorder had no connection to kill"
            for attempt in range(2):
                execution_id = f"kill-{n}-{attempt}"
                got: list[str] = []
                try:
                    got.append(provider.get_password(cred.id, execution_id=execution_id))
                except FlowcredError:
                    outcomes[execution_id] = "failed"
                    continue
                assert got == [SECRET]
                outcomes[execution_id] = "returned"
        # After the kills the broker recovers: a fresh read succeeds and is audited.
        assert provider.get_password(cred.id, execution_id="after-kill") == SECRET
        events = broker.audit.list(limit=1000)
        by_execution = {e.execution_id: e for e in events if e.execution_id}
        for execution_id, outcome in outcomes.items():
            if outcome == "returned":
                assert execution_id in by_execution, f"{execution_id} returned material unaudited"
                assert by_execution[execution_id].action == "password_read"
                assert by_execution[execution_id].result == "success"
        # Each round's first read after the kill must have failed (the connection was dead) or
        # been audited; and a second read in the same round always works.
        for n in range(rounds):
            assert outcomes[f"kill-{n}-1"] == "returned", outcomes
        assert "after-kill" in by_execution
        assert broker.audit.verify().is_valid
