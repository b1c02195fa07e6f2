"""Item 11: authentication before body validation; unknown query names and filters refused."""

from __future__ import annotations

from typing import Any

import pytest
from tests.api.conftest import BAD_KEY

MALFORMED = b'{"version": '


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/credentials"),
        ("PATCH", "/api/credentials/1"),
        ("PUT", "/api/credentials/1/secret"),
        ("POST", "/api/credentials/1/rollback"),
        ("POST", "/api/credentials/1/resolve"),
        ("PUT", "/api/bindings/flow-a"),
    ],
)
@pytest.mark.parametrize("key", [None, BAD_KEY])
def test_malformed_body_without_a_valid_key_is_401(
    api_env: Any, method: str, path: str, key: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-API-Key"] = key
    r = api_env.client.request(method, path, content=MALFORMED, headers=headers)
    assert r.status_code == 401, r.text
    assert "errors" not in r.json() or r.json()["errors"] == []


def test_malformed_body_with_a_key_lacking_the_role_is_403(api_env: Any) -> None:
    r = api_env.client.post(
        "/api/credentials/1/rollback",
        content=MALFORMED,
        headers=api_env.headers("viewer", "acme", **{"Content-Type": "application/json"}),
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/api/audit-events?since=yesterday",
        "/api/audit-events?bogus=1",
        "/api/audit-events?result=bogus",
        "/api/audit-events?eventType=bogus",
        "/api/audit-events?action=bogus",
        "/api/credentials?status=bogus",
        "/api/credentials?family=bogus",
        "/api/credentials?type=bogus",
        "/api/credentials?typo=api_key",
        "/api/types?x=1",
        "/api/bindings?x=1",
        "/api/credentials/1?x=1",
    ],
)
def test_unknown_query_parameters_and_filter_values_are_422(api_env: Any, path: str) -> None:
    api_env.seed("acme")
    r = api_env.client.get(path, headers=api_env.admin())
    assert r.status_code == 422, (path, r.status_code, r.text)


def test_known_audit_filter_values_are_accepted(api_env: Any) -> None:
    api_env.seed("acme")
    r = api_env.client.get(
        "/api/audit-events?eventType=credential&action=created", headers=api_env.admin()
    )
    assert r.status_code == 200 and len(r.json()["items"]) == 1


def test_the_cli_spellings_since_and_until_filter_audit_events(api_env: Any) -> None:
    api_env.seed("acme")
    future = "2999-01-01T00:00:00Z"
    r = api_env.client.get(f"/api/audit-events?since={future}", headers=api_env.admin())
    assert r.status_code == 200 and r.json()["items"] == []
    r = api_env.client.get(f"/api/audit-events?until={future}", headers=api_env.admin())
    assert r.status_code == 200 and r.json()["items"]
    r = api_env.client.get(
        f"/api/audit-events?since={future}&from={future}", headers=api_env.admin()
    )
    assert r.status_code == 422
