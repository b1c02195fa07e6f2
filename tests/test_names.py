"""Item 12 of the hardening issue: handles never collide, names carry no control characters,
and header, query and cookie names in config are RFC 9110 tokens."""

from __future__ import annotations

import pytest

import flowcred
from flowcred.broker import Broker
from flowcred.references import slugify

CONTROL = ["\x00", "\r", "\n", "\x1b[31m", "\x7f", "\x85", "\x9b", "\t"]


def _key(broker: Broker, name: str, **kw: object) -> flowcred.Credential:
    return broker.credentials.create(
        name=name, type="api_key", secret={"api_key": "sk_names_123456"}, **kw
    )


def test_non_latin_names_get_distinct_handles(broker: Broker) -> None:
    first = _key(broker, "Ключ API")
    second = _key(broker, "Токен")
    third = _key(broker, "Токен")
    handles = [first.handle, second.handle, third.handle]
    assert len(set(handles)) == 3
    assert all(h and h[0].isascii() for h in handles)
    assert broker.credentials.get(third.handle).id == third.id


def test_generated_handle_gets_a_suffix_when_taken(broker: Broker) -> None:
    assert _key(broker, "Stripe").handle == "stripe"
    assert _key(broker, "Stripe").handle == "stripe-2"
    assert _key(broker, "stripe!").handle == "stripe-3"
    # In another environment the plain slug is free again.
    assert _key(broker, "Stripe", environment="staging").handle == "stripe"
    # A handle the caller chose is never changed: it conflicts.
    with pytest.raises(flowcred.HandleConflict):
        _key(broker, "Other", handle="stripe")


def test_slugify_is_ascii_and_never_empty() -> None:
    assert slugify("Crème brûlée") == "creme-brulee"
    assert slugify("Токен") == "credential"
    assert slugify("123") == "cred-123"


@pytest.mark.parametrize("char", CONTROL)
def test_control_characters_in_names_are_refused(broker: Broker, char: str) -> None:
    with pytest.raises(flowcred.InvalidCredential) as caught:
        _key(broker, f"Str{char}ipe", handle="stripe")
    assert [p.field for p in caught.value.problems] == ["name"]
    assert "control" in caught.value.problems[0].message
    cred = _key(broker, "Stripe")
    with pytest.raises(flowcred.InvalidCredential) as caught:
        broker.credentials.update(cred.id, name=f"Str{char}ipe")
    assert [p.field for p in caught.value.problems] == ["name"]
    assert broker.credentials.get(cred.id).name == "Stripe"


@pytest.mark.parametrize("field", ["handle", "tenant", "environment"])
@pytest.mark.parametrize("char", ["\n", "\r\n", "\x00", "\x1b"])
def test_control_characters_in_handles_tenants_and_environments_are_refused(
    broker: Broker, field: str, char: str
) -> None:
    with pytest.raises(flowcred.InvalidCredential) as caught:
        _key(broker, "Stripe", **{field: f"acme{char}"})
    assert field in [p.field for p in caught.value.problems]


@pytest.mark.parametrize(
    ("type_name", "field", "secret"),
    [
        ("api_key", "key_name", {"api_key": "sk_hdr_123456"}),
        ("api_key", "header_name", {"api_key": "sk_hdr_123456"}),  # an alias of key_name
        ("bearer_token", "header_name", {"token": "tok_hdr_123456"}),
    ],
)
@pytest.mark.parametrize("bad", ["X-A: evil", "X-A\r\nX-B", "X A", "", "X-Ä", "a(b)"])
def test_header_query_and_cookie_names_must_be_tokens(
    broker: Broker, type_name: str, field: str, secret: dict[str, str], bad: str
) -> None:
    with pytest.raises(flowcred.InvalidCredential) as caught:
        broker.credentials.create(name="Hdr", type=type_name, config={field: bad}, secret=secret)
    problem_fields = [p.field for p in caught.value.problems]
    assert problem_fields and all(f in ("key_name", "header_name") for f in problem_fields)
    cred = broker.credentials.create(name="Hdr", type=type_name, secret=secret)
    with pytest.raises(flowcred.InvalidCredential):
        broker.credentials.update(cred.id, config={field: bad})
    canonical = "key_name" if type_name == "api_key" else field
    ok = broker.credentials.update(cred.id, config={canonical: "X-Custom_Key.v2!#$%&'*+^`|~"})
    assert ok.config


def test_placement_refuses_a_stored_name_that_is_not_a_token() -> None:
    from flowcred.catalog import default_catalog, place

    ctype = default_catalog().get("api_key")
    with pytest.raises(flowcred.InvalidCredential) as caught:
        place(ctype, {"key_name": "X-A: evil"}, {"api_key": "sk_123"})
    assert [p.field for p in caught.value.problems] == ["key_name"]


def test_a_type_whose_field_becomes_a_header_name_must_declare_it_a_token() -> None:
    from pydantic import ValidationError

    from flowcred.catalog import CredentialType

    declaration = {
        "name": "custom_header",
        "title": "Custom",
        "family": "custom",
        "description": "A key in a header named by config.",
        "fields": [
            {"name": "key", "secret": True, "required": True},
            {"name": "header"},
        ],
        "request": {"style": "bearer", "secret_field": "key", "header_field": "header"},
    }
    with pytest.raises(ValidationError, match="http_token"):
        CredentialType.model_validate(declaration)
    declaration["fields"][1]["format"] = "http_token"  # type: ignore[index]
    assert CredentialType.model_validate(declaration).field("header").format == "http_token"
