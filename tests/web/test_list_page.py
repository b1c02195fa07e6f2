"""The Auth Configs list: what each role and tenant sees, search, filters and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.web.conftest import UiEnv

from flowcred.web.pages.credential_list import PAGE_SIZE


def test_the_list_shows_name_family_provider_status_last_use_and_connections(
    ui_env: UiEnv,
) -> None:
    cred = ui_env.api.seed("acme", name="Stripe live", secret={"api_key": "canary-list-7f3a9"})
    ui_env.broker.bindings.set("billing-sync", [cred.id], tenant="acme")
    page = ui_env.sign_in("admin", "acme").get("/ui/credentials").text
    row = page[page.index("Stripe live") :]
    row = row[: row.index("</tr>")]
    assert "Custom" in row and "Any HTTP API" in row and "badge-active" in row
    assert "never" in row and '<td class="num">1</td>' in row
    assert "canary-list-7f3a9" not in page


def test_a_tenant_key_sees_only_its_tenant(ui_env: UiEnv) -> None:
    ui_env.api.seed("acme", name="Acme CRM")
    ui_env.api.seed("globex", name="Globex CRM")
    acme = ui_env.sign_in("viewer", "acme").get("/ui/credentials").text
    assert "Acme CRM" in acme and "Globex CRM" not in acme
    platform = ui_env.sign_in("viewer", "*").get("/ui/credentials").text
    assert "Acme CRM" in platform and "Globex CRM" in platform


def test_only_editors_are_offered_new_auth_config(ui_env: UiEnv) -> None:
    assert "New auth config" in ui_env.sign_in("developer", "acme").get("/ui/credentials").text
    viewer = ui_env.sign_in("viewer", "acme").get("/ui/credentials").text
    assert "New auth config" not in viewer and "/ui/credentials/new" not in viewer


def test_search_and_filters_narrow_the_list(ui_env: UiEnv) -> None:
    ui_env.api.seed("acme", name="Stripe live")
    ui_env.api.seed("acme", name="Stripe test")
    ui_env.api.seed("acme", name="GitHub bot", type="bearer_token", secret={"token": "t" * 20})
    soon = ui_env.api.seed("acme", name="Soon gone")
    ui_env.broker.credentials.update(
        soon.id, tenant="acme", expires_at=datetime.now(UTC) + timedelta(days=2)
    )
    client = ui_env.sign_in("viewer", "acme")
    found = client.get("/ui/credentials", params={"q": "STRIPE"}).text
    assert "Stripe live" in found and "Stripe test" in found and "GitHub bot" not in found
    bearer = client.get("/ui/credentials", params={"type": "bearer_token"}).text
    assert "GitHub bot" in bearer and "Stripe live" not in bearer
    expiring = client.get("/ui/credentials", params={"status": "expiring_soon"}).text
    assert "Soon gone" in expiring and "Stripe live" not in expiring
    assert "Expiring soon</span>" in expiring
    none = client.get("/ui/credentials", params={"q": "100%_"}).text
    assert "No auth config matches" in none
    other_env = client.get("/ui/credentials", params={"environment": "staging"}).text
    assert "No auth config matches" in other_env


def test_paging_walks_every_config_once(ui_env: UiEnv) -> None:
    total = PAGE_SIZE + 3
    for i in range(total):
        ui_env.api.seed("acme", name=f"Config {i:03d}")
    client = ui_env.sign_in("viewer", "acme")
    seen: list[str] = []
    url = "/ui/credentials"
    for _ in range(5):
        page = client.get(url).text
        seen += [f"Config {i:03d}" for i in range(total) if f">Config {i:03d}<" in page]
        if "Next page" not in page:
            break
        start = page.index('href="/ui/credentials?cursor=')
        url = page[start + 6 : page.index('"', start + 6)]
    assert sorted(seen) == [f"Config {i:03d}" for i in range(total)]
    assert len(seen) == total
