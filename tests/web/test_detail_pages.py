"""The Auth Config detail page and its actions: what each role sees, what each action changes,
and that no page ever shows a stored secret (canaries planted in every secret field)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.connectors.loopback_http import Loopback, loopback_server
from tests.oauth_support.server import AuthzServer
from tests.web.conftest import UiEnv, csrf_of

from flowcred.audit import AuditFilter

FLOW = "billing-sync"


def canary(area: str) -> str:
    return f"canary-{area}-{secrets.token_hex(6)}"


def _page(client: Any, path: str, status: int = 200) -> str:
    answer = client.get(path)
    assert answer.status_code == status, answer.text
    return str(answer.text)


def _post(client: Any, path: str, data: dict[str, str] | None = None, **kw: Any) -> Any:
    return client.post(
        path, data={"csrf_token": csrf_of(client), **(data or {})}, follow_redirects=False, **kw
    )


def _resolve(env: UiEnv, cid: int, tenant: str = "acme") -> dict[str, Any]:
    answer = env.api.client.post(
        f"/api/credentials/{cid}/resolve", headers=env.api.headers("worker", tenant), json={}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _bind(env: UiEnv, flow: str, refs: list[int], tenant: str = "acme") -> None:
    answer = env.api.client.put(
        f"/api/bindings/{flow}",
        json={"references": refs, "tenantId": tenant},
        headers=env.api.admin(),
    )
    assert answer.status_code == 200, answer.text


def _denials(env: UiEnv, path: str) -> list[Any]:
    events = env.broker.audit.list(
        AuditFilter(event_type="api_key", action="access_denied"), limit=1000
    )
    return [e for e in events if e.details.get("path") == path and e.details.get("via") == "ui"]


@pytest.fixture
def server() -> Iterator[Loopback]:
    with loopback_server() as state:
        yield state


def test_detail_shows_config_and_set_secrets_never_the_secret(ui_env: UiEnv) -> None:
    secret = canary("detail")
    cred = ui_env.api.seed(
        "acme",
        name="Shop API",
        config={"test_url": "https://shop.example.test/ping", "key_name": "X-Shop-Key"},
        secret={"api_key": secret},
    )
    _bind(ui_env, FLOW, [cred.id])
    client = ui_env.sign_in("admin", "acme")
    html = _page(client, f"/ui/credentials/{cred.id}")
    assert "<h1>Shop API</h1>" in html
    for section in ("Configuration", "Versions", "Status history", "Audit events"):
        assert f">{section}</h2>" in html
    assert "https://shop.example.test/ping" in html and "X-Shop-Key" in html
    assert re.search(r'data-secret-field="api_key"><span class="badge badge-set">set<', html)
    assert "API key" in html and "Custom" in html and 'class="badge badge-active"' in html
    assert cred.handle in html and FLOW in html
    for path in ("", "/edit", "/rotate", "/delete"):
        assert secret not in _page(client, f"/ui/credentials/{cred.id}{path}")
    # The set / not set read is audited like a view, and names no value.
    viewed = ui_env.broker.audit.list(AuditFilter(action="viewed", resource_id=cred.id), limit=100)
    assert any(e.details.get("secretFields") is True for e in viewed)
    assert all(secret not in str(e.to_dict()) for e in viewed)


def test_another_tenants_id_is_answered_like_a_missing_one(ui_env: UiEnv) -> None:
    theirs = ui_env.api.seed("globex", secret={"api_key": canary("foreign")})
    client = ui_env.sign_in("admin", "acme")
    foreign = client.get(f"/ui/credentials/{theirs.id}")
    missing = client.get("/ui/credentials/987654")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.text == missing.text
    assert client.get(f"/ui/credentials/{theirs.id}/edit").status_code == 404
    assert _post(client, f"/ui/credentials/{theirs.id}/delete").status_code == 404
    assert ui_env.broker.record_for(theirs.id) is not None


def test_rotate_makes_a_new_version_and_rollback_restores_the_old_secret(ui_env: UiEnv) -> None:
    old, new = canary("rotate-old"), canary("rotate-new")
    cred = ui_env.api.seed("acme", name="Rotating", secret={"api_key": old})
    client = ui_env.sign_in("developer", "acme")
    # An empty rotation is refused next to the field; nothing changes.
    refused = _post(client, f"/ui/credentials/{cred.id}/rotate", {"expected_version": "1"})
    assert refused.status_code == 422
    assert re.search(r'id="err-field-api_key"[^>]*>[^<]+<', refused.text)
    assert _resolve(ui_env, cred.id)["version"] == 1

    done = _post(
        client,
        f"/ui/credentials/{cred.id}/rotate",
        {"field:api_key": new, "expected_version": "1"},
    )
    assert done.status_code == 303 and done.headers["location"] == f"/ui/credentials/{cred.id}"
    page = _page(client, done.headers["location"])
    assert "version 2 is current" in page
    assert new not in page and old not in page
    resolved = _resolve(ui_env, cred.id)
    assert resolved["version"] == 2 and new in str(resolved["fields"])
    assert "Roll back to version 1" in page

    # A stale form (it still thinks version 1 is current) is refused, and says so.
    stale = _post(
        client,
        f"/ui/credentials/{cred.id}/rotate",
        {"field:api_key": canary("stale"), "expected_version": "1"},
    )
    assert stale.status_code == 409 and "changed the secret meanwhile" in stale.text
    assert _resolve(ui_env, cred.id)["version"] == 2

    back = _post(
        client, f"/ui/credentials/{cred.id}/rollback", {"version": "1", "expected_version": "2"}
    )
    assert back.status_code == 303
    page = _page(client, back.headers["location"])
    assert "version 1 is current again as version 3" in page
    assert new not in page and old not in page
    resolved = _resolve(ui_env, cred.id)
    assert resolved["version"] == 3 and old in str(resolved["fields"])


def test_edit_changes_the_name_and_config_and_keeps_the_secret(ui_env: UiEnv) -> None:
    secret = canary("edit")
    cred = ui_env.api.seed(
        "acme", name="Before", config={"key_name": "X-Old"}, secret={"api_key": secret}
    )
    client = ui_env.sign_in("developer", "acme")
    form = _page(client, f"/ui/credentials/{cred.id}/edit")
    assert 'value="Before"' in form and 'value="X-Old"' in form and "Save changes" in form
    done = _post(
        client,
        f"/ui/credentials/{cred.id}/edit",
        {"name": "After", "field:key_name": "X-New", "field:api_key": ""},
    )
    assert done.status_code == 303, done.text
    page = _page(client, done.headers["location"])
    assert "<h1>After</h1>" in page and "X-New" in page and "Saved changes to After." in page
    resolved = _resolve(ui_env, cred.id)
    assert resolved["version"] == 1 and secret in str(resolved["fields"])

    # A bad name is shown next to the field; a secret typed in is not filled back in.
    typed = canary("edit-typed")
    bad = _post(client, f"/ui/credentials/{cred.id}/edit", {"name": " ", "field:api_key": typed})
    assert bad.status_code == 422
    assert re.search(r'id="err-name"[^>]*>[^<]+<', bad.text)
    assert typed not in bad.text and secret not in bad.text
    assert ui_env.broker.record_for(cred.id).name == "After"  # type: ignore[union-attr]


def test_a_developer_moving_a_destination_must_send_the_secret_again(ui_env: UiEnv) -> None:
    secret = canary("dest")
    cred = ui_env.api.seed(
        "acme", config={"test_url": "https://a.example.test/"}, secret={"api_key": secret}
    )
    client = ui_env.sign_in("developer", "acme")
    moved = _post(
        client,
        f"/ui/credentials/{cred.id}/edit",
        {"name": cred.name, "field:test_url": "https://evil.example.test/"},
    )
    assert moved.status_code == 403 and "Enter the secret again" in moved.text
    assert secret not in moved.text
    stored = ui_env.broker.record_for(cred.id)
    assert stored is not None and stored.config["test_url"] == "https://a.example.test/"


def test_test_connection_answers_json_and_shows_in_the_status_history(
    ui_env: UiEnv, server: Loopback
) -> None:
    # The loopback server checks the key against the URL, so this key is in the config too:
    # it is no canary here (the other tests plant those).
    good = f"form-key-{secrets.token_hex(4)}"
    cred = ui_env.api.seed(
        "acme",
        config={"test_url": f"{server.url}/header?name=X-API-Key&want={good}"},
        secret={"api_key": good},
    )
    client = ui_env.sign_in("developer", "acme")
    page = _page(client, f"/ui/credentials/{cred.id}")
    assert f'data-test-url="/ui/credentials/{cred.id}/test"' in page and 'id="test-result"' in page
    answer = client.post(
        f"/ui/credentials/{cred.id}/test",
        headers={"Accept": "application/json", "X-CSRF-Token": csrf_of(client)},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and body["status"] == 200
    # Without the script: a flash, then the page, whose history holds the test.
    plain = _post(client, f"/ui/credentials/{cred.id}/test")
    assert plain.status_code == 303
    page = _page(client, plain.headers["location"])
    assert "Connection works: credential accepted" in page
    history = page.split('id="status-history"', 1)[1].split("</table>", 1)[0]
    assert history.count("<td>tested</td>") == 2 and "credential accepted" in history
    # A key the server refuses: the answer says so and the badge turns to Error.
    ui_env.broker.credentials.rotate(cred.id, secret={"api_key": canary("refused")})
    failed = _post(client, f"/ui/credentials/{cred.id}/test")
    page = _page(client, failed.headers["location"])
    assert "Connection failed: " in page and 'class="badge badge-error"' in page
    # An api_key config without a test URL cannot be tested: 422 with the reason.
    untestable = ui_env.api.seed("acme", secret={"api_key": canary("untestable")})
    refused = client.post(
        f"/ui/credentials/{untestable.id}/test",
        headers={"Accept": "application/json", "X-CSRF-Token": csrf_of(client)},
    )
    assert refused.status_code == 422 and refused.json()["detail"]


def test_delete_is_blocked_while_a_flow_binds_it_then_allowed(ui_env: UiEnv) -> None:
    cred = ui_env.api.seed("acme", name="Bound", secret={"api_key": canary("delete")})
    _bind(ui_env, FLOW, [cred.id])
    client = ui_env.sign_in("admin", "acme")
    page = _page(client, f"/ui/credentials/{cred.id}")
    blocked = re.search(r'<p class="reason" id="delete-blocked">([^<]+)</p>', page)
    assert blocked and blocked.group(1) == (f"In use by 1 flow: {FLOW}. Remove the binding first.")
    assert re.search(r'<button type="button" class="btn btn-danger" disabled[^>]*>Delete<', page)
    confirm = _page(client, f"/ui/credentials/{cred.id}/delete")
    assert 'id="delete-blocked"' in confirm and FLOW in confirm
    # Posting anyway: the broker refuses, the page says why, nothing is deleted.
    forced = _post(client, f"/ui/credentials/{cred.id}/delete", {"force": "true"})
    assert forced.status_code == 303
    shown = _page(client, forced.headers["location"])
    assert f"Not deleted. In use by 1 flow: {FLOW}." in shown
    assert ui_env.broker.record_for(cred.id) is not None

    _bind(ui_env, FLOW, [])
    page = _page(client, f"/ui/credentials/{cred.id}")
    assert 'id="delete-blocked"' not in page
    assert f'href="/ui/credentials/{cred.id}/delete">Delete</a>' in page
    assert "Delete permanently" in _page(client, f"/ui/credentials/{cred.id}/delete")
    done = _post(client, f"/ui/credentials/{cred.id}/delete")
    assert done.status_code == 303 and done.headers["location"] == "/ui/credentials"
    assert "Deleted Bound." in _page(client, "/ui/credentials")
    assert ui_env.broker.record_for(cred.id) is None


def test_a_developer_has_no_delete_and_a_forged_delete_is_refused(ui_env: UiEnv) -> None:
    cred = ui_env.api.seed("acme", secret={"api_key": canary("dev-delete")})
    client = ui_env.sign_in("developer", "acme")
    page = _page(client, f"/ui/credentials/{cred.id}")
    assert "Edit" in page and "Rotate secret" in page
    assert ">Delete<" not in page and "/delete" not in page and "Audit events" not in page
    assert client.get(f"/ui/credentials/{cred.id}/delete").status_code == 403
    forged = _post(client, f"/ui/credentials/{cred.id}/delete")
    assert forged.status_code == 403
    assert ui_env.broker.record_for(cred.id) is not None
    assert _denials(ui_env, f"/ui/credentials/{cred.id}/delete")


def test_a_viewer_sees_no_edit_controls_and_forged_posts_are_refused(ui_env: UiEnv) -> None:
    secret = canary("viewer")
    cred = ui_env.api.seed(
        "acme",
        name="Read only",
        config={"test_url": "https://x.example.test/"},
        secret={"api_key": secret},
    )
    ui_env.broker.credentials.rotate(cred.id, secret={"api_key": canary("viewer-2")})
    client = ui_env.sign_in("viewer", "acme")
    page = _page(client, f"/ui/credentials/{cred.id}")
    assert "<h1>Read only</h1>" in page and ">Configuration</h2>" in page
    for control in (
        "Test connection",
        "Edit",
        "Rotate secret",
        "Roll back",
        "Re-authorize",
        "Delete",
        "data-test-url",
        'method="post" action="/ui/credentials/',
    ):
        assert control not in page, control
    assert secret not in page and "Audit events" not in page
    for path in ("edit", "rotate", "delete"):
        assert client.get(f"/ui/credentials/{cred.id}/{path}").status_code == 403
    forged = {
        "test": {},
        "rotate": {"field:api_key": canary("forged")},
        "edit": {"name": "Hijacked", "field:test_url": "https://evil.example.test/"},
        "rollback": {"version": "1"},
        "authorize": {},
        "delete": {},
    }
    for action, data in forged.items():
        path = f"/ui/credentials/{cred.id}/{action}"
        answer = _post(client, path, data)
        assert answer.status_code == 403, (action, answer.text)
        assert _denials(ui_env, path), action
    stored = ui_env.broker.record_for(cred.id)
    assert stored is not None and stored.name == "Read only" and stored.current_version == 2
    assert stored.config["test_url"] == "https://x.example.test/"


def test_reauthorize_goes_to_the_provider_and_back_to_the_page(
    ui_env: UiEnv, authz_server: AuthzServer
) -> None:
    client_secret = canary("oauth")
    callback = "http://testserver/api/oauth/callback"
    ui_env.broker.oauth_flow.redirect_uri = callback
    authz_server.register_client("flowcred-ui", client_secret, redirect_uris=(callback,))
    cred = ui_env.api.seed(
        "acme",
        type="oauth2",
        name="Acme CRM",
        config={
            "authorization_url": authz_server.authorize_url,
            "token_url": authz_server.token_url,
            "client_id": "flowcred-ui",
            "scopes": ["crm.read", "offline_access"],
        },
        secret={"client_secret": client_secret},
    )
    plain = ui_env.api.seed("acme", secret={"api_key": canary("not-oauth")})
    client = ui_env.sign_in("developer", "acme")
    assert "Re-authorize" not in _page(client, f"/ui/credentials/{plain.id}")
    page = _page(client, f"/ui/credentials/{cred.id}")
    assert "Re-authorize" in page and "Not authorized" in page and client_secret not in page

    start = _post(client, f"/ui/credentials/{cred.id}/authorize")
    assert start.status_code == 200, start.text
    found = re.search(r'id="authorize-continue" href="([^"]+)"', start.text)
    assert found, start.text
    url = found.group(1).replace("&amp;", "&")
    assert url.startswith(authz_server.authorize_url + "?")
    assert client_secret not in start.text
    at_provider = httpx.get(url, follow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    back = httpx.URL(at_provider.headers["location"])
    assert str(back).startswith(callback + "?")
    # The browser comes back from the provider without the session cookie (SameSite=Strict).
    browser = ui_env.api.new_client()
    done = browser.get(
        back.raw_path.decode(), headers={"Accept": "text/html"}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/ui/oauth/done?credential={cred.id}&status=authorized"
    landing = browser.get(done.headers["location"])
    assert (
        landing.status_code == 200 and f'data-continue="/ui/credentials/{cred.id}"' in landing.text
    )
    assert ui_env.broker.tokens.status(cred.id, "acme").state == "active"
    page = _page(client, f"/ui/credentials/{cred.id}")
    history = page.split('id="status-history"', 1)[1].split("</table>", 1)[0]
    assert "<td>authorized</td>" in history and ">Authorized<" in page
    assert client_secret not in page


def test_a_platform_admin_acts_on_any_tenants_config(ui_env: UiEnv) -> None:
    old, new = canary("platform-old"), canary("platform-new")
    cred = ui_env.api.seed("globex", name="Globex API", secret={"api_key": old})
    client = ui_env.sign_in("admin", "*")
    page = _page(client, f"/ui/credentials/{cred.id}")
    assert "<h1>Globex API</h1>" in page and "globex" in page and old not in page
    renamed = _post(client, f"/ui/credentials/{cred.id}/edit", {"name": "Globex API v2"})
    assert renamed.status_code == 303
    rotated = _post(client, f"/ui/credentials/{cred.id}/rotate", {"field:api_key": new})
    assert rotated.status_code == 303
    page = _page(client, rotated.headers["location"])
    assert "<h1>Globex API v2</h1>" in page and new not in page
    resolved = _resolve(ui_env, cred.id, tenant="globex")
    assert resolved["version"] == 2 and new in str(resolved["fields"])
