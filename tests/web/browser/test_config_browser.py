"""In a real browser: an api_key config created through the form (Test connection against a
loopback API that accepts only that key, then Save), its secret rotated; delete refused while a
flow binds it; and no canary secret on any page, in storage or in a script-visible cookie.

Screenshots: create.png (the filled form after a passing Test connection), detail.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from tests.web.browser.conftest import Ui
from tests.web.browser.flows import (
    assert_no_canary,
    canary,
    create_api_key_config,
    forge,
    rotate_secret,
    section,
    unique,
)
from tests.web.browser.servers import KeyServer, key_server

from flowcred.web.auth import SESSION_COOKIE


@pytest.fixture
def api() -> Iterator[KeyServer]:
    with key_server() as server:
        yield server


def test_create_test_save_then_rotate_an_api_key_config(ui: Ui, page: Page, api: KeyServer) -> None:
    first, second = canary("create"), canary("rotate")
    api.accepted = {first}
    name = unique("Shop API")
    test_url = f"{api.url}/v1/ping"
    ui.sign_in(page, "admin")
    cid = create_api_key_config(ui, page, name=name, key=first, test_url=test_url, screenshot=True)
    assert api.hits["accepted"] >= 1  # Test connection really reached the API with the key

    # The detail page: the config, its one version, the secret shown only as set.
    config = section(page, "Configuration")
    expect(config).to_contain_text(test_url)
    expect(config).to_contain_text(re.compile(r"\bset\b"))
    expect(section(page, "Versions").locator("tbody tr")).to_have_count(1)
    ui.screenshot(page, "detail")
    stored = ui.served.credential(cid)
    assert stored is not None and stored["name"] == name and stored["type"] == "api_key"

    # Rotate: the API now accepts only the new key; the stored config's test proves it is used.
    api.accepted = {second}
    rotate_secret(ui, page, "API key", second)
    ui.record_timing(page, "detail")
    rows = section(page, "Versions").locator("tbody tr")
    expect(rows).to_have_count(2)
    current = rows.filter(has_text=re.compile(r"\bcurrent\b"))
    expect(current).to_have_count(1)
    expect(current.locator("td").first).to_have_text("2")
    expect(page.get_by_role("button", name="Roll back to version 1")).to_be_visible()
    versions = ui.served.versions(cid)
    assert sorted(v["version"] for v in versions) == [1, 2]
    assert [v["version"] for v in versions if v["current"]] == [2]
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connection works", timeout=15_000)
    assert_no_canary(page, [first, second], "detail after rotation")


def test_delete_is_disabled_while_a_flow_binds_the_config(ui: Ui, page: Page) -> None:
    bound = ui.served.api.seed("acme", name=unique("Bound config"))
    free = ui.served.api.seed("acme", name=unique("Free config"))
    flow = f"billing-sync-{bound.id}"
    with ui.served.rest() as http:
        put = http.put(
            f"/api/bindings/{flow}", json={"references": [bound.id], "tenantId": bound.tenant}
        )
    assert put.status_code == 200, put.text
    ui.sign_in(page, "admin")

    # Control: a config no flow uses can be deleted (the Delete control is live).
    ui.visit(page, f"/ui/credentials/{free.id}", "detail")
    live = page.get_by_role("link", name="Delete", exact=True).or_(
        page.get_by_role("button", name="Delete", exact=True)
    )
    expect(live).to_be_enabled()
    expect(page.locator("#delete-blocked")).to_have_count(0)

    ui.visit(page, f"/ui/credentials/{bound.id}", "detail")
    expect(page.get_by_role("link", name="Delete", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Delete", exact=True)).to_be_disabled()
    expect(page.locator("#delete-blocked")).to_contain_text(flow)

    # Sending the delete anyway (what the disabled button would have posted) deletes nothing.
    # The refusal comes back on the detail page (a flash after the redirect).
    answer = forge(page, f"/ui/credentials/{bound.id}/delete", {}, with_token=True)
    assert answer["redirected"] and answer["url"].endswith(f"/ui/credentials/{bound.id}"), answer
    assert answer["status"] == 200, answer["status"]
    assert "Not deleted" in answer["text"] and flow in answer["text"], answer["text"][:800]
    assert ui.served.credential(bound.id) is not None
    ui.visit(page, f"/ui/credentials/{bound.id}", "detail")
    expect(page.get_by_role("heading", level=1)).to_have_text(bound.name)


def test_no_canary_on_any_page_in_storage_or_in_a_readable_cookie(
    ui: Ui, page: Page, api: KeyServer
) -> None:
    first, second = canary("saved"), canary("rotated")
    api.accepted = {first}
    ui.sign_in(page, "admin")
    cid = create_api_key_config(
        ui, page, name=unique("Canary config"), key=first, test_url=f"{api.url}/check"
    )
    api.accepted = {second}
    rotate_secret(ui, page, "API key", second)
    canaries = [first, second]
    pages = (
        ("list", "/ui/credentials"),
        ("detail", f"/ui/credentials/{cid}"),
        ("edit", f"/ui/credentials/{cid}/edit"),
        ("rotate", f"/ui/credentials/{cid}/rotate"),
        ("audit", "/ui/audit"),
        ("api-keys", "/ui/api-keys"),
        ("types", "/ui/types"),
        ("type", "/ui/types/api_key"),
    )
    not_shown = []
    for label, path in pages:
        response = ui.visit(page, path, label)
        if response.status != 200:
            not_shown.append(f"{path} -> {response.status}")
        assert_no_canary(page, canaries, label)
    assert not not_shown, not_shown

    cookies = page.context.cookies()
    assert all(value not in str(cookies) for value in canaries)
    session = [c for c in cookies if c["name"] == SESSION_COOKIE]
    assert len(session) == 1, cookies
    assert session[0]["httpOnly"] is True and session[0]["sameSite"] == "Strict", session
    assert SESSION_COOKIE not in page.evaluate("document.cookie")
