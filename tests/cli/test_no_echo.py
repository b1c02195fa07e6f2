"""Item 10 (CLI): what may be a secret — an unknown field name, an unexpected positional
argument, an unknown option — is not repeated in messages or audit details."""

from __future__ import annotations

import json

import pytest

from ._helpers import add_api_key, cli

CANARY = "sk_live_51HxCanary9f"


def assert_not_echoed(out: str, err: str) -> None:
    assert CANARY not in out and CANARY not in err
    code, listed, _ = cli("audit", "list", "--json")
    assert code == 0 and CANARY not in listed


def add(*extra: str) -> tuple[int, str, str]:
    return cli(
        "credentials",
        "add",
        "--type",
        "api_key",
        "--name",
        "stripe",
        *extra,
        "--secret-stdin",
        input="s3cret-value",
    )


def test_unknown_field_name_in_set_is_not_echoed() -> None:
    code, out, err = add("--set", f"{CANARY}=x")
    assert code == 2 and "unknown field name (not shown" in err
    assert "key_name" in err  # says which names exist instead
    assert_not_echoed(out, err)


def test_set_without_equals_is_not_echoed() -> None:
    code, out, err = add("--set", CANARY)
    assert code == 2 and "expected key=value" in err
    assert_not_echoed(out, err)


def test_secret_field_in_set_is_refused_by_name() -> None:
    code, _, err = add("--set", "api_key=x")
    assert code == 2 and "--set api_key: is a secret field" in err


def test_unexpected_extra_argument_is_not_echoed() -> None:
    code, out, err = add(CANARY)
    assert code == 2
    assert "unexpected extra argument (not shown: it may be a secret)" in err
    assert_not_echoed(out, err)


@pytest.mark.parametrize(
    "args",
    [
        ["credentials", "list", f"--{CANARY}"],
        [CANARY],
        ["credentials", CANARY],
        ["audit", "list", "--since", CANARY],
        ["audit", "list", "--limit", CANARY],
        ["resolve", "stripe", CANARY],
        ["credentials", "rollback", "stripe", CANARY],
        ["credentials", "add", "--type", "api_key", "--name", "x", "--expires-at", CANARY],
    ],
)
def test_usage_errors_do_not_repeat_the_input(args: list[str]) -> None:
    code, out, err = cli(*args)
    assert code == 2
    assert CANARY not in out + err


def test_name_shaped_typos_are_still_named() -> None:
    code, _, err = cli("credentials", "list", "--tenat", "x")
    assert code == 2 and "--tenat" in err


def test_known_field_names_still_work() -> None:
    add_api_key("stripe", "--set", "prefix=Key ")
    _, out, _ = cli("credentials", "show", "stripe", "--json")
    assert json.loads(out)["config"]["prefix"] == "Key "
