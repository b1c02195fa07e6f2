"""In a real browser: sign-in and sign-out (the session ends on the server, not just in the
browser), the headers every /ui page carries, the admin pages, and the audit chain check.

Screenshots: list.png (1280x800), list-narrow.png (390 wide), audit.png.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page
from tests.web.browser.conftest import NARROW, Ui, assert_ui_headers

from flowcred.web.auth import SESSION_COOKIE


def _session_cookie(context: Any) -> dict[str, Any]:
    found = [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    assert len(found) == 1, context.cookies()
    cookie: dict[str, Any] = found[0]
    return cookie


def _replay(ui: Ui, value: str) -> tuple[Any, list[str]]:
    """A new context that has only ``value`` as its session cookie opens /ui/credentials; returns
    the page and the Cookie headers its request to /ui/credentials carried."""
    context = ui.new_context()
    context.add_cookies([{"name": SESSION_COOKIE, "value": value, "url": ui.base + "/ui"}])
    page = ui.new_page(context=context)
    sent: list[str] = []
    page.on(
        "request",
        lambda r: (
            sent.append(r.header_value("cookie") or "")
            if r.url.startswith(ui.base + "/ui/credentials")
            else None
        ),
    )
    page.goto("/ui/credentials")
    return page, sent


def test_sign_in_shows_the_list_and_sign_out_ends_the_session_on_the_server(
    ui: Ui, page: Page
) -> None:
    name = "Session probe config"
    ui.served.api.seed("acme", name=name)
    ui.visit(page, "/ui/credentials", "login")
    assert re.search(r"/ui/login\?next=", page.url), page.url
    assert page.get_by_role("heading", name="Sign in").is_visible()

    ui.sign_in(page, "admin")
    ui.record_timing(page, "list")
    assert page.get_by_role("heading", name="Auth Configs", level=1).is_visible()
    assert page.get_by_role("link", name=name, exact=True).is_visible()
    nav = page.get_by_role("navigation", name="Main")
    for link in ("Auth Configs", "Types", "Audit", "API keys"):
        assert nav.get_by_role("link", name=link, exact=True).is_visible(), link
    ui.screenshot(page, "list")

    cookie = _session_cookie(page.context)
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict", cookie
    assert cookie["path"] == "/ui", cookie

    # Control: while the session lives, the same cookie replayed elsewhere is accepted.
    replayed, sent = _replay(ui, cookie["value"])
    assert replayed.get_by_role("heading", name="Auth Configs", level=1).is_visible()
    assert any(cookie["value"] in header for header in sent), sent

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/ui/login"))
    assert page.get_by_text("You have signed out.").is_visible()
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]

    # The old value, replayed in a fresh context, is sent and gets the sign-in page.
    after, sent = _replay(ui, cookie["value"])
    assert sent and all(cookie["value"] in header for header in sent), sent
    assert re.search(r"/ui/login\?next=%2Fui%2Fcredentials", after.url), after.url
    assert after.get_by_role("heading", name="Sign in").is_visible()
    assert after.get_by_role("link", name=name, exact=True).count() == 0


def test_the_list_in_a_narrow_window(ui: Ui) -> None:
    """A phone-sized window (390 wide) still shows the list with its sign-out button."""
    ui.served.api.seed("acme", name="Narrow window config")
    page = ui.new_page(viewport=NARROW)
    ui.sign_in(page, "developer")
    ui.record_timing(page, "list-narrow")
    assert page.get_by_role("link", name="Narrow window config", exact=True).is_visible()
    assert page.get_by_role("link", name="New auth config").is_visible()
    assert page.get_by_role("button", name="Sign out").is_visible()
    ui.screenshot(page, "list-narrow")


# The pages every signed-in admin can open; each must answer 200 with the UI's headers.
ADMIN_PAGES = (
    ("list", "/ui/credentials"),
    ("types", "/ui/types"),
    ("type", "/ui/types/api_key"),
    ("create", "/ui/credentials/new"),
    ("create-type", "/ui/credentials/new?type=api_key"),
    ("audit", "/ui/audit"),
    ("api-keys", "/ui/api-keys"),
)


def test_ui_pages_carry_no_store_and_a_script_src_self_policy(ui: Ui, page: Page) -> None:
    login = ui.visit(page, "/ui/login")
    assert login.status == 200
    assert_ui_headers(login)
    ui.sign_in(page, "admin")
    record = ui.served.api.seed("acme", name="Headers probe config")
    pages = (
        *ADMIN_PAGES,
        ("detail", f"/ui/credentials/{record.id}"),
        ("edit", f"/ui/credentials/{record.id}/edit"),
        ("rotate", f"/ui/credentials/{record.id}/rotate"),
        ("delete", f"/ui/credentials/{record.id}/delete"),
    )
    refused = []
    for label, path in pages:
        response = ui.visit(page, path, label)
        assert_ui_headers(response)
        if response.status != 200:
            refused.append(f"{path} -> {response.status}")
    assert not refused, refused


def test_admin_verifies_the_audit_chain(ui: Ui, page: Page) -> None:
    ui.sign_in(page, "admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    page.wait_for_url(re.compile(r"/ui/audit"))
    ui.record_timing(page, "audit")
    assert page.get_by_role("heading", level=1).first.is_visible()
    # The admin's own sign-in is in the log the page lists.
    assert page.get_by_role("table").first.get_by_text("signed_in").first.is_visible()
    page.get_by_role("button", name="Verify chain").click()
    result = page.locator("#verify-result")
    result.wait_for()
    assert re.search(r"Chain intact", result.inner_text()), result.inner_text()
    ui.screenshot(page, "audit")
