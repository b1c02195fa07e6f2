"""``flowcred keys retire`` (issue 8, item 16): old KEKs leave the key file once no data key
needs them, and audit events MAC'd under them stay verifiable.

Retiring keeps the retired version's two derived audit subkeys (chain and checkpoint MAC keys),
wrapped by the primary KEK, in ``retained_subkeys``; the audit chain itself is append-only and
cannot be re-keyed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowcred.broker import open_broker
from flowcred.cli.main import app
from flowcred.crypto import KeyFileSource
from flowcred.settings import load_settings

runner = CliRunner()


def cli(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def _add(name: str, value: str) -> None:
    code, _, err = cli(
        "credentials",
        "add",
        "--type",
        "bearer_token",
        "--name",
        name,
        "--secret-stdin",
        input=value,
    )
    assert code == 0, err


def _key_file(home: Path) -> Path:
    settings = load_settings(home=home)
    return Path(settings.resolved_key_file)


def test_retire_after_rotate_keeps_resolve_and_audit_verify(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _add("first", "retire-token-first-0001")
    code, out, err = cli("keys", "rotate", "--json")
    assert code == 0, err
    assert json.loads(out)["kekVersion"] == 2
    _add("second", "retire-token-second-0002")
    key_file = _key_file(home)
    assert len(KeyFileSource(key_file).load()) == 2

    code, out, err = cli("keys", "retire", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "retired": [1],
        "removedFromSource": True,
        "keySource": f"key file {key_file}",
    }
    assert len(KeyFileSource(key_file).load()) == 1  # the old KEK is gone from the file

    code, out, err = cli("audit", "verify")
    assert code == 0, out + err  # events MAC'd under version 1 still verify
    code, out, err = cli("resolve", "first", "--reveal", "--json")
    assert code == 0, err
    assert json.loads(out)["headers"]["Authorization"].endswith("retire-token-first-0001")
    with open_broker(settings=load_settings(home=home)) as broker:
        broker.audit.verify()
        events = broker.audit.list(limit=1000)
        assert {e.key_version for e in events} == {1, 2}
        retired = [e for e in events if e.action == "retired"]
        assert retired[-1].details == {"versions": [1], "removed_from_source": True}

    # A later rotation re-wraps the kept audit keys too, so version 2 can be retired in turn.
    assert cli("keys", "rotate")[0] == 0
    code, out, err = cli("keys", "retire", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["retired"] == [2]
    assert len(KeyFileSource(key_file).load()) == 1
    code, out, err = cli("audit", "verify")
    assert code == 0, out + err
    assert cli("resolve", "second")[0] == 0


def test_retire_is_refused_while_data_keys_need_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    _add("first", "retire-token-first-0001")
    assert cli("keys", "rotate")[0] == 0
    # Put a data key back under version 1, as a server that had not reloaded its ring would.
    with open_broker(settings=load_settings(home=home)) as broker:
        from sqlalchemy import update

        from flowcred.store.tables import secret_versions

        with broker.engine.begin() as conn:
            conn.execute(update(secret_versions).values(kek_version=1))
    key_file = _key_file(home)
    code, _, err = cli("keys", "retire", "1")
    assert code == 1
    assert "version 1 wraps 1 data key(s)" in err and "keys rotate" in err
    assert len(KeyFileSource(key_file).load()) == 2  # nothing removed


def test_retiring_the_primary_is_refused(tmp_path: Path) -> None:
    _add("first", "retire-token-first-0001")
    code, _, err = cli("keys", "retire", "1")
    assert code == 1 and "primary" in err
    code, out, _ = cli("keys", "retire", "--json")
    assert code == 0 and json.loads(out)["retired"] == []
    code, _, err = cli("keys", "retire", "7")
    assert code == 2 and "not registered" in err
    assert len(KeyFileSource(_key_file(tmp_path / "home")).load()) == 1
