"""Tests for turning a credential into headers, query parameters and cookies."""

from __future__ import annotations

from typing import Any

import pytest

from flowcred.catalog import Catalog, Placement, place
from flowcred.errors import InvalidCredential


def placed(catalog: Catalog, type_name: str, config: Any, secret: Any) -> Placement:
    ctype = catalog.get(type_name)
    clean_config, clean_secret = ctype.validate(config, secret)
    return place(ctype, clean_config, clean_secret)


@pytest.mark.parametrize(
    ("location", "part"), [("header", "headers"), ("query", "query"), ("cookie", "cookies")]
)
def test_api_key_locations(catalog: Catalog, location: str, part: str) -> None:
    result = placed(catalog, "api_key", {"key_name": "k", "location": location}, {"api_key": "v"})
    expected: dict[str, dict[str, str]] = {"headers": {}, "query": {}, "cookies": {}}
    expected[part] = {"k": "v"}
    assert result == Placement(**expected)


def test_api_key_defaults(catalog: Catalog) -> None:
    assert placed(catalog, "api_key", {}, {"api_key": "abc"}).headers == {"X-API-Key": "abc"}


def test_api_key_prefix_is_used_verbatim(catalog: Catalog) -> None:
    stripe = placed(
        catalog,
        "api_key",
        {"key_name": "Authorization", "prefix": "Bearer "},
        {"api_key": "sk_live_1"},
    )
    assert stripe.headers == {"Authorization": "Bearer sk_live_1"}
    # No space is inserted, unlike the Lattice spec's "Token abc123".
    token = placed(catalog, "api_key", {"prefix": "Token"}, {"api_key": "abc123"})
    assert token.headers == {"X-API-Key": "Tokenabc123"}


def test_api_key_prefix_rule_is_documented(catalog: Catalog) -> None:
    assert "verbatim" in catalog.get("api_key").field("prefix").help


def test_flowker_api_key_in_query(catalog: Catalog) -> None:
    result = placed(
        catalog, "api_key", {"query_param_name": "api_key", "location": "query"}, {"key": "k1"}
    )
    assert result.query == {"api_key": "k1"}
    assert result.headers == {}


def test_bearer_defaults(catalog: Catalog) -> None:
    result = placed(catalog, "bearer", {}, {"token": "eyJ"})
    assert result.headers == {"Authorization": "Bearer eyJ"}


def test_bearer_custom_header_and_prefix(catalog: Catalog) -> None:
    result = placed(
        catalog, "bearer_token", {"header_name": "X-Auth", "prefix": "JWT "}, {"token": "t"}
    )
    assert result.headers == {"X-Auth": "JWT t"}
    bare = placed(catalog, "bearer_token", {"prefix": ""}, {"token": "t"})
    assert bare.headers == {"Authorization": "t"}


def test_bearer_without_validated_config_uses_defaults(catalog: Catalog) -> None:
    assert place(catalog.get("bearer"), {}, {"token": "t"}).headers == {"Authorization": "Bearer t"}


def test_basic_known_answer(catalog: Catalog) -> None:
    result = placed(catalog, "basic", {"username": "Aladdin"}, {"password": "open sesame"})
    assert result.headers == {"Authorization": "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}


def test_basic_from_secret_fields(catalog: Catalog) -> None:
    result = placed(catalog, "twilio", {}, {"accountSid": "AC123", "authToken": "tok"})
    # base64("AC123:tok")
    assert result.headers == {"Authorization": "Basic QUMxMjM6dG9r"}


def test_basic_utf8(catalog: Catalog) -> None:
    result = placed(catalog, "basic", {"username": "test"}, {"password": "123£"})
    assert result.headers == {"Authorization": "Basic dGVzdDoxMjPCow=="}


def test_slack_sends_its_bot_token(catalog: Catalog) -> None:
    result = placed(catalog, "slack", {}, {"token": "xoxb-1-2-abc"})
    assert result.headers == {"Authorization": "Bearer xoxb-1-2-abc"}


def test_sendgrid_sends_a_bearer_key(catalog: Catalog) -> None:
    result = placed(catalog, "sendgrid", {}, {"api_key": "SG.abc.def"})
    assert result.headers == {"Authorization": "Bearer SG.abc.def"}


@pytest.mark.parametrize("type_name", ["no_auth", "postgres", "smtp", "oauth2", "fcm"])
def test_types_without_http_placement(catalog: Catalog, type_name: str) -> None:
    assert place(catalog.get(type_name), {}, {}) == Placement()


def test_missing_key_is_reported_by_field(catalog: Catalog) -> None:
    with pytest.raises(InvalidCredential, match="api_key: is required"):
        place(catalog.get("api_key"), {}, {})
    with pytest.raises(InvalidCredential, match="password: is required"):
        place(catalog.get("basic"), {}, {})


def test_placement_repr_hides_values(catalog: Catalog) -> None:
    result = placed(catalog, "api_key", {"location": "query"}, {"api_key": "very-secret"})
    assert "very-secret" not in repr(result)
    assert repr(result) == "Placement(headers={}, query={'X-API-Key': [secure]}, cookies={})"


def test_each_call_returns_fresh_dicts(catalog: Catalog) -> None:
    first = place(catalog.get("slack"), {}, {"token": "xoxb-1"})
    first.headers["Authorization"] = "changed"
    assert place(catalog.get("slack"), {}, {"token": "xoxb-1"}).headers == {
        "Authorization": "Bearer xoxb-1"
    }
