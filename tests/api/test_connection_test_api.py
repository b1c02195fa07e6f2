"""Test Connection over REST: a saved credential (``POST /api/credentials/{id}/test``) and an
unsaved form body (``POST /api/credentials/test``), which stores nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import open_api_env
from tests.connectors.loopback_http import Loopback, loopback_server

from flowcred.audit.log import AuditFilter

CREDS = "/api/credentials"
GOOD = "form-key-31337"


@pytest.fixture
def server() -> Iterator[Loopback]:
    with loopback_server() as state:
        yield state


def _url(server: Loopback) -> str:
    return f"{server.url}/header?name=X-API-Key&want={GOOD}"


def _body(server: Loopback, key: str = GOOD, tenant: str = "acme", **extra: Any) -> dict[str, Any]:
    return {
        "name": "Shop API",
        "type": "api_key",
        "tenantId": tenant,
        "config": {"test_url": _url(server)},
        "secret": {"api_key": key},
        **extra,
    }


def test_saved_credential_test_reports_and_sets_status(api_env: Any, server: Loopback) -> None:
    good = api_env.seed(config={"test_url": _url(server)}, secret={"api_key": GOOD})
    bad = api_env.seed(config={"test_url": _url(server)}, secret={"api_key": "stale-key-0001"})
    dev = api_env.headers("developer", "acme")
    answer = api_env.client.post(f"{CREDS}/{good.id}/test", headers=dev)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and body["status"] == 200
    assert body["message"] == "credential accepted"
    assert body["latencyMs"] >= 0 and body["checkedAt"]
    failed = api_env.client.post(f"{CREDS}/{bad.id}/test", headers=dev).json()
    assert failed["ok"] is False and failed["status"] == 401
    assert "authentication failed" in failed["message"] and "stale-key" not in failed["message"]
    statuses = {
        c["credentialId"]: c["status"]
        for c in api_env.client.get(CREDS, headers=dev).json()["items"]
    }
    assert statuses[good.id] == "active" and statuses[bad.id] == "error"


def test_unsaved_body_is_tested_and_nothing_is_stored(api_env: Any, server: Loopback) -> None:
    before = api_env.broker.credentials.list()
    last = api_env.broker.audit.last_id()
    answer = api_env.client.post(
        f"{CREDS}/test", json=_body(server), headers=api_env.headers("developer", "acme")
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] is True
    assert GOOD not in answer.text
    assert server.seen[-1]["headers"]["X-API-Key"] == GOOD
    assert api_env.broker.credentials.list() == before
    events = api_env.broker.audit.list(AuditFilter(action="tested"), after_id=last, limit=10)
    assert [(e.result, e.resource_id, e.tenant) for e in events] == [("success", None, "acme")]
    assert events[0].details["saved"] is False and GOOD not in str(events[0].details)


def test_unsaved_wrong_key_fails_clearly(api_env: Any, server: Loopback) -> None:
    answer = api_env.client.post(
        f"{CREDS}/test", json=_body(server, key="typo-key-0000"), headers=api_env.admin()
    )
    assert answer.status_code == 200
    assert answer.json()["ok"] is False
    assert "rejected with HTTP 401" in answer.json()["message"]


@pytest.mark.parametrize(
    ("role", "tenant", "status"),
    [
        ("viewer", "acme", 403),
        ("worker", "acme", 403),
        ("developer", "globex", 403),  # the body names acme: not the key's tenant
        ("admin", "acme", 200),
        ("admin", "*", 200),
    ],
)
def test_unsaved_test_roles(
    api_env: Any, server: Loopback, role: str, tenant: str, status: int
) -> None:
    answer = api_env.client.post(
        f"{CREDS}/test", json=_body(server), headers=api_env.headers(role, tenant)
    )
    assert answer.status_code == status, answer.text
    assert GOOD not in answer.text


def test_unsaved_invalid_body_names_the_fields(api_env: Any) -> None:
    answer = api_env.client.post(
        f"{CREDS}/test",
        json={"name": "x", "type": "api_key", "config": {"location": "nowhere"}, "secret": {}},
        headers=api_env.admin(),
    )
    assert answer.status_code == 422
    assert "location" in answer.text and "api_key" in answer.text


def test_unsaved_test_to_the_metadata_service_is_refused(api_env: Any) -> None:
    body = {
        "name": "x",
        "type": "bearer_token",
        "config": {"test_url": "http://169.254.169.254/latest/meta-data/iam/"},
        "secret": {"token": "imds-canary-token-1"},
    }
    answer = api_env.client.post(f"{CREDS}/test", json=body, headers=api_env.admin())
    assert answer.status_code == 200
    assert answer.json()["ok"] is False
    assert "refused" in answer.json()["message"] and "imds-canary" not in answer.text


def test_a_credential_called_test_still_has_its_own_routes(api_env: Any, server: Loopback) -> None:
    record = api_env.broker.credentials.create(
        name="test",
        type="api_key",
        tenant="acme",
        handle="test",
        config={"test_url": _url(server)},
        secret={"api_key": GOOD},
    )
    dev = api_env.headers("developer", "acme")
    shown = api_env.client.get(f"{CREDS}/test", headers=dev)
    assert shown.status_code == 200 and shown.json()["credentialId"] == record.id
    tested = api_env.client.post(f"{CREDS}/test/test", headers=dev)
    assert tested.status_code == 200 and tested.json()["ok"] is True


def test_serve_retests_periodically_and_stops_on_shutdown(tmp_path: Path, server: Loopback) -> None:
    with open_api_env(tmp_path, retest_interval_seconds=0.2) as env:
        retester = env.app.state.retester
        assert retester is not None and retester.alive
        good = env.seed(config={"test_url": _url(server)}, secret={"api_key": GOOD})
        bad = env.seed(config={"test_url": _url(server)}, secret={"api_key": "revoked-key-77"})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if env.broker.credentials.get(bad.id).status == "error":
                break
            time.sleep(0.05)
        assert env.broker.credentials.get(bad.id).status == "error"
        assert env.broker.credentials.get(good.id).status == "active"
        events = env.broker.audit.list(AuditFilter(action="tested", actor="flowcred-retest"))
        assert {e.resource_id for e in events} >= {str(good.id), str(bad.id)}
    assert not retester.alive


def test_periodic_retest_is_off_by_default(api_env: Any) -> None:
    assert api_env.app.state.retester is None
