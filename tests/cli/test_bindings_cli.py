"""``flowcred bindings set|list|delete`` (issue 8, item 18), through the broker's rules."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from flowcred.cli.main import app

runner = CliRunner()


def cli(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def _add(name: str, tenant: str = "default") -> int:
    code, out, err = cli(
        "credentials",
        "add",
        "--type",
        "bearer_token",
        "--name",
        name,
        "--tenant",
        tenant,
        "--secret-stdin",
        "--json",
        input="bindings-cli-token-0001",
    )
    assert code == 0, err
    data = json.loads(out)
    return int(data.get("credentialId", data.get("id")))  # camelCase after item 18


def test_bindings_set_list_delete_round_trip() -> None:
    cid = _add("Stripe")
    code, out, err = cli("bindings", "set", "orders", str(cid), "stripe", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["flow"] == "orders" and data["tenantId"] == "default"
    assert data["references"] == [cid, "stripe"] and data["updatedAt"].endswith("Z")

    code, out, _ = cli("bindings", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [b["flow"] for b in listed] == ["orders"]
    assert set(listed[0]) == {"flow", "tenantId", "references", "updatedAt"}

    code, out, _ = cli("bindings", "list")
    assert code == 0 and "orders" in out

    code, _, err = cli("credentials", "delete", str(cid), "--yes")
    assert code == 1 and "orders" in err  # the binding protects it

    code, out, _ = cli("bindings", "delete", "orders")
    assert code == 0 and "unregistered" in out
    code, out, _ = cli("bindings", "list", "--json")
    assert json.loads(out) == []
    code, _, err = cli("credentials", "delete", str(cid), "--yes")
    assert code == 0, err


def test_bindings_set_refuses_unknown_references() -> None:
    _add("Stripe")
    code, out, err = cli("bindings", "set", "orders", "stripe", "nope", "77", "²")
    assert code == 2
    assert "nope" in err or "references" in err
    assert "Traceback" not in err + out
    code, out, _ = cli("bindings", "list", "--json")
    assert json.loads(out) == []


def test_bindings_are_per_tenant() -> None:
    _add("Stripe", tenant="acme")
    code, _, err = cli("bindings", "set", "orders", "stripe")
    assert code == 2 and "default" in err  # no such credential in tenant default
    code, out, err = cli("bindings", "set", "orders", "stripe", "--tenant", "acme", "--json")
    assert code == 0, err
    assert json.loads(out)["tenantId"] == "acme"
    code, out, _ = cli("bindings", "list", "--tenant", "globex", "--json")
    assert json.loads(out) == []
