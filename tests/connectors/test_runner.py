"""The runner: a hung driver times out, every message is scrubbed of the secret in every encoding,
a stored credential's status follows the test, and every test is one audit event (fail closed)."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from tests.connectors.loopback_http import Loopback, loopback_server

from flowcred.audit import AuditWriteFailed
from flowcred.audit.log import AuditFilter
from flowcred.broker import Broker, open_broker
from flowcred.catalog import Catalog, CredentialType
from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.credential_test import run_stored_test
from flowcred.connectors.runner import run_test
from flowcred.errors import InvalidCredential
from flowcred.redaction import Secret
from flowcred.settings import load_settings

RELEASE = threading.Event()
CANARY = "canary-Pa55/w+rd=42"
USER = "svc-probe"


@register("hang_probe")
class HangingTest(ConnectionTest):
    """A driver that never returns (until the test module releases it)."""

    def check(self, target: TestTarget, timeout: float) -> str:
        RELEASE.wait(30)
        return "finally"


def _leaky_forms(secret: str) -> list[str]:
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
        "Basic " + base64.b64encode(f"{USER}:{secret}".encode()).decode(),
        json.dumps(secret),
    ]


@register("leaky_probe")
class LeakyTest(ConnectionTest):
    """A driver whose error message repeats the password in every form drivers use."""

    live_tested = False

    def check(self, target: TestTarget, timeout: float) -> str:
        secret = target.reveal("password") or ""
        if target.config.get("mode") == "crash":
            raise RuntimeError(f"driver crashed with password={secret}")
        raise ConnectionTestError("auth failed: " + " | ".join(_leaky_forms(secret)))


def probe_catalog() -> Catalog:
    def probe(name: str) -> CredentialType:
        return CredentialType.model_validate(
            {
                "name": name,
                "title": name,
                "family": "connector",
                "description": "test probe",
                "fields": [
                    {"name": "host", "default": "127.0.0.1"},
                    {"name": "username"},
                    {"name": "mode"},
                    {"name": "password", "secret": True, "required": True},
                ],
                "test": {"kind": name},
            }
        )

    return Catalog([(probe("hang_probe"), "test"), (probe("leaky_probe"), "test")])


def probe_target(kind: str, **config: str) -> TestTarget:
    return TestTarget(
        type=kind,
        config={"host": "127.0.0.1", "username": USER, **config},
        secret={"password": Secret(CANARY)},
    )


@pytest.fixture(scope="module", autouse=True)
def _release_hung_threads() -> Iterator[None]:
    yield
    RELEASE.set()


def test_a_hung_driver_times_out_and_its_thread_is_abandoned() -> None:
    started = time.monotonic()
    result = run_test(probe_target("hang_probe"), timeout=0.3, catalog=probe_catalog())
    elapsed = time.monotonic() - started
    assert not result.ok
    assert result.message == "timed out after 0.3 s"
    assert elapsed < 1.5
    hung = [t for t in threading.enumerate() if t.name == "flowcred-test-hang_probe"]
    assert hung and all(t.daemon for t in hung)


def test_every_encoded_form_of_the_secret_is_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flowcred.connectors")
    result = run_test(probe_target("leaky_probe"), timeout=5, catalog=probe_catalog())
    assert not result.ok and result.message.startswith("auth failed: ")
    for form in _leaky_forms(CANARY):
        assert form.removeprefix("Basic ").strip('"') not in result.message, form
    assert result.message.count("***") >= len(_leaky_forms(CANARY))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "auth failed" in logged and CANARY not in logged and quote(CANARY, safe="") not in logged


def test_an_unexpected_driver_error_is_a_failed_result_not_an_exception() -> None:
    result = run_test(probe_target("leaky_probe", mode="crash"), timeout=5, catalog=probe_catalog())
    assert not result.ok
    assert result.message == "test failed: RuntimeError: driver crashed with password=***"


def test_a_type_without_a_live_test_is_refused() -> None:
    target = TestTarget(type="github", config={}, secret={})
    with pytest.raises(InvalidCredential, match="no live connection test"):
        run_test(target)


# -- stored credentials: status and audit -------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = open_broker(settings=load_settings(home=tmp_path / "home"))
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def server() -> Iterator[Loopback]:
    with loopback_server() as state:
        yield state


def _stored(broker: Broker, server: Loopback, key: str) -> int:
    record = broker.credentials.create(
        name=f"shop {key}",
        type="api_key",
        tenant="acme",
        config={"test_url": f"{server.url}/header?name=X-API-Key&want=good-key-5150"},
        secret={"api_key": key},
    )
    return record.id


def _tested_events(broker: Broker, cid: int) -> list[tuple[str, dict[str, object]]]:
    events = broker.audit.list(AuditFilter(action="tested", resource_id=cid), limit=10)
    return [(e.result, dict(e.details)) for e in events]


def test_a_passing_test_sets_active_and_is_audited(broker: Broker, server: Loopback) -> None:
    cid = _stored(broker, server, "good-key-5150")
    broker._store.update(cid, status="error")  # a previous failure
    view = broker.acting_as(broker.access.actor)
    result = run_stored_test(view, cid, tenant="acme")
    assert result.ok
    assert broker.credentials.get(cid).status == "active"
    [(outcome, details)] = _tested_events(broker, cid)
    assert outcome == "success"
    assert details["ok"] is True and details["message"] == "credential accepted"
    assert isinstance(details["latencyMs"], float)


def test_a_failing_test_sets_error_and_is_audited(broker: Broker, server: Loopback) -> None:
    cid = _stored(broker, server, "bad-key-8008")
    view = broker.acting_as(broker.access.actor)
    result = run_stored_test(view, cid, tenant="acme", environment="default")
    assert not result.ok and "HTTP 401" in result.message
    assert broker.credentials.get(cid).status == "error"
    [(outcome, details)] = _tested_events(broker, cid)
    assert outcome == "failure" and details["ok"] is False
    assert "bad-key-8008" not in json.dumps(details)


def test_a_test_whose_event_cannot_be_written_fails_and_changes_nothing(
    broker: Broker, server: Loopback
) -> None:
    cid = _stored(broker, server, "good-key-5150")
    broker._store.update(cid, status="error")
    view = broker.acting_as(broker.access.actor)
    with audit_inserts_refused(broker), pytest.raises(AuditWriteFailed):
        run_stored_test(view, cid, tenant="acme")
    assert broker.credentials.get(cid).status == "error"


@contextmanager
def audit_inserts_refused(broker: Broker) -> Iterator[None]:
    path = broker.engine.url.database
    assert path is not None
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
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


def test_a_stored_type_without_a_live_test_is_refused_before_resolving(broker: Broker) -> None:
    record = broker.credentials.create(
        name="gh app",
        type="github",
        tenant="acme",
        config={"client_id": "Iv1.0123456789"},
        secret={"client_secret": "gh-client-secret-1"},
    )
    view = broker.acting_as(broker.access.actor)
    with pytest.raises(InvalidCredential, match="no live test for test kind 'oauth2'"):
        run_stored_test(view, record.id, tenant="acme")
    [(outcome, details)] = _tested_events(broker, record.id)
    assert outcome == "failure" and details["error"] == "InvalidCredential"
    assert broker.credentials.get(record.id).status == "active"
