"""The Types pages: every catalog type listed, each type's fields shown."""

from __future__ import annotations

from tests.web.conftest import UiEnv


def test_every_catalog_type_is_listed_with_its_test(ui_env: UiEnv) -> None:
    page = ui_env.sign_in("viewer", "acme").get("/ui/types").text
    names = ui_env.broker.catalog.names()
    assert page.count("<tr data-search=") == len(names)
    for name in names:
        assert f'href="/ui/types/{name}"' in page
    assert 'label for="types-search">Search types' in page
    assert "live-tested" in page


def test_a_type_page_shows_its_fields_and_oauth_endpoints(ui_env: UiEnv) -> None:
    client = ui_env.sign_in("developer", "acme")
    pg = client.get("/ui/types/postgres").text
    for text in ("Host", "Port", "Password", "ssl_mode", "5432", "Connection test"):
        assert text in pg
    assert "New auth config of this type" in pg
    github = client.get("/ui/types/github").text
    assert "Authorization URL" in github and "https://github.com/login/oauth/authorize" in github
    viewer = ui_env.sign_in("viewer", "acme").get("/ui/types/postgres").text
    assert "New auth config of this type" not in viewer
    missing = client.get("/ui/types/no-such-type")
    assert missing.status_code == 404
