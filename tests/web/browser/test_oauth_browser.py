"""In a real browser: an OAuth2 config created through the form, "Save and authorize" through
the loopback authorization server (it consents by itself) and back to the detail page, Active;
then "Re-authorize" makes the round trip again. The audit shows both authorizations.
"""

from __future__ import annotations

import re
import secrets

from playwright.sync_api import Page, expect
from tests.oauth_support.server import AuthzServer
from tests.web.browser.conftest import Ui
from tests.web.browser.flows import (
    DETAIL_URL,
    assert_no_canary,
    canary,
    detail_id,
    open_type_form,
    section,
    textbox,
    unique,
)

from flowcred.audit.log import AuditFilter
from flowcred.web.pages.credential_list import FAMILY_LABELS

# How long a round trip may take: provider, callback, done page (0.6 s pause), detail page.
ROUND_TRIP_MS = 20_000


def _back_on_detail(ui: Ui, page: Page, cid: int | None = None) -> int:
    page.wait_for_url(DETAIL_URL, timeout=ROUND_TRIP_MS)
    ui.record_timing(page, "detail")
    if cid is not None:
        assert detail_id(page) == cid
    # The status badge, and the grant's badge that only a stored token turns to Authorized.
    expect(page.get_by_text("Active", exact=True).first).to_be_visible()
    expect(page.get_by_text("Authorized", exact=True)).to_be_visible()
    found = detail_id(page)
    record = ui.served.api.broker.record_for(found)
    assert record is not None
    assert ui.served.api.broker.tokens.status(found, record.tenant).state == "active"
    return found


def test_save_and_authorize_then_reauthorize_an_oauth2_config(
    ui: Ui, page: Page, authz_server: AuthzServer
) -> None:
    callback = f"{ui.base}/api/oauth/callback"
    ui.served.api.broker.oauth_flow.redirect_uri = callback
    client_id = f"flowcred-ui-{secrets.token_hex(3)}"
    client_secret = canary("oauth-client")
    authz_server.register_client(client_id, client_secret, redirect_uris=(callback,))
    spec = ui.served.api.broker.catalog.get("oauth2")
    name = unique("Acme CRM")

    ui.sign_in(page, "admin")
    open_type_form(ui, page, FAMILY_LABELS[spec.family], spec.title)
    textbox(page, "Name").fill(name)
    textbox(page, "Authorization URL").fill(authz_server.authorize_url)
    textbox(page, "Token URL").fill(authz_server.token_url)
    textbox(page, "Client ID").fill(client_id)
    textbox(page, "Client secret").fill(client_secret)
    textbox(page, "Scopes").fill("crm.read offline_access")
    page.get_by_role("button", name="Save and authorize").click()
    cid = _back_on_detail(ui, page)
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    assert authz_server.count("authorization_code") == 1
    assert_no_canary(page, [client_secret], "detail after authorization")

    page.get_by_role("button", name="Re-authorize").click()
    _back_on_detail(ui, page, cid)
    assert authz_server.count("authorization_code") == 2

    # The admin's detail page lists both authorizations in its audit events...
    events = section(page, "Audit events")
    authorized_rows = events.locator("tbody tr").filter(
        has_text=re.compile(r"\btoken\.authorized\b")
    )
    expect(authorized_rows).to_have_count(2)
    assert_no_canary(page, [client_secret], "detail after re-authorization")
    # ... as the audit log itself records them.
    authorized = ui.served.api.broker.audit.list(
        AuditFilter(event_type="token", action="authorized", resource_id=cid), limit=100
    )
    assert len(authorized) == 2
