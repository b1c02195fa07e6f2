"""``flowcred apikeys`` and the first admin key of ``flowcred init`` (DESIGN §3, §4)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowcred.broker import open_broker
from flowcred.cli.main import app
from flowcred.errors import AccessDenied
from flowcred.store.api_keys import (
    ADMIN_KEY_FILE,
    ApiKey,
    ApiKeyStore,
    generate_raw_key,
    hash_key,
    key_id_of,
)

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def home() -> Path:
    return Path(os.environ["FLOWCRED_HOME"])


def authenticate(raw: str) -> ApiKey:
    with open_broker() as broker:
        return ApiKeyStore(broker.engine, broker.clock).authenticate(raw)


def printed_keys(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("fck_")]


def test_init_prints_the_admin_key_once() -> None:
    code, out, err = cli("init")
    assert code == 0, err
    [raw] = printed_keys(out)
    path = home() / ADMIN_KEY_FILE
    assert str(path) in out and "shown only once" in err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == raw
    key = authenticate(raw)
    assert (key.role, key.tenant) == ("admin", "*")

    code, out, err = cli("init")
    assert code == 0, err
    assert printed_keys(out) == [] and "already exists" in out
    assert path.read_text().strip() == raw
    code, out, _ = cli("audit", "list", "--json")
    assert raw not in out


def test_init_skips_when_keys_are_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    key_id, raw = generate_raw_key()
    entry = {"id": key_id, "sha256": hash_key(raw), "role": "admin"}
    monkeypatch.setenv("FLOWCRED_API_KEYS", json.dumps([entry]))
    code, out, err = cli("init")
    assert code == 0, err
    assert printed_keys(out) == [] and not (home() / ADMIN_KEY_FILE).exists()
    code, out, _ = cli("apikeys", "list", "--json")
    assert [(k["id"], k["source"]) for k in json.loads(out)] == [(key_id, "bootstrap")]
    code, _, err = cli("apikeys", "revoke", key_id)
    assert code == 2 and "configured" in err and hash_key(raw) not in err


def test_create_list_revoke_rotate() -> None:
    code, out, err = cli(
        "apikeys", "create", "--role", "developer", "--tenant", "acme", "--name", "ci"
    )
    assert code == 0, err
    [raw] = printed_keys(out)
    assert "cannot be shown again" in err
    key_id = key_id_of(raw)
    assert key_id is not None and key_id in out
    assert authenticate(raw).role == "developer"

    code, out, _ = cli("apikeys", "list")
    assert code == 0 and key_id in out and "developer" in out and "acme" in out
    assert raw not in out and hash_key(raw) not in out
    code, out, _ = cli("apikeys", "list", "--json")
    [listed] = json.loads(out)
    assert listed["id"] == key_id and listed["state"] == "active" and listed["name"] == "ci"
    assert raw not in out and hash_key(raw) not in out
    code, out, _ = cli("apikeys", "list", "--tenant", "other", "--json")
    assert json.loads(out) == []

    code, out, err = cli("apikeys", "rotate", key_id, "--grace-days", "2")
    assert code == 0, err
    [new_raw] = printed_keys(out)
    assert new_raw != raw and "works until" in out
    assert authenticate(raw).id == key_id  # grace period
    assert authenticate(new_raw).name == "ci"

    code, out, err = cli("apikeys", "revoke", key_id)
    assert code == 0 and f"revoked API key {key_id}" in out
    with pytest.raises(AccessDenied, match="invalid API key"):
        authenticate(raw)
    code, out, _ = cli("apikeys", "list", "--json")
    states = {k["id"]: k["state"] for k in json.loads(out)}
    assert states == {key_id: "revoked", key_id_of(new_raw): "active"}

    code, out, _ = cli("audit", "list", "--json")
    assert raw not in out and new_raw not in out
    events = [e for e in json.loads(out) if e["eventType"] == "api_key"]
    assert [(e["action"], e["resourceId"]) for e in events] == [
        ("created", key_id),
        ("rotated", key_id_of(new_raw)),
        ("revoked", key_id),
    ]

    db = home() / "flowcred.db"
    blob = b"".join(p.read_bytes() for p in db.parent.glob("flowcred.db*"))
    for secret in (raw, new_raw, raw[17:], new_raw[17:]):
        assert secret.encode() not in blob


def test_create_json_and_expiry_options() -> None:
    code, out, err = cli(
        "apikeys", "create", "--role", "worker", "--json", "--expires-in-days", "30"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["key"].startswith(f"fck_{data['id']}_") and data["role"] == "worker"
    assert data["tenant"] == "*" and "shown only once" in data["warning"]
    assert data["expiresAt"] is not None
    code, out, _ = cli("apikeys", "create", "--role", "viewer", "--no-expiry", "--json")
    assert json.loads(out)["expiresAt"] is None
    code, _, err = cli(
        "apikeys", "create", "--role", "viewer", "--no-expiry", "--expires-in-days", "3"
    )
    assert code == 2 and "not both" in err


def test_bad_input_exits_2_with_one_line() -> None:
    code, out, err = cli("apikeys", "create", "--role", "root", "--tenant", "a b")
    assert code == 2 and "role" in err and "tenant" in err and len(err.strip().splitlines()) == 1
    assert printed_keys(out) == []
    code, _, err = cli("apikeys", "revoke", "abcdefabcdef")
    assert code == 2 and "unknown API key" in err
    code, _, err = cli("apikeys", "rotate", "abcdefabcdef")
    assert code == 2 and "unknown API key" in err


def test_generate_prints_a_bootstrap_entry_without_storing(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = cli("apikeys", "generate", "--role", "worker", "--tenant", "acme")
    assert code == 0, err
    data = json.loads(out)
    assert data["entry"]["sha256"] == hash_key(data["key"])
    monkeypatch.setenv("FLOWCRED_API_KEYS", json.dumps([data["entry"]]))
    with open_broker() as broker:
        from flowcred.store.api_keys import bootstrap_from_env

        store = ApiKeyStore(broker.engine, broker.clock, bootstrap=bootstrap_from_env())
        key = store.authenticate(data["key"])
        assert (key.source, key.tenant, key.role) == ("bootstrap", "acme", "worker")
        assert store.count_stored() == 0
