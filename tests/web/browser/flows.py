"""What a person does in the UI, as steps the browser tests share: open a type's form, create an
api_key config (with Test connection), rotate its secret, read a section of a detail page, check
a page for canaries, send a forged request from a page.

Everything goes through the DOM contract of notes/web_plan.md (accessible names, ids), the way
a person finds things, never through internal URLs or ids they could not see — except where a
test is *about* a URL (forged requests).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from playwright.sync_api import Locator, Page, expect

DETAIL_URL = re.compile(r"/ui/credentials/(\d+)$")

# fetch() from the page, as a script planted in it (or a curious user's console) would.
FORGE_JS = """async ([url, fields, withToken]) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const token = meta ? meta.getAttribute("content") : "";
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) { body.set(k, v); }
  const headers = {};
  if (withToken) { body.set("csrf_token", token); headers["X-CSRF-Token"] = token; }
  const r = await fetch(url, {method: "POST", body: body, headers: headers,
                              credentials: "same-origin"});
  return {status: r.status, url: r.url, redirected: r.redirected, text: await r.text(),
          token: token};
}"""

STORAGE_JS = """() => ({
  local: JSON.stringify(localStorage), session: JSON.stringify(sessionStorage),
  cookie: document.cookie
})"""


def canary(area: str) -> str:
    return f"canary-{area}-{secrets.token_hex(8)}"


def unique(name: str) -> str:
    return f"{name} {secrets.token_hex(3)}"


def open_type_form(ui: Any, page: Page, family_label: str, type_title: str) -> None:
    """List → "New auth config" → the family → the type: the create form of that type."""
    ui.visit(page, "/ui/credentials")
    page.get_by_role("link", name="New auth config").click()
    page.wait_for_url(re.compile(r"/ui/credentials/new$"))
    ui.record_timing(page, "create-family")
    page.get_by_role("link", name=family_label, exact=True).click()
    page.wait_for_url(re.compile(r"/ui/credentials/new\?family="))
    ui.record_timing(page, "create-types")
    expect(page.get_by_label("Search types")).to_be_visible()
    page.get_by_role("link", name=type_title, exact=True).click()
    page.wait_for_url(re.compile(r"/ui/credentials/new\?type="))
    ui.record_timing(page, "create")


def textbox(page: Page, label: str) -> Locator:
    """The input whose accessible name is ``label`` (a required mark hidden from assistive
    technology is not part of it, as a screen reader announces the field)."""
    return page.get_by_role("textbox", name=label, exact=True)


def detail_id(page: Page) -> int:
    found = DETAIL_URL.search(page.url)
    assert found, f"not on a detail page: {page.url}"
    return int(found.group(1))


def create_api_key_config(
    ui: Any, page: Page, *, name: str, key: str, test_url: str, screenshot: bool = False
) -> int:
    """Create an api_key ("Custom" → "API key") config through the form, run Test connection
    first (it must say the connection works), then Save; returns the new config's id."""
    open_type_form(ui, page, "Custom", "API key")
    textbox(page, "Name").fill(name)
    textbox(page, "API key").fill(key)
    textbox(page, "Test URL").fill(test_url)
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result")
    expect(result).to_contain_text("Connection works", timeout=15_000)
    if screenshot:
        ui.screenshot(page, "create")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(DETAIL_URL)
    ui.record_timing(page, "detail")
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    return detail_id(page)


def rotate_secret(ui: Any, page: Page, field_label: str, new_value: str) -> None:
    """From a detail page: "Rotate secret" → the new value → "Rotate secret"; back on detail."""
    page.get_by_role("link", name="Rotate secret").click()
    page.wait_for_url(re.compile(r"/ui/credentials/\d+/rotate$"))
    ui.record_timing(page, "rotate")
    textbox(page, field_label).fill(new_value)
    page.get_by_role("button", name="Rotate secret").click()
    page.wait_for_url(DETAIL_URL)


def section(page: Page, heading: str) -> Locator:
    """The <section> of a detail page whose <h2> is ``heading``."""
    return page.locator(f"xpath=//h2[normalize-space(.)='{heading}']/ancestor::section[1]")


def assert_no_canary(page: Page, canaries: list[str], where: str) -> None:
    """Neither the HTML nor the page's storage nor its script-visible cookies hold a canary."""
    html = page.content()
    state = page.evaluate(STORAGE_JS)
    for value in canaries:
        assert value not in html, f"canary in the HTML of {where} ({page.url})"
        for kind, text in state.items():
            assert value not in text, f"canary in {kind} of {where}"


def forge(page: Page, url: str, fields: dict[str, str], *, with_token: bool) -> dict[str, Any]:
    """POST ``fields`` to ``url`` by fetch() from ``page``, with or without its CSRF token;
    redirects are followed (``redirected``/``url`` say where the answer came from)."""
    answer: dict[str, Any] = page.evaluate(FORGE_JS, [url, fields, with_token])
    return answer


def edit_controls(page: Page) -> list[str]:
    """The edit controls (buttons or links, by accessible name) present on ``page``."""
    names = (
        "New auth config",
        "Edit",
        "Rotate secret",
        "Delete",
        "Test connection",
        "Re-authorize",
    )
    found = []
    for name in names:
        for role in ("button", "link"):
            if page.get_by_role(role, name=name, exact=True).count():
                found.append(f"{role} {name!r}")
    if page.get_by_role("button", name=re.compile(r"^Roll back to version")).count():
        found.append("button 'Roll back to version N'")
    return found
