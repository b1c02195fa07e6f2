"""The OAuth2 provider catalog: every provider loads, fills its endpoints safely, and is findable.

A provider's endpoints are URL templates filled from the credential's config (Microsoft's
``{tenant}``, Shopify's ``{shop}``). What a user would notice: a listed provider, endpoints that
point at that provider over https, a refused config value that would point them elsewhere, and
a catalog that will not load when a template names a field the type lacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.api.conftest import open_api_env
from typer.testing import CliRunner

from flowcred.catalog import Catalog, load_catalog
from flowcred.catalog.oauth_spec import fill
from flowcred.cli.main import app
from flowcred.errors import ConfigurationError, InvalidCredential

# Provider type -> the registrable domain its endpoints must stay on.
PROVIDER_DOMAINS = {
    "airtable": "airtable.com",
    "asana": "asana.com",
    "atlassian": "atlassian.com",
    "auth0": "auth0.com",
    "bitbucket": "bitbucket.org",
    "box": "box.com",
    "calendly": "calendly.com",
    "discord": "discord.com",
    "dropbox": ("dropbox.com", "dropboxapi.com"),
    "facebook": "facebook.com",
    "figma": "figma.com",
    "github": "github.com",
    "gitlab": "gitlab.com",
    "google": ("google.com", "googleapis.com"),
    "hubspot": ("hubspot.com", "hubapi.com"),
    "intuit": "intuit.com",
    "keycloak": "sso.example.com",
    "linear": "linear.app",
    "linkedin": "linkedin.com",
    "mailchimp": "mailchimp.com",
    "microsoft": "microsoftonline.com",
    "notion": "notion.com",
    "okta": "okta.com",
    "pipedrive": "pipedrive.com",
    "reddit": "reddit.com",
    "salesforce": "salesforce.com",
    "shopify": "myshopify.com",
    "slack_oauth": "slack.com",
    "spotify": "spotify.com",
    "stripe_connect": "stripe.com",
    "twitch": "twitch.tv",
    "x": "x.com",
    "xero": "xero.com",
    "zendesk": "zendesk.com",
    "zoom": "zoom.us",
}
# A plausible config per template field, as a user would type it.
SAMPLE_CONFIG: dict[str, Any] = {
    "tenant": "contoso.onmicrosoft.com",
    "shop": "acme-store",
    "subdomain": "acme",
    "domain": "acme.okta.com",
    "realm_url": "https://sso.example.com/realms/acme",
    "instance": "acme.my",
}
SAMPLE_BY_TYPE = {"auth0": {"domain": "acme.us.auth0.com"}}
# What GET /api/types shows of an oauth block; a new OAuthSpec attribute is not shown unless
# added on purpose (it could one day hold something private).
PUBLIC_OAUTH_KEYS = {
    "grant",
    "authorizationUrl",
    "tokenUrl",
    "issuer",
    "revocationUrl",
    "scopes",
    "scopeSeparator",
    "pkce",
    "authMethod",
    "keep",
    "authorizeParams",
    "rotatesRefreshTokens",
    "defaultLifetimeSeconds",
    "docsUrl",
    "placeholders",
}
PLAIN_NAME_FIELDS = ("tenant", "shop", "subdomain", "domain", "instance")

TEMPLATE_TYPE = """\
name: broken
title: Broken
family: oauth2
provider: Example
description: A provider whose template names a field it lacks.
fields:
  - name: client_id
    required: true
    help: Client.
  - name: client_secret
    secret: true
    required: true
    help: Secret.
  - name: tenant
    destination: true
    help: Tenant.
request:
  style: fields
oauth:
  grant: authorization_code
  authorization_url: https://login.example.com/{tenant}/authorize
  token_url: https://login.example.com/{tenantt}/token
"""


def _providers(catalog: Catalog) -> list[str]:
    return [t.name for t in catalog.by_family("oauth2") if t.name in PROVIDER_DOMAINS]


def _config_for(catalog: Catalog, name: str) -> dict[str, Any]:
    ctype = catalog.get(name)
    raw = {"client_id": "client-1", **SAMPLE_CONFIG, **SAMPLE_BY_TYPE.get(name, {})}
    known = {f.name for f in ctype.config_fields}
    return ctype.validate_config({k: v for k, v in raw.items() if k in known})


def test_at_least_thirty_providers_load_with_an_oauth_block(catalog: Catalog) -> None:
    oauth2 = {t.name: t for t in catalog.by_family("oauth2")}
    assert set(PROVIDER_DOMAINS) <= set(oauth2)
    assert len(_providers(catalog)) >= 30
    for name in PROVIDER_DOMAINS:
        ctype = oauth2[name]
        assert ctype.oauth is not None and ctype.oauth.grant == "authorization_code", name
        assert ctype.field("client_secret").secret, name
        assert not ctype.field("client_id").secret, name
        assert ctype.field("redirect_uri").destination, name
        assert ctype.test == {"kind": "oauth2"}, name
        assert ctype.oauth.docs_url and ctype.oauth.docs_url.startswith("https://"), name


@pytest.mark.parametrize("name", sorted(PROVIDER_DOMAINS))
def test_templates_fill_into_https_urls_on_the_providers_domain(
    catalog: Catalog, name: str
) -> None:
    ctype = catalog.get(name)
    spec = ctype.oauth
    assert spec is not None
    config = _config_for(catalog, name)
    domains = PROVIDER_DOMAINS[name]
    allowed = (domains,) if isinstance(domains, str) else domains
    templates = [spec.authorization_url, spec.token_url, spec.issuer, spec.revocation_url]
    assert spec.authorization_url and spec.token_url
    for template in filter(None, templates):
        url = urlsplit(fill(template, config))
        assert url.scheme == "https", (name, template)
        host = url.hostname or ""
        assert any(host == d or host.endswith("." + d) for d in allowed), (name, host)
        assert not url.query and not url.username, (name, template)
    # Every placeholder reads a config field that decides where the client secret goes.
    for placeholder in spec.placeholders():
        assert ctype.field(placeholder).destination, (name, placeholder)


def test_template_defaults_are_the_documented_public_ones(catalog: Catalog) -> None:
    assert catalog.get("microsoft").defaults["tenant"] == "common"
    assert catalog.get("gitlab").defaults["base_url"] == "https://gitlab.com"
    spec = catalog.get("microsoft").oauth
    assert spec is not None and spec.token_url is not None
    assert fill(spec.token_url, catalog.get("microsoft").validate_config({"client_id": "c"})) == (
        "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    )


@pytest.mark.parametrize("evil", ["evil.example/x", "x@evil.example", "a?b=1", "a#b"])
@pytest.mark.parametrize("field", PLAIN_NAME_FIELDS)
def test_a_value_that_would_leave_the_provider_is_refused(
    catalog: Catalog, field: str, evil: str
) -> None:
    users = [t for t in catalog.by_family("oauth2") if t.oauth and field in t.oauth.placeholders()]
    assert users, field
    for ctype in users:
        spec = ctype.oauth
        assert spec is not None and spec.token_url is not None
        config = {**_config_for(catalog, ctype.name), field: evil}
        with pytest.raises(InvalidCredential) as caught:
            fill(spec.token_url, config)
        assert field in str(caught.value)
        assert evil not in str(caught.value)


def test_a_template_naming_an_unknown_field_stops_the_load(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(TEMPLATE_TYPE)
    with pytest.raises(ConfigurationError, match=r"broken\.yaml is invalid: .*tenantt"):
        load_catalog(tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    destination: true\n    help: Tenant.", "    help: Tenant.", "destination"),
        (
            "  - name: client_secret\n    secret: true\n    required: true\n    help: Secret.\n",
            "",
            "client_secret",
        ),
        (
            "  authorization_url: https://login.example.com/{tenant}/authorize\n",
            "",
            "authorization_url",
        ),
        ("{tenantt}", "{tenant}", None),
        ("{tenantt}/token\n", "{tenant}/token\n  keep: [team.id, 'bad key']\n", "keep"),
        ("  - name: tenant\n    destination: true", "  - name: tenant\n    secret: true", "secret"),
    ],
)
def test_declaration_checks(tmp_path: Path, old: str, new: str, message: str | None) -> None:
    text = (
        TEMPLATE_TYPE.replace("{tenantt}", "{tenant}") if "{tenantt}" not in old else TEMPLATE_TYPE
    )
    assert old in text
    (tmp_path / "broken.yaml").write_text(text.replace(old, new))
    if message is None:
        assert load_catalog(tmp_path).get("broken").oauth is not None
        return
    with pytest.raises(ConfigurationError, match=message):
        load_catalog(tmp_path)


def test_generic_types_carry_their_grant(catalog: Catalog) -> None:
    grants = {
        name: catalog.get(name).oauth.grant  # type: ignore[union-attr]
        for name in ("oauth2", "oauth2_client_credentials", "oidc_user", "google_service_account")
    }
    assert grants == {
        "oauth2": "authorization_code",
        "oauth2_client_credentials": "client_credentials",
        "oidc_user": "password",
        "google_service_account": "jwt_bearer",
    }
    # Their existing aliases still resolve.
    assert catalog.get("oidc_client_credentials").name == "oauth2_client_credentials"
    assert catalog.get("service_account_jwt").name == "google_service_account"


def test_provider_facts_users_rely_on(catalog: Catalog) -> None:
    def spec(name: str) -> Any:
        return catalog.get(name).oauth

    assert spec("slack_oauth").token_url == "https://slack.com/api/oauth.v2.access"
    assert set(spec("slack_oauth").keep) == {"team.id", "team.name", "bot_user_id"}
    assert set(spec("salesforce").keep) == {"instance_url", "id"}
    assert spec("atlassian").authorize_params["audience"] == "api.atlassian.com"
    assert "offline_access" in spec("atlassian").scopes
    # Each of these documents that a refresh hands back a new refresh token and kills the old one.
    for rotating in (
        "atlassian",
        "xero",
        "intuit",
        "box",
        "zoom",
        "github",
        "gitlab",
        "calendly",
        "zendesk",
        "shopify",
        "linear",
        "slack_oauth",
    ):
        assert spec(rotating).rotates_refresh_tokens, rotating
    assert "/oauth/v1/" not in spec("hubspot").token_url  # v1 is sunset on 2027-02-16
    assert spec("figma").token_url == "https://api.figma.com/v1/oauth/token"
    assert spec("notion").auth_method == "client_secret_basic"
    assert spec("x").pkce and spec("airtable").pkce
    assert catalog.get("microsoft_graph").name == "microsoft"
    assert catalog.get("twitter").name == "x"
    assert catalog.get("quickbooks").name == "intuit"


def test_cli_lists_the_oauth2_providers() -> None:
    result = CliRunner().invoke(app, ["types", "--family", "oauth2", "--json"])
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert {t["family"] for t in listed} == {"oauth2"}
    assert len([t for t in listed if t["name"] in PROVIDER_DOMAINS]) >= 30
    by_name = {t["name"]: t for t in listed}
    assert by_name["microsoft"]["provider"] == "Microsoft"
    result = CliRunner().invoke(app, ["types", "--family", "oauth2"])
    assert result.exit_code == 0 and "Shopify" in result.stdout and "postgres" not in result.stdout


def test_cli_show_prints_the_oauth_block() -> None:
    result = CliRunner().invoke(app, ["types", "show", "shopify"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "grant: authorization_code" in out
    assert "https://{shop}.myshopify.com/admin/oauth/access_token" in out
    assert "default scopes: read_products" in out and "pkce: no" in out


def test_api_types_show_oauth_and_no_secret(tmp_path: Path) -> None:
    with open_api_env(tmp_path) as api_env:
        got = api_env.client.get("/api/types", headers=api_env.admin())
    assert got.status_code == 200
    types = {t["name"]: t for t in got.json()}
    microsoft = types["microsoft"]
    assert microsoft["oauth"]["grant"] == "authorization_code"
    assert microsoft["oauth"]["tokenUrl"].endswith("/{tenant}/oauth2/v2.0/token")
    assert microsoft["oauth"]["pkce"] is True
    assert "offline_access" in microsoft["oauth"]["scopes"]
    fields = {f["name"]: f for f in microsoft["fields"]}
    assert fields["tenant"]["destination"] is True and fields["client_id"]["destination"] is False
    assert types["postgres"]["oauth"] is None
    assert types["slack_oauth"]["oauth"]["keep"] == ["team.id", "team.name", "bot_user_id"]
    for ctype in types.values():
        for spec in ctype["fields"]:
            if spec["secret"]:
                assert spec["default"] is None, (ctype["name"], spec["name"])
        if ctype["oauth"] is not None:
            assert set(ctype["oauth"]) == PUBLIC_OAUTH_KEYS, ctype["name"]
