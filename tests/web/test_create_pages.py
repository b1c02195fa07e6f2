"""The Create flow of the web UI: family → type → the catalog-generated form, Test connection on
the unsaved values, Save (and, for OAuth2, authorize).

Pages are read with a small stdlib HTML tree (no parser dependency) so the assertions are about
what a person sees: labels, required marks, which inputs are password inputs, the buttons.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.connectors.loopback_http import Loopback, loopback_server
from tests.web.conftest import csrf_of

from flowcred.audit.log import AuditFilter
from flowcred.store.api_key_format import key_id_of

NEW = "/ui/credentials/new"
TEST = "/ui/credentials/test"
GOOD_KEY = "create-good-key-4242"
_VOID = frozenset({"input", "meta", "link", "br", "img", "hr", "source", "wbr"})


# -- a small HTML tree ------------------------------------------------------------------------


def _attr(keyword: str) -> str:
    """``class_`` → ``class``, ``aria_current`` → ``aria-current``."""
    return keyword.rstrip("_").replace("_", "-")


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None = None
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join(" ".join(parts).split())

    def own_text(self) -> str:
        """Text without visually hidden helpers (what the label reads without its hints)."""
        parts = [
            c if isinstance(c, str) else c.own_text()
            for c in self.children
            if isinstance(c, str) or "visually-hidden" not in c.attrs.get("class", "")
        ]
        return " ".join(" ".join(parts).split())

    def walk(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.walk()

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        return [
            n
            for n in self.walk()
            if n.tag == tag and all(n.attrs.get(_attr(k)) == v for k, v in attrs.items())
        ]

    def find(self, tag: str, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}> on the page"
        return found[0]

    def ancestors(self) -> Iterator[Node]:
        node = self.parent
        while node is not None:
            yield node
            node = node.parent


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self._open = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self._open)
        self._open.children.append(node)
        if tag not in _VOID:
            self._open = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open.children.append(Node(tag, {k: v or "" for k, v in attrs}, parent=self._open))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self._open
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self._open = node.parent

    def handle_data(self, data: str) -> None:
        self._open.children.append(data)


def dom(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def label_for(page: Node, input_id: str) -> Node:
    return page.find("label", for_=input_id)


def links(page: Node) -> dict[str, str]:
    """Link text → href, for the links of the page's main content."""
    main = page.find("main", id="main")
    return {a.text(): a.attrs.get("href", "") for a in main.find_all("a")}


# -- helpers ----------------------------------------------------------------------------------


def canary(area: str) -> str:
    return f"canary-{area}-{secrets.token_hex(8)}"


@pytest.fixture
def server() -> Iterator[Loopback]:
    with loopback_server() as state:
        yield state


def loopback_url(server: Loopback) -> str:
    return f"{server.url}/header?name=X-API-Key&want={GOOD_KEY}"


def api_key_form(csrf: str, *, name: str, key: str, url: str, **extra: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "type": "api_key",
        "name": name,
        "environment": "default",
        "handle": "",
        "field:api_key": key,
        "field:test_url": url,
        **extra,
    }


def key_id(ui_env: Any, role: str, tenant: str) -> str:
    found = key_id_of(ui_env.api.keys[(role, tenant)])
    assert found
    return found


# -- family and type pages --------------------------------------------------------------------


def test_family_chooser_offers_every_family_with_its_step(ui_env: Any) -> None:
    client = ui_env.sign_in("developer", "acme")
    answer = client.get(NEW)
    assert answer.status_code == 200, answer.text
    page = dom(answer.text)
    found = links(page)
    for family, label in (
        ("oauth2", "OAuth2 Provider"),
        ("connector", "Native Connector"),
        ("custom", "Custom"),
        ("messaging", "Messaging"),
    ):
        assert found[label] == f"{NEW}?family={family}"
    steps = page.find("ol", class_="steps")
    assert [li.text() for li in steps.find_all("li", aria_current="step")] == ["Family"]


@pytest.mark.parametrize(
    ("family", "titles"),
    [
        ("custom", ["API key", "Basic authentication", "Bearer token"]),
        (
            "messaging",
            [
                "Slack bot token",
                "SMTP server",
                "SendGrid API key",
                "Twilio account",
                "Vonage API key",
                "Firebase Cloud Messaging",
                "Apple Push Notification service",
            ],
        ),
        ("connector", ["PostgreSQL", "Redis"]),
    ],
    ids=["custom", "messaging", "connector"],
)
def test_type_list_is_searchable_and_links_each_type(
    ui_env: Any, family: str, titles: list[str]
) -> None:
    client = ui_env.sign_in("admin")
    page = dom(client.get(f"{NEW}?family={family}").text)
    search = page.find("input", id="type-search")
    assert label_for(page, "type-search").text() == "Search types"
    assert search.attrs["data-filter"] == "#type-list"
    items = page.find("ul", id="type-list").find_all("li")
    assert all(li.attrs.get("data-search") for li in items)
    found = {a.text(): a.attrs["href"] for li in items for a in li.find_all("a")}
    for title in titles:
        assert title in found, f"{title} missing from the {family} list"
        assert found[title].startswith(f"{NEW}?type=")
    steps = page.find("ol", class_="steps")
    assert [li.text() for li in steps.find_all("li", aria_current="step")] == ["Type"]


def test_oauth2_list_starts_with_the_generic_type(ui_env: Any) -> None:
    client = ui_env.sign_in("admin")
    page = dom(client.get(f"{NEW}?family=oauth2").text)
    anchors = page.find("ul", id="type-list").find_all("a")
    assert anchors[0].text() == "OAuth 2.0 (manual)"
    assert anchors[0].attrs["href"] == f"{NEW}?type=oauth2"
    assert "Google (OAuth 2.0)" in [a.text() for a in anchors]


def test_unknown_type_and_family_are_not_found(ui_env: Any) -> None:
    client = ui_env.sign_in("admin")
    for path in (f"{NEW}?type=no_such_type", f"{NEW}?family=nonsense"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "Not found" in answer.text


# -- the form ---------------------------------------------------------------------------------


def test_form_is_generated_from_the_catalog(ui_env: Any) -> None:
    client = ui_env.sign_in("developer", "acme")
    answer = client.get(f"{NEW}?type=api_key")
    assert answer.status_code == 200, answer.text
    page = dom(answer.text)
    form = page.find("form", action=NEW)
    assert form.attrs["method"] == "post"
    assert form.find("input", name="type").attrs["value"] == "api_key"
    assert form.find("input", name="csrf_token").attrs["value"]
    assert label_for(page, "name").own_text() == "Name *"
    assert "required" in page.find("input", id="name").attrs
    assert label_for(page, "environment").text() == "Environment"
    assert page.find("input", id="environment").attrs["value"] == "default"
    assert label_for(page, "handle").text() == "Handle (optional)"
    # The secret: a required password input without a value, inside the "Secret" fieldset.
    secret = page.find("input", name="field:api_key")
    assert secret.attrs["type"] == "password" and "value" not in secret.attrs
    assert "required" in secret.attrs
    assert label_for(page, "field-api_key").text() == "API key *"
    fieldset = next(a for a in secret.ancestors() if a.tag == "fieldset")
    assert fieldset.find("legend").text() == "Secret"
    # Config fields come first, outside the Secret fieldset, with their defaults shown.
    url = page.find("input", name="field:test_url")
    assert url.attrs["type"] == "url"
    assert not any(a.tag == "fieldset" and a is fieldset for a in url.ancestors())
    names = [n.attrs["name"] for n in form.walk() if n.attrs.get("name", "").startswith("field:")]
    assert names.index("field:test_url") < names.index("field:api_key")
    assert page.find("select", name="field:location").find_all("option", value="header")
    # A type with a live test offers Test connection wired for app.js, then Save.
    buttons = {b.text(): b for b in form.find_all("button")}
    test = buttons["Test connection"]
    assert test.attrs["data-test-url"] == TEST and "data-test-form" in test.attrs
    assert test.attrs["data-test-result"] == "#test-result"
    assert page.find("div", id="test-result").attrs["role"] == "status"
    assert buttons["Save"].attrs["type"] == "submit"
    steps = page.find("ol", class_="steps")
    assert [li.text() for li in steps.find_all("li", aria_current="step")] == ["Details"]


def test_connector_form_has_typed_inputs_and_a_password(ui_env: Any) -> None:
    page = dom(ui_env.sign_in("admin").get(f"{NEW}?type=postgres").text)
    assert page.find("input", name="field:port").attrs["type"] == "number"
    password = page.find("input", name="field:password")
    assert password.attrs["type"] == "password" and "value" not in password.attrs
    assert "Host" in label_for(page, "field-host").text()
    assert "required" in page.find("input", name="field:host").attrs


@pytest.mark.parametrize(
    ("type_name", "buttons"),
    [
        ("google", ["Save and authorize"]),
        ("oauth2", ["Save and authorize"]),
        ("oauth2_client_credentials", ["Save"]),
    ],
    ids=["provider", "generic", "client-credentials"],
)
def test_only_authorization_code_types_save_and_authorize(
    ui_env: Any, type_name: str, buttons: list[str]
) -> None:
    page = dom(ui_env.sign_in("admin").get(f"{NEW}?type={type_name}").text)
    form = page.find("form", action=NEW)
    assert [b.text() for b in form.find_all("button")] == buttons
    notes = page.find_all("p", class_="muted create-oauth-note")
    if buttons == ["Save and authorize"]:
        assert "/api/oauth/callback" in notes[0].text()
    else:
        assert notes == []


def test_type_without_secret_or_test_has_only_save(ui_env: Any) -> None:
    page = dom(ui_env.sign_in("admin").get(f"{NEW}?type=no_auth").text)
    legends = [f.find("legend").text() for f in page.find_all("fieldset")]
    assert legends == ["Auth config", "Configuration"]
    assert not page.find_all("input", type="password")
    assert [b.text() for b in page.find("form", action=NEW).find_all("button")] == ["Save"]


# -- create -----------------------------------------------------------------------------------


def test_create_succeeds_is_listed_and_audited_as_the_key(ui_env: Any, server: Loopback) -> None:
    client = ui_env.sign_in("developer", "acme")
    last = ui_env.broker.audit.last_id()
    secret = canary("create")
    answer = client.post(
        NEW,
        data=api_key_form(csrf_of(client), name="Shop API", key=secret, url=loopback_url(server)),
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    records = [r for r in ui_env.broker.credentials.list() if r.name == "Shop API"]
    assert len(records) == 1
    record = records[0]
    assert answer.headers["location"] == f"/ui/credentials/{record.id}"
    assert (record.tenant, record.environment, record.type) == ("acme", "default", "api_key")
    assert record.config["test_url"] == loopback_url(server)
    assert record.config["location"] == "header"  # the catalog's default applied
    listing = client.get("/ui/credentials")
    assert "Saved Shop API." in listing.text
    assert f'href="/ui/credentials/{record.id}">Shop API</a>' in listing.text
    assert secret not in listing.text
    events = ui_env.broker.audit.list(AuditFilter(action="created"), after_id=last, limit=10)
    assert [(e.result, e.resource_id, e.tenant) for e in events] == [
        ("success", str(record.id), "acme")
    ]
    assert events[0].actor.kind == "api_key"
    assert events[0].actor.id == key_id(ui_env, "developer", "acme")
    assert secret not in str(events[0].details)


def test_platform_key_creates_in_the_default_tenant_with_a_handle(ui_env: Any) -> None:
    client = ui_env.sign_in("admin")
    form = api_key_form(
        csrf_of(client), name="Billing", key=canary("create"), url="", handle="billing-key"
    )
    form["environment"] = "staging"
    answer = client.post(NEW, data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    record = next(r for r in ui_env.broker.credentials.list() if r.name == "Billing")
    assert (record.tenant, record.environment, record.handle) == (
        "default",
        "staging",
        "billing-key",
    )


def test_failed_create_shows_field_errors_keeps_values_and_drops_the_secret(
    ui_env: Any,
) -> None:
    client = ui_env.sign_in("developer", "acme")
    before = len(ui_env.broker.credentials.list())
    secret = canary("create")
    answer = client.post(
        NEW,
        data=api_key_form(
            csrf_of(client), name="", key=secret, url="not a url", **{"field:prefix": "Token "}
        ),
    )
    assert answer.status_code == 422, answer.text
    assert secret not in answer.text
    page = dom(answer.text)
    assert page.find("div", id="form-errors").attrs["role"] == "alert"
    assert page.find("p", id="err-name").text() == "is required"
    assert page.find("input", id="name").attrs.get("aria-invalid") == "true"
    assert page.find("p", id="err-field-test_url").text()
    url = page.find("input", name="field:test_url")
    assert url.attrs["value"] == "not a url" and url.attrs.get("aria-invalid") == "true"
    assert page.find("input", name="field:prefix").attrs["value"] == "Token"
    key = page.find("input", name="field:api_key")
    assert key.attrs["type"] == "password" and "value" not in key.attrs
    assert len(ui_env.broker.credentials.list()) == before


def test_missing_secret_is_reported_next_to_its_field(ui_env: Any) -> None:
    client = ui_env.sign_in("developer", "acme")
    answer = client.post(NEW, data=api_key_form(csrf_of(client), name="No key", key="", url=""))
    assert answer.status_code == 422, answer.text
    assert dom(answer.text).find("p", id="err-field-api_key").text()


def test_taken_handle_is_reported_on_the_handle(ui_env: Any) -> None:
    client = ui_env.sign_in("developer", "acme")
    for attempt in range(2):
        answer = client.post(
            NEW,
            data=api_key_form(
                csrf_of(client), name=f"Dup {attempt}", key=canary("create"), url="", handle="dup"
            ),
            follow_redirects=False,
        )
    assert answer.status_code == 409, answer.text
    assert "already used" in dom(answer.text).find("p", id="err-handle").text()
    assert [r.name for r in ui_env.broker.credentials.list() if r.handle == "dup"] == ["Dup 0"]


def test_viewer_is_refused_on_the_pages_and_a_forged_post(ui_env: Any) -> None:
    client = ui_env.sign_in("viewer", "acme")
    last = ui_env.broker.audit.last_id()
    for path in (NEW, f"{NEW}?family=custom", f"{NEW}?type=api_key"):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert "Save" not in answer.text and "Test connection" not in answer.text
    listing = client.get("/ui/credentials").text
    assert 'href="/ui/credentials/new"' not in listing
    before = len(ui_env.broker.credentials.list())
    forged = client.post(
        NEW,
        data=api_key_form(csrf_of(client), name="Forged", key=canary("create"), url=""),
    )
    assert forged.status_code == 403
    assert len(ui_env.broker.credentials.list()) == before
    denials = ui_env.broker.audit.list(AuditFilter(action="access_denied"), after_id=last, limit=20)
    viewer = key_id(ui_env, "viewer", "acme")
    refused = [(e.details["method"], e.details["path"]) for e in denials if e.actor.id == viewer]
    assert ("GET", NEW) in refused and ("POST", NEW) in refused
    assert all(e.details["via"] == "ui" for e in denials)


def test_post_without_the_csrf_token_is_refused(ui_env: Any) -> None:
    client = ui_env.sign_in("admin")
    form = api_key_form("", name="No token", key=canary("create"), url="")
    del form["csrf_token"]
    answer = client.post(NEW, data=form)
    assert answer.status_code == 403
    assert "Form expired" in answer.text
    assert not [r for r in ui_env.broker.credentials.list() if r.name == "No token"]


def test_save_and_authorize_continues_to_the_provider(ui_env: Any) -> None:
    client = ui_env.sign_in("developer", "acme")
    secret = canary("create")
    answer = client.post(
        NEW,
        data={
            "csrf_token": csrf_of(client),
            "type": "google",
            "name": "Team Google",
            "environment": "default",
            "handle": "",
            "field:client_id": "client-123.apps.example",
            "field:client_secret": secret,
        },
        follow_redirects=False,
    )
    assert answer.status_code == 200, answer.text
    assert secret not in answer.text
    page = dom(answer.text)
    link = page.find("a", id="authorize-continue")
    assert link.text() == "Continue to Google"
    target = urlsplit(link.attrs["href"])
    assert (target.scheme, target.netloc) == ("https", "accounts.google.com")
    query = parse_qs(target.query)
    assert query["client_id"] == ["client-123.apps.example"]
    assert query["redirect_uri"][0].endswith("/api/oauth/callback")
    record = next(r for r in ui_env.broker.credentials.list() if r.name == "Team Google")
    assert record.tenant == "acme"
    # The page sends the browser on at once: the "saved" notice waits for the next page.
    assert "Saved Team Google." not in answer.text
    assert "Saved Team Google." in client.get(f"/ui/credentials/{record.id}").text


# -- test connection (unsaved) ----------------------------------------------------------------


def _test(client: Any, data: dict[str, str]) -> Any:
    return client.post(TEST, data=data, headers={"Accept": "application/json"})


def test_unsaved_test_passes_with_the_right_key(ui_env: Any, server: Loopback) -> None:
    client = ui_env.sign_in("developer", "acme")
    before = len(ui_env.broker.credentials.list())
    last = ui_env.broker.audit.last_id()
    answer = _test(
        client, api_key_form(csrf_of(client), name="", key=GOOD_KEY, url=loopback_url(server))
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and body["status"] == 200
    assert body["message"] and body["latencyMs"] >= 0 and body["checkedAt"]
    assert server.seen[-1]["headers"]["X-API-Key"] == GOOD_KEY
    assert len(ui_env.broker.credentials.list()) == before
    events = ui_env.broker.audit.list(AuditFilter(action="tested"), after_id=last, limit=10)
    assert [(e.result, e.resource_id, e.tenant) for e in events] == [("success", None, "acme")]
    assert events[0].actor.id == key_id(ui_env, "developer", "acme")


def test_unsaved_test_fails_with_a_wrong_key_without_echoing_it(
    ui_env: Any, server: Loopback
) -> None:
    client = ui_env.sign_in("developer", "acme")
    wrong = canary("create")
    answer = _test(
        client, api_key_form(csrf_of(client), name="", key=wrong, url=loopback_url(server))
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is False and body["status"] == 401
    assert "authentication failed" in body["message"]
    assert wrong not in answer.text
    assert server.seen[-1]["headers"]["X-API-Key"] == wrong


def test_unsaved_test_reports_bad_fields_by_slot(ui_env: Any) -> None:
    client = ui_env.sign_in("developer", "acme")
    wrong = canary("create")
    answer = _test(client, api_key_form(csrf_of(client), name="", key=wrong, url="not a url"))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert "test_url" in body["detail"] and "field-test_url" in body["errors"]
    assert wrong not in answer.text


def test_unsaved_test_of_a_type_without_live_test_is_refused(ui_env: Any) -> None:
    client = ui_env.sign_in("admin")
    answer = _test(
        client,
        {"csrf_token": csrf_of(client), "type": "no_auth", "name": "x"},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"] == "No authentication has no live connection test."


def test_unsaved_test_is_for_editors_with_a_token(ui_env: Any, server: Loopback) -> None:
    viewer = ui_env.sign_in("viewer", "acme")
    refused = _test(
        viewer, api_key_form(csrf_of(viewer), name="", key=GOOD_KEY, url=loopback_url(server))
    )
    assert refused.status_code == 403 and "detail" in refused.json()
    admin = ui_env.sign_in("admin")
    no_token = _test(admin, api_key_form("", name="", key=GOOD_KEY, url=loopback_url(server)))
    assert no_token.status_code == 403
    assert server.seen == []


def test_post_of_an_unknown_type_creates_nothing(ui_env: Any) -> None:
    client = ui_env.sign_in("admin")
    before = len(ui_env.broker.credentials.list())
    form = api_key_form(csrf_of(client), name="Ghost", key=canary("create"), url="")
    form["type"] = "no_such_type"
    answer = client.post(NEW, data=form)
    assert answer.status_code == 404
    assert len(ui_env.broker.credentials.list()) == before


def test_every_catalog_type_has_a_form_with_empty_secret_inputs(ui_env: Any) -> None:
    client = ui_env.sign_in("admin")
    catalog = ui_env.broker.catalog
    for ctype in catalog:  # bounded: the catalog's ~200 types
        answer = client.get(f"{NEW}?type={ctype.name}")
        assert answer.status_code == 200, ctype.name
        page = dom(answer.text)
        for spec in ctype.fields:
            if not spec.secret:
                continue
            inputs = page.find_all("input", name=f"field:{spec.name}")
            areas = page.find_all("textarea", name=f"field:{spec.name}")
            assert len(inputs) + len(areas) == 1, (ctype.name, spec.name)
            if inputs:
                assert inputs[0].attrs["type"] == "password", (ctype.name, spec.name)
                assert "value" not in inputs[0].attrs, (ctype.name, spec.name)
            else:
                assert areas[0].text() == "", (ctype.name, spec.name)


@pytest.mark.parametrize(
    ("type_name", "fields"),
    [
        ("sftp", {"field:host": "sftp.example.test", "field:username": "svc"}),
        ("google_service_account", {}),
    ],
    ids=["sftp", "service-account"],
)
def test_failed_create_drops_every_secret_input(
    ui_env: Any, type_name: str, fields: dict[str, str]
) -> None:
    """Password inputs and secret text areas (a PEM key, a service account's JSON) alike."""
    client = ui_env.sign_in("developer", "acme")
    ctype = ui_env.broker.catalog.get(type_name)
    planted = {f"field:{s.name}": canary(f"create-{s.name}") for s in ctype.secret_fields}
    answer = client.post(
        NEW,
        data={"csrf_token": csrf_of(client), "type": type_name, "name": "", **fields, **planted},
    )
    assert answer.status_code == 422, answer.text
    for value in planted.values():
        assert value not in answer.text
    page = dom(answer.text)
    assert page.find("p", id="err-name").text() == "is required"
    for name, value in fields.items():
        assert page.find("input", name=name).attrs["value"] == value
