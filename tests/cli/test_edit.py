"""Item 18: ``flowcred credentials edit REF --set k=v [--unset k] [--name N]`` (the REST PATCH)."""

from __future__ import annotations

import json

from ._helpers import add_api_key, cli


def audit_actions() -> list[tuple[str, str]]:
    code, out, _ = cli("audit", "list", "--json", "--event-type", "credential")
    assert code == 0
    return [(e["action"], e["result"]) for e in json.loads(out)]


def test_edit_sets_unsets_and_renames_keeping_the_secret() -> None:
    add_api_key("stripe", "--set", "prefix=Key ")
    before = audit_actions()
    code, out, err = cli(
        "credentials",
        "edit",
        "stripe",
        "--set",
        "key_name=X-Stripe-Key",
        "--unset",
        "prefix",
        "--name",
        "Stripe live",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["name"] == "Stripe live" and data["currentVersion"] == 1
    assert data["config"]["key_name"] == "X-Stripe-Key"
    assert data["config"].get("prefix", "") == ""  # removed: back to the type's default
    assert audit_actions()[len(before) :] == [("updated", "success")]  # one event
    code, out, _ = cli("resolve", "stripe", "--reveal", "--json")
    assert json.loads(out)["headers"] == {"X-Stripe-Key": "s3cret-value"}


def test_edit_plain_output_and_nothing_to_change() -> None:
    add_api_key("stripe")
    code, out, _ = cli("credentials", "edit", "stripe", "--set", "location=query")
    assert code == 0 and "updated credential 1 (stripe)" in out
    code, _, err = cli("credentials", "edit", "stripe")
    assert code == 2 and "nothing to change" in err


def test_edit_refuses_unknown_and_secret_fields_without_echo() -> None:
    add_api_key("stripe")
    code, _, err = cli("credentials", "edit", "stripe", "--set", "sk_live_51Hx9=1")
    assert code == 2 and "unknown field name" in err and "sk_live" not in err
    code, _, err = cli("credentials", "edit", "stripe", "--unset", "sk_live_51Hx9")
    assert code == 2 and "sk_live" not in err
    # api_key is a config field of some types (Confluent Cloud's and Mailjet's key ids), so the
    # credential's own type refuses it: a secret field of api_key.
    code, _, err = cli("credentials", "edit", "stripe", "--set", "api_key=x")
    assert code == 2 and "api_key: is a secret field" in err
    code, out, _ = cli("audit", "list", "--json")
    assert "sk_live" not in out
    assert ("updated", "failure") in audit_actions()


def test_edit_validates_against_the_type() -> None:
    add_api_key("stripe")
    code, _, err = cli("credentials", "edit", "stripe", "--set", "location=nowhere")
    assert code == 2 and "location" in err
    code, out, _ = cli("credentials", "show", "stripe", "--json")
    assert json.loads(out)["config"]["location"] == "header"  # nothing changed
