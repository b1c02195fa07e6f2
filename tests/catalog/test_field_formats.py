"""Direct tests of the field format checks."""

from __future__ import annotations

from typing import Any

import pytest

from flowcred.catalog.field_formats import check_format, parse_json_object


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("hostname", "db-1.example.com"),
        ("hostname", "fe80::1%eth0"),
        ("port", 1),
        ("port", 65535),
        ("url", "https://example.com/x?y=1"),
        ("url", "http://[::1]:8080"),
        ("email", "ops@example.com"),
        ("host_list", "a:1,b:2"),
        ("pem", "-----BEGIN X-----\nabc\n-----END X-----"),
    ],
)
def test_accepts(fmt: str, value: Any) -> None:
    assert check_format(fmt, value) is None


@pytest.mark.parametrize(
    ("fmt", "value"),
    [
        ("hostname", ""),
        ("hostname", "http://db"),
        ("hostname", "db/x"),
        ("hostname", "db:5432"),
        ("hostname", "-db"),
        ("hostname", "a" * 254),
        ("port", 0),
        ("port", True),
        ("url", "example.com"),
        ("url", "https://[::1"),
        ("url", "https://exa mple.com"),
        ("email", "not-an-email"),
        ("host_list", "a"),
        ("host_list", "a:1,"),
        ("host_list", "a:" + "9" * 5000),
        ("host_list", "a:0"),
        ("pem", "no armour"),
        ("service_account_json", "[]"),
        ("service_account_json", {"type": "user"}),
    ],
)
def test_refuses(fmt: str, value: Any) -> None:
    message = check_format(fmt, value)
    assert message is not None
    if isinstance(value, str) and len(value) >= 8:
        # Short values such as "a" occur in any sentence; longer ones must not be echoed.
        assert value not in message


def test_parse_json_object() -> None:
    assert parse_json_object('{"a": 1}') == {"a": 1}
    assert parse_json_object("[1]") is None
    assert parse_json_object("{") is None
    assert parse_json_object("[" * 100_000) is None


def test_unknown_format_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        check_format("telepathy", "x")
