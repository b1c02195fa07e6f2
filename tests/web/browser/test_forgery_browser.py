"""In a real browser: a viewer sees no edit control and cannot change anything even by forging
the requests; a POST without the CSRF token, or a form posted from another loopback origin, is
refused and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.web.browser.conftest import Ui
from tests.web.browser.flows import canary, edit_controls, forge, unique
from tests.web.browser.servers import OriginServer, origin_server

from flowcred.web.auth import SESSION_COOKIE


def _carries_session(response: Any) -> bool:
    """The request behind ``response`` carried the session cookie."""
    return SESSION_COOKIE + "=" in (response.request.header_value("cookie") or "")


def _seed_pair(ui: Ui) -> tuple[Any, Any]:
    """An api_key config with a live test and an authorization-code OAuth2 config, in acme."""
    api_key = ui.served.api.seed(
        "acme",
        name=unique("Viewer probe key"),
        config={"test_url": "http://127.0.0.1:9/never-called"},
        secret={"api_key": canary("viewer")},
    )
    oauth = ui.served.api.seed(
        "acme",
        name=unique("Viewer probe oauth"),
        type="oauth2",
        config={
            "authorization_url": "http://127.0.0.1:9/authorize",
            "token_url": "http://127.0.0.1:9/token",
            "client_id": "viewer-probe",
        },
        secret={"client_secret": canary("viewer-oauth")},
    )
    return api_key, oauth


def test_a_viewer_sees_no_edit_control_and_forged_posts_are_refused(ui: Ui) -> None:
    api_key, oauth = _seed_pair(ui)

    # Control: an admin sees the controls on the same pages.
    admin = ui.new_page()
    ui.sign_in(admin, "admin")
    assert "link 'New auth config'" in edit_controls(admin)
    ui.visit(admin, f"/ui/credentials/{api_key.id}", "detail")
    shown = edit_controls(admin)
    for control in ("link 'Edit'", "link 'Rotate secret'", "button 'Test connection'"):
        assert control in shown, (control, shown)
    assert any("'Delete'" in c for c in shown), shown
    ui.visit(admin, f"/ui/credentials/{oauth.id}", "detail")
    assert "button 'Re-authorize'" in edit_controls(admin)

    viewer = ui.new_page()
    ui.sign_in(viewer, "viewer")
    expect(viewer.get_by_role("link", name=api_key.name, exact=True)).to_be_visible()
    assert edit_controls(viewer) == []
    viewer.get_by_role("link", name=api_key.name, exact=True).click()
    viewer.wait_for_url(re.compile(rf"/ui/credentials/{api_key.id}$"))
    ui.record_timing(viewer, "detail")
    expect(viewer.get_by_role("heading", level=1)).to_have_text(api_key.name)
    assert edit_controls(viewer) == []
    ui.visit(viewer, f"/ui/credentials/{oauth.id}", "detail")
    expect(viewer.get_by_role("heading", level=1)).to_have_text(oauth.name)
    assert edit_controls(viewer) == []

    # Forged from the viewer's own page, with its valid CSRF token: refused for the role.
    ui.console.allow(r"status of 403")
    forged_name = unique("Forged by viewer")
    rotate = forge(
        viewer,
        f"/ui/credentials/{api_key.id}/rotate",
        {"field:api_key": canary("forged")},
        with_token=True,
    )
    create = forge(
        viewer,
        "/ui/credentials/new",
        {"type": "api_key", "name": forged_name, "field:api_key": canary("forged")},
        with_token=True,
    )
    assert rotate["token"], "the viewer's page carries no CSRF token"
    for answer in (rotate, create):
        assert answer["status"] == 403, (answer["status"], answer["text"][:400])
        assert "role" in answer["text"], answer["text"][:400]  # the role, not the token
    assert [v["version"] for v in ui.served.versions(api_key.id)] == [1]
    assert forged_name not in ui.served.credential_names()


@pytest.fixture
def elsewhere() -> Iterator[OriginServer]:
    with origin_server() as server:
        yield server


def _attack_page(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    return (
        "<!doctype html><title>win a prize</title>"
        f'<form method="post" action="{action}">{inputs}</form>'
        '<script src="/submit.js"></script>'
    )


def test_posts_without_the_token_or_from_another_origin_change_nothing(
    ui: Ui, page: Page, elsewhere: OriginServer
) -> None:
    record = ui.served.api.seed("acme", name=unique("CSRF target"))
    ui.sign_in(page, "admin")
    ui.console.allow(r"status of 403")

    # Same page, same origin, but without the token: refused.
    for path, fields in (
        ("/ui/logout", {}),
        (f"/ui/credentials/{record.id}/rotate", {"field:api_key": canary("no-token")}),
        ("/ui/credentials/new", {"type": "api_key", "name": unique("No token")}),
    ):
        answer = forge(page, path, fields, with_token=False)
        assert answer["status"] == 403, (path, answer["status"], answer["text"][:300])
        assert "Form expired" in answer["text"], (path, answer["text"][:300])

    # Another origin (127.0.0.1 on another port: same site, so the session cookie IS sent)
    # auto-submits forms at flowcred: the origin check refuses them.
    elsewhere.pages["/logout"] = _attack_page(ui.base + "/ui/logout", {})
    elsewhere.pages["/rotate"] = _attack_page(
        f"{ui.base}/ui/credentials/{record.id}/rotate",
        {"field:api_key": canary("cross-origin"), "csrf_token": "guessed"},
    )
    for attack in ("/logout", "/rotate"):
        victim = ui.new_page(context=page.context)
        with victim.expect_response(
            lambda r: r.url.startswith(ui.base) and r.request.method == "POST"
        ) as posted:
            victim.goto(elsewhere.url + attack)
        response = posted.value
        assert response.request.header_value("origin") == elsewhere.url, attack
        assert _carries_session(response), attack
        assert response.status == 403, (attack, response.status)
        victim.close()

    # Nothing changed: still signed in, still one version.
    ui.visit(page, "/ui/credentials", "list")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("link", name=record.name, exact=True)).to_be_visible()
    assert [v["version"] for v in ui.served.versions(record.id)] == [1]
    assert ui.served.credential(record.id) is not None
