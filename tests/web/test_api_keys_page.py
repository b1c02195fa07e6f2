"""The API keys page: admins create (shown once), rotate and revoke, with the CLI's audit."""

from __future__ import annotations

import re
from typing import Any

from tests.web.conftest import UiEnv, csrf_of

from flowcred.audit import AuditFilter

_NEW_KEY = re.compile(r'id="new-key">(fck_[^<]+)<')


def _create(client: Any, **fields: str) -> Any:
    data = {"csrf_token": csrf_of(client), "role": "worker", "tenant": "acme"}
    data.update(fields)
    return client.post("/ui/api-keys", data=data)


def test_a_new_key_is_shown_once_works_and_is_audited_as_the_signed_in_key(
    ui_env: UiEnv,
) -> None:
    client = ui_env.sign_in("admin")
    answer = _create(client, name="airflow-prod", days="30")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    raw = _NEW_KEY.search(answer.text).group(1)  # type: ignore[union-attr]
    assert "shown only once" in answer.text
    again = client.get("/ui/api-keys").text
    assert raw not in again and "airflow-prod" in again
    ok = ui_env.api.client.get("/api/credentials", headers={"X-API-Key": raw})
    assert ok.status_code == 403  # a worker key: authenticated, but may not list
    created = ui_env.broker.audit.list(AuditFilter(event_type="api_key", action="created"))
    assert created[-1].actor.name == "admin-platform"
    assert created[-1].details["name"] == "airflow-prod" and raw not in str(created[-1].to_dict())


def test_bad_input_is_shown_next_to_the_field(ui_env: UiEnv) -> None:
    client = ui_env.sign_in("admin")
    answer = _create(client, role="root")
    assert answer.status_code == 422 and "must be one of" in answer.text
    assert 'id="new-key"' not in answer.text
    days = _create(client, days="-3")
    assert days.status_code == 422 and "whole number of days" in days.text


def test_rotate_shows_the_replacement_once_and_revoke_stops_the_key_and_its_sessions(
    ui_env: UiEnv,
) -> None:
    key, raw = ui_env.broker.api_keys.create(role="viewer", tenant="acme", name="to-go")
    ui_env.api.keys[("viewer", "to-go")] = raw
    their_session = ui_env.sign_in("viewer", "to-go")
    admin = ui_env.sign_in("admin")
    rotated = admin.post(
        f"/ui/api-keys/{key.id}/rotate",
        data={"csrf_token": csrf_of(admin), "grace_days": "7"},
    )
    new_raw = _NEW_KEY.search(rotated.text).group(1)  # type: ignore[union-attr]
    assert new_raw != raw and f"Replacement for {key.id}" in rotated.text
    headers = {"X-API-Key": new_raw}
    assert ui_env.api.client.get("/api/credentials", headers=headers).status_code == 200
    revoked = admin.post(
        f"/ui/api-keys/{key.id}/revoke",
        data={"csrf_token": csrf_of(admin)},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    flash = admin.get("/ui/api-keys").text
    assert f"Revoked API key {key.id} and ended its 1 UI session." in flash
    old = ui_env.api.client.get("/api/credentials", headers={"X-API-Key": raw})
    assert old.status_code == 401
    assert their_session.get("/ui/credentials", follow_redirects=False).status_code == 303


def test_a_tenant_admin_manages_only_its_tenant(ui_env: UiEnv) -> None:
    other, _ = ui_env.broker.api_keys.create(role="worker", tenant="globex", name="globex-w")
    client = ui_env.sign_in("admin", "acme")
    page = client.get("/ui/api-keys").text
    assert "globex-w" not in page and "admin-platform" not in page and "admin-acme" in page
    before = ui_env.broker.api_keys.list()
    platform = _create(client, tenant="*")
    assert platform.status_code == 403 and 'id="new-key"' not in platform.text
    revoke = client.post(f"/ui/api-keys/{other.id}/revoke", data={"csrf_token": csrf_of(client)})
    assert revoke.status_code == 403
    assert ui_env.broker.api_keys.get(other.id).revoked_at is None  # type: ignore[union-attr]
    assert len(ui_env.broker.api_keys.list()) == len(before)


def test_only_admins_reach_the_page_or_its_actions(ui_env: UiEnv) -> None:
    developer = ui_env.sign_in("developer", "*")
    assert developer.get("/ui/api-keys").status_code == 403
    before = len(ui_env.broker.api_keys.list())
    forged = _create(developer)
    assert forged.status_code == 403 and 'id="new-key"' not in forged.text
    assert len(ui_env.broker.api_keys.list()) == before
    denied = ui_env.broker.audit.list(AuditFilter(action="access_denied"))
    assert denied[-1].actor.name == "developer-platform"
