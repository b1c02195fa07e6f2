"""The Audit page: admins only, filters that refuse unknown values, paging, Verify chain."""

from __future__ import annotations

import sqlite3
from typing import Any

from tests.web.conftest import UiEnv, csrf_of

from flowcred.audit import AuditFilter
from flowcred.web.pages.audit_page import PAGE_SIZE


def _denials(env: UiEnv) -> list[Any]:
    return env.broker.audit.list(AuditFilter(action="access_denied"), limit=1000)


def test_only_admins_see_the_audit_and_a_forged_verify_is_refused(ui_env: UiEnv) -> None:
    for role in ("developer", "viewer"):
        client = ui_env.sign_in(role, "acme")
        before = len(_denials(ui_env))
        page = client.get("/ui/audit")
        assert page.status_code == 403 and "Not allowed" in page.text
        assert "Audit</a>" not in page.text  # and the navigation does not offer it
        forged = client.post("/ui/audit/verify", data={"csrf_token": csrf_of(client)})
        assert forged.status_code == 403 and "Chain intact" not in forged.text
        assert len(_denials(ui_env)) == before + 2


def test_filters_narrow_the_events_and_unknown_values_are_errors(ui_env: UiEnv) -> None:
    cred = ui_env.api.seed("acme", name="Audited")
    client = ui_env.sign_in("admin")
    everything = client.get("/ui/audit").text
    assert "credential.created" in everything and "api_key.signed_in" in everything
    created = client.get("/ui/audit", params={"action": "created", "event_type": "credential"})
    assert f'href="/ui/credentials/{cred.id}"' in created.text
    assert "api_key.signed_in" not in created.text
    bad = client.get("/ui/audit", params={"action": "creatd"})
    assert bad.status_code == 422 and "is not an action of the trail" in bad.text
    assert "credential.created" not in bad.text
    when = client.get("/ui/audit", params={"since": "yesterday"})
    assert when.status_code == 422 and "must be a date and time" in when.text
    future = client.get("/ui/audit", params={"since": "2999-01-01T00:00"})
    assert "No audit event matches" in future.text


def test_a_tenant_admin_sees_only_its_tenants_events(ui_env: UiEnv) -> None:
    ui_env.api.seed("acme", name="Acme one")
    globex = ui_env.api.seed("globex", name="Globex one")
    page = ui_env.sign_in("admin", "acme").get("/ui/audit", params={"event_type": "credential"})
    assert "tenant acme" in page.text and "tenant globex" not in page.text
    assert f'href="/ui/credentials/{globex.id}"' not in page.text


def test_paging_goes_newest_first_through_every_event(ui_env: UiEnv) -> None:
    for i in range(PAGE_SIZE + 5):
        ui_env.api.seed("acme", name=f"Paged {i}")
    client = ui_env.sign_in("admin")
    first = client.get("/ui/audit", params={"action": "created"}).text
    assert "Next page" in first
    start = first.index('href="/ui/audit?action=created&amp;cursor=')
    href = first[start + 6 : first.index('"', start + 6)].replace("&amp;", "&")
    second = client.get(href).text
    ids_first = [int(x.split("<")[0]) for x in first.split('<td class="num">')[1:]]
    ids_second = [int(x.split("<")[0]) for x in second.split('<td class="num">')[1:]]
    assert ids_first == sorted(ids_first, reverse=True) and len(ids_first) == PAGE_SIZE
    assert max(ids_second) < min(ids_first) and len(ids_second) == 5


def test_verify_chain_reports_intact_then_the_break_after_tampering(ui_env: UiEnv) -> None:
    ui_env.api.seed("acme", name="Chained")
    client = ui_env.sign_in("admin")
    intact = client.post("/ui/audit/verify", data={"csrf_token": csrf_of(client)})
    assert intact.status_code == 200
    assert 'id="verify-result"' in intact.text and "Chain intact:" in intact.text
    assert "events verified" in intact.text

    db = ui_env.api.settings.home / "flowcred.db"
    conn = sqlite3.connect(db)
    try:
        conn.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        (first_id,) = conn.execute("SELECT min(id) FROM audit_events").fetchone()
        conn.execute(
            "UPDATE audit_events SET body = replace(body, 'success', 'failure') WHERE id = ?",
            (first_id,),
        )
        conn.commit()
    finally:
        conn.close()
    broken = client.post("/ui/audit/verify", data={"csrf_token": csrf_of(client)})
    assert "Chain broken at event" in broken.text and "Chain intact" not in broken.text
