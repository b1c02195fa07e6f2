"""Item 6 of the connectors issue: the catalog grows to 150+ types, each with field validation.

For every type in the catalog, old and new, a valid example built from its own field specs
passes validation, and each way of breaking it (a required field dropped, a bad value in a
formatted or enumerated field, an empty ``one_of`` group) fails with a problem naming that
field and never the secret. The new entries carry the vendor facts a user relies on (the header
and prefix a key is sent with, the live-test family) and a ``category`` for the form picker.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.api.conftest import open_api_env
from typer.testing import CliRunner

from flowcred.catalog import (
    CATEGORIES,
    Catalog,
    CredentialType,
    FieldSpec,
    load_catalog,
    place,
)
from flowcred.catalog.registry import default_catalog
from flowcred.cli.main import app
from flowcred.errors import ConfigurationError, InvalidCredential

CANARY = "canary-7f3e9c1d-secret"

# The 69 types that predate issue 11; every other type is one of its new entries.
BEFORE_ISSUE_11 = frozenset(
    "airtable api_key apns asana atlassian auth0 aws_s3 azure_blob basic_auth bearer_token "
    "bigquery bitbucket box calendly discord dropbox elasticsearch facebook fcm figma ftp gcs "
    "github gitlab google google_service_account hubspot intuit kafka keycloak linear linkedin "
    "mailchimp mariadb microsoft mongodb mqtt mssql mysql nats no_auth notion oauth2 "
    "oauth2_client_credentials oidc_user okta oracle pipedrive postgres rabbitmq reddit redis "
    "salesforce sendgrid sftp shopify slack slack_oauth smtp snowflake spotify stripe_connect "
    "twilio twitch vonage x xero zendesk zoom".split()
)
# The live-test families a new entry may name: the ones whose wire protocol it really speaks.
NEW_ENTRY_KINDS = frozenset(
    {"http", "postgres", "mysql", "redis", "amqp", "s3", "sftp", "ftp", "smtp"}
)
# Every kind the connectors registry knows (plan: one module per family), plus the OAuth token
# check, plus the placeholder kinds the older files carry until their family modules land.
KNOWN_KINDS = NEW_ENTRY_KINDS | {
    "nats", "mqtt", "slack", "sendgrid", "twilio", "vonage", "fcm", "apns", "mongodb", "kafka",
    "mssql", "oracle", "elasticsearch", "snowflake", "bigquery", "gcs", "azure_blob", "oauth2",
}  # fmt: skip
PLACEHOLDER_KINDS = frozenset({"tcp", "aws", "sql", "google_service_account"})

ALL_TYPES = default_catalog().names()
NEW_TYPES = [name for name in ALL_TYPES if name not in BEFORE_ISSUE_11]

GOOD_BY_FORMAT: dict[str, Any] = {
    "hostname": "db.example.com",
    "port": 5432,
    "url": "https://api.example.com/v1",
    "email": "ops@example.com",
    "host_list": "broker1.example.com:9092",
    "http_token": "X-Example",
}
BAD_BY_FORMAT: dict[str, Any] = {
    "hostname": "https://db.example.com/path",
    "port": 70000,
    "url": "ftp://files.example.com/",
    "email": "not-an-address",
    "host_list": "broker-without-port",
    "http_token": "Bad Header:",
    "pem": "no armour here " + CANARY,
    "service_account_json": '{"type": "user", "note": "' + CANARY + '"}',
}


def literal_prefix(pattern: str | None) -> str:
    """The literal text an anchored pattern forces first: escapes are unescaped, an optional
    group is skipped, a group's first alternative is taken; it stops at other metacharacters."""
    if not pattern or not pattern.startswith("^"):
        return ""
    out: list[str] = []
    i = 1
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i + 1])
            i += 2
        elif ch == "(":
            end = pattern.index(")", i)
            if pattern[end + 1 : end + 2] == "?":
                i = end + 2
                continue
            out.append(literal_prefix("^" + pattern[i + 1 : end].split("|")[0]))
            i = end + 1
        elif ch.isalnum() or ch in "_-:/=.@":
            out.append(ch)
            i += 1
        else:
            break
    return "".join(out)


def pem(body: str) -> str:
    return f"-----BEGIN PRIVATE KEY-----\nMIIE{body}\n-----END PRIVATE KEY-----\n"


def good_value(spec: FieldSpec) -> Any:
    """A value of ``spec`` that passes its checks; secrets carry the canary."""
    if spec.enum:
        return [spec.enum[0]] if spec.kind == "list" else spec.enum[0]
    if spec.kind == "integer":
        return 5432 if spec.format == "port" else max(spec.minimum or 1, 1)
    if spec.kind == "boolean":
        return True
    if spec.format == "service_account_json":
        return {
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": "0123abcd",
            "private_key": pem(CANARY),
            "client_email": "svc@demo-project.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    if spec.kind == "json":
        return {"note": CANARY if spec.secret else "plain"}
    if spec.format == "pem":
        return pem(CANARY)
    if spec.format in GOOD_BY_FORMAT:
        one = GOOD_BY_FORMAT[spec.format]
    else:
        one = literal_prefix(spec.pattern) + (CANARY if spec.secret else "example")
    return [one] if spec.kind == "list" else one


def example(ctype: CredentialType) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config, secret)`` with every required field and the first member of each one_of group."""
    wanted = {spec.name for spec in ctype.fields if spec.required}
    wanted.update(group[0] for group in ctype.one_of)
    config: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for spec in ctype.fields:
        if spec.name in wanted:
            (secret if spec.secret else config)[spec.name] = good_value(spec)
    return config, secret


def problems_of(ctype: CredentialType, config: dict[str, Any], secret: dict[str, Any]) -> list[str]:
    """The fields named by the validation error; the error must not quote the canary."""
    with pytest.raises(InvalidCredential) as caught:
        ctype.validate(config, secret)
    assert CANARY not in str(caught.value)
    assert caught.value.type_name == ctype.name
    return [problem.field for problem in caught.value.problems]


@pytest.fixture(scope="module")
def new_catalog() -> Catalog:
    return default_catalog()


# --- every type: a valid example passes, every broken one fails naming the field ---------------


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_a_valid_example_passes_and_round_trips_through_the_secret_value(type_name: str) -> None:
    ctype = default_catalog().get(type_name)
    config, secret = example(ctype)
    clean_config, clean_secret = ctype.validate(config, secret)
    # Defaults are filled in, so a form needs to send only what the user changed.
    for name, default in ctype.defaults.items():
        if not ctype.field(name).secret and name not in config:
            assert clean_config[name] == default
    assert CANARY not in json.dumps(clean_config)
    # The Flow Studio secretValue string of a full secret reads back to the same secret.
    full = ctype.validate_secret({**secret, **{s.name: good_value(s) for s in ctype.secret_fields}})
    text = ctype.secret_value_of(full)
    assert ctype.validate_secret(ctype.parse_secret_value(text)) == full
    assert not clean_secret or CANARY in json.dumps(clean_secret)


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_dropping_a_required_field_fails_naming_it(type_name: str) -> None:
    ctype = default_catalog().get(type_name)
    config, secret = example(ctype)
    required = [spec for spec in ctype.fields if spec.required]
    for spec in required:
        side = secret if spec.secret else config
        broken = {k: v for k, v in side.items() if k != spec.name}
        args = (config, broken) if spec.secret else (broken, secret)
        assert spec.name in problems_of(ctype, *args), f"{type_name}.{spec.name}"
    if required:
        # All at once: every problem is reported, not only the first.
        assert set(problems_of(ctype, {}, {})) >= {spec.name for spec in required}


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_a_bad_value_in_a_formatted_or_enumerated_field_fails_naming_it(type_name: str) -> None:
    ctype = default_catalog().get(type_name)
    config, secret = example(ctype)
    checked = 0
    for spec in ctype.fields:
        if spec.enum:
            bad: Any = ["not-a-choice"] if spec.kind == "list" else "not-a-choice"
        elif spec.format in BAD_BY_FORMAT:
            bad = BAD_BY_FORMAT[spec.format]
            bad = [bad] if spec.kind == "list" else bad
        elif spec.pattern and spec.kind == "string":
            bad = " does not match " + (CANARY if spec.secret else "")
        else:
            continue
        checked += 1
        if spec.secret:
            assert spec.name in problems_of(ctype, config, {**secret, spec.name: bad})
        else:
            assert spec.name in problems_of(ctype, {**config, spec.name: bad}, secret)
    if any(spec.format or spec.enum for spec in ctype.fields):
        assert checked


@pytest.mark.parametrize("type_name", [n for n in ALL_TYPES if default_catalog().get(n).one_of])
def test_an_empty_one_of_group_fails_naming_its_first_field(type_name: str) -> None:
    ctype = default_catalog().get(type_name)
    config, secret = example(ctype)
    for group in ctype.one_of:
        without_config = {k: v for k, v in config.items() if k not in group}
        without_secret = {k: v for k, v in secret.items() if k not in group}
        assert group[0] in problems_of(ctype, without_config, without_secret), type_name


# --- the catalog as a whole --------------------------------------------------------------------


def test_the_catalog_has_at_least_150_types_and_85_new_ones(new_catalog: Catalog) -> None:
    assert len(new_catalog) >= 150
    assert len(NEW_TYPES) >= 85
    assert BEFORE_ISSUE_11 <= set(new_catalog.names())


def test_every_type_has_a_title_family_and_one_line_description(new_catalog: Catalog) -> None:
    for ctype in new_catalog:
        assert ctype.title.strip() and ctype.family and ctype.description.strip(), ctype.name
        assert ctype.provider, ctype.name
        assert "\n" not in ctype.description, ctype.name


def test_every_test_kind_is_a_known_family(new_catalog: Catalog) -> None:
    for ctype in new_catalog:
        if ctype.test is None:
            continue
        kind = ctype.test.get("kind")
        if ctype.name in BEFORE_ISSUE_11:
            assert kind in KNOWN_KINDS | PLACEHOLDER_KINDS, ctype.name
        else:
            assert kind in NEW_ENTRY_KINDS, ctype.name


def test_every_new_http_test_has_a_vendor_test_url_over_https(new_catalog: Catalog) -> None:
    tested = 0
    for name in NEW_TYPES:
        ctype = new_catalog.get(name)
        if ctype.test is None or ctype.test.get("kind") != "http":
            continue
        tested += 1
        spec = ctype.field("test_url")
        assert spec.destination and not spec.secret, name
        url = urlsplit(spec.default)
        assert url.scheme == "https" and url.hostname, name
        assert ctype.request.style in ("api_key", "bearer", "basic"), name
    assert tested >= 30


def test_new_entries_use_the_field_names_of_their_test_family(new_catalog: Catalog) -> None:
    """A live test of kind postgres reads host/port/database/username/password, whatever the
    vendor; so every type of one kind must offer at least the fields the family's base type has."""
    base = {"postgres": "postgres", "mysql": "mysql", "redis": "redis", "amqp": "rabbitmq",
            "s3": "aws_s3"}  # fmt: skip
    for name in NEW_TYPES:
        ctype = new_catalog.get(name)
        kind = (ctype.test or {}).get("kind")
        if kind not in base:
            continue
        family_type = new_catalog.get(base[kind])
        wanted = {spec.name for spec in family_type.fields if spec.name != "session_token"}
        assert wanted <= {spec.name for spec in ctype.fields}, name
        for spec_name in ("host", "port", "endpoint_url"):
            if spec_name in wanted:
                assert ctype.field(spec_name).destination, f"{name}.{spec_name}"


def test_every_connector_and_new_type_has_a_category(new_catalog: Catalog) -> None:
    for ctype in new_catalog:
        if ctype.family == "connector" or ctype.name not in BEFORE_ISSUE_11:
            assert ctype.category in CATEGORIES, ctype.name
    counts = {category: len(new_catalog.by_category(category)) for category in CATEGORIES}  # type: ignore[arg-type]
    assert min(counts.values()) >= 15, counts


# --- vendor facts: how each key is sent ----------------------------------------------------------

# (type, where, name, value before the secret); value None means HTTP Basic with that user name.
PLACEMENTS = [
    ("stripe", "headers", "Authorization", "Bearer "),
    ("openai", "headers", "Authorization", "Bearer "),
    ("anthropic", "headers", "x-api-key", ""),
    ("google_gemini", "headers", "x-goog-api-key", ""),
    ("elevenlabs", "headers", "xi-api-key", ""),
    ("deepl", "headers", "Authorization", "DeepL-Auth-Key "),
    ("datadog", "headers", "DD-API-KEY", ""),
    ("new_relic", "headers", "API-Key", ""),
    ("pagerduty", "headers", "Authorization", "Token token="),
    ("opsgenie", "headers", "Authorization", "GenieKey "),
    ("honeycomb", "headers", "X-Honeycomb-Team", ""),
    ("postmark", "headers", "X-Postmark-Server-Token", ""),
    ("brevo", "headers", "api-key", ""),
    ("sparkpost", "headers", "Authorization", ""),
    ("gitlab_pat", "headers", "PRIVATE-TOKEN", ""),
    ("circleci", "headers", "Circle-Token", ""),
    ("discord_bot", "headers", "Authorization", "Bot "),
    ("clickup", "headers", "Authorization", ""),
    ("okta_api_token", "headers", "Authorization", "SSWS "),
    ("influxdb", "headers", "Authorization", "Token "),
    ("pinecone", "headers", "Api-Key", ""),
    ("qdrant", "headers", "api-key", ""),
    ("shortcut", "headers", "Shortcut-Token", ""),
    ("algolia", "headers", "X-Algolia-API-Key", ""),
    ("mapbox", "query", "access_token", ""),
    ("mailgun", "headers", "Authorization", None),
    ("jira", "headers", "Authorization", None),
    ("freshdesk", "headers", "Authorization", None),
]


@pytest.mark.parametrize(("type_name", "where", "name", "prefix"), PLACEMENTS)
def test_a_key_is_sent_where_the_vendor_documents_it(
    type_name: str, where: str, name: str, prefix: str | None
) -> None:
    ctype = default_catalog().get(type_name)
    config, secret = example(ctype)
    clean_config, clean_secret = ctype.validate(config, secret)
    placed = getattr(place(ctype, clean_config, clean_secret), where)
    assert list(placed) == [name]
    value = placed[name]
    if prefix is not None:
        key = next(v for v in clean_secret.values() if isinstance(v, str) and CANARY in v)
        assert value == prefix + key
    else:
        assert value.startswith("Basic ")
        user, _, password = base64.b64decode(value.removeprefix("Basic ")).decode().partition(":")
        assert CANARY in user + password
        if type_name == "mailgun":
            assert user == "api"
        if type_name == "jira":
            assert user == "ops@example.com"
        if type_name == "freshdesk":
            assert password == "X"


def test_wire_compatible_entries_point_at_their_family() -> None:
    catalog = default_catalog()
    expected = {
        "cockroachdb": ("postgres", 26257),
        "redshift": ("postgres", 5439),
        "yugabytedb": ("postgres", 5433),
        "tidb": ("mysql", 4000),
        "planetscale": ("mysql", 3306),
        "azure_cache_redis": ("redis", 6380),
        "cloudamqp": ("amqp", 5671),
    }
    for name, (kind, port) in expected.items():
        ctype = catalog.get(name)
        assert ctype.test == {"kind": kind}, name
        assert ctype.defaults["port"] == port, name
    assert catalog.get("cloudflare_r2").defaults["region"] == "auto"
    assert catalog.get("planetscale").defaults["ssl_mode"] == "VERIFY_IDENTITY"


# --- the category field: loading, precedence, lookup, output -------------------------------------

_MINIMAL = "title: T\nfamily: connector\nprovider: P\ndescription: D.\n"


def test_an_unknown_category_stops_the_load_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "widgets.yaml").write_text(_MINIMAL + "category: gadgets\n")
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(tmp_path)
    assert "widgets.yaml" in str(caught.value) and "category" in str(caught.value)


def test_every_native_connector_declares_its_category() -> None:
    connectors = [t for t in default_catalog() if t.family == "connector"]
    assert connectors and all(t.category is not None for t in connectors)
    assert default_catalog().get("postgres").category == "databases"
    assert default_catalog().get("kafka").category == "message_brokers"


def test_types_json_lists_every_type_with_its_category() -> None:
    result = CliRunner().invoke(app, ["types", "--json"])
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert len(listed) >= 150
    by_name = {entry["name"]: entry for entry in listed}
    assert by_name["cockroachdb"]["category"] == "databases"
    assert by_name["amazon_sqs"]["category"] == "message_brokers"
    assert by_name["minio"]["category"] == "file_storage"
    assert by_name["servicenow"]["category"] == "enterprise"
    assert by_name["stripe"]["category"] == "api_services"
    assert by_name["postgres"]["category"] == "databases"
    assert by_name["api_key"]["category"] is None
    assert CANARY not in result.stdout


def test_api_types_carries_the_category_for_the_form_picker(tmp_path: Path) -> None:
    with open_api_env(tmp_path) as api_env:
        got = api_env.client.get("/api/types", headers=api_env.admin())
    assert got.status_code == 200
    categories = {entry["name"]: entry["category"] for entry in got.json()}
    assert len(categories) >= 150
    assert categories["azure_service_bus"] == "message_brokers"
    assert categories["kafka"] == "message_brokers"
    assert categories["oauth2"] is None


def test_cli_lists_one_category_and_refuses_an_unknown_one() -> None:
    result = CliRunner().invoke(app, ["types", "--category", "message_brokers", "--json"])
    assert result.exit_code == 0, result.stderr
    listed = {t["name"]: t for t in json.loads(result.stdout)}
    assert {t["category"] for t in listed.values()} == {"message_brokers"}
    assert {"kafka", "rabbitmq", "amazon_sqs"} <= set(listed) and "postgres" not in listed
    refused = CliRunner().invoke(app, ["types", "--category", "gadgets"])
    assert refused.exit_code == 2 and "databases" in refused.stderr
