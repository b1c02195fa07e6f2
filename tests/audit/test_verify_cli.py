"""``flowcred audit list|export|verify`` as an operator runs them, on SQLite and PostgreSQL.

The store is filled through the CLI itself; the tampering is a hand edit of one row with the
database's own client library, after removing the append-only trigger as the database owner can.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flowcred.cli.main import app

runner = CliRunner()


def cli(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The database the CLI uses: the embedded default under FLOWCRED_HOME, or PostgreSQL
    through FLOWCRED_DATABASE_URL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'flowcred.db'}"
    url: str = request.getfixturevalue("clean_pg_url")
    monkeypatch.setenv("FLOWCRED_DATABASE_URL", url)
    return url


class HandEdit:
    """An owner's connection to the store: read and change ``audit_events`` rows by hand."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith("postgresql")
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        """Connected on first use (the CLI creates the database)."""
        if self._conn is None:
            if self.postgres:
                import psycopg

                plain = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
                self._conn = psycopg.connect(plain, autocommit=True)
            else:
                path = self.url.removeprefix("sqlite:///")
                assert Path(path).is_file()
                self._conn = sqlite3.connect(path, isolation_level=None)
        return self._conn

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(self._sql(sql), params)
        return list(cur.fetchall()) if cur.description else []

    def body(self, event_id: int) -> str:
        return str(self.run("SELECT body FROM audit_events WHERE id = ?", (event_id,))[0][0])

    def drop_guard(self) -> None:
        if self.postgres:
            self.run("ALTER TABLE audit_events DISABLE TRIGGER USER")
        else:
            self.run("DROP TRIGGER audit_events_no_update")
            self.run("DROP TRIGGER audit_events_no_delete")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


@pytest.fixture
def owner(store_url: str) -> Any:
    editor = HandEdit(store_url)
    yield editor
    editor.close()


def fill_store() -> int:
    """Credentials added, resolved, listed and shown through the CLI; returns the event count."""
    for name in ("stripe", "github", "sendgrid"):
        code, _, err = cli(
            "credentials",
            "add",
            "--type",
            "api_key",
            "--name",
            name,
            "--set",
            "key_name=X-API-Key",
            "--set",
            "location=header",
            "--secret-stdin",
            input=f"{name}-s3cret-value",
        )
        assert code == 0, err
    for name in ("stripe", "github", "sendgrid", "stripe"):
        code, _, err = cli("resolve", name)
        assert code == 0, err
    assert cli("credentials", "list")[0] == 0
    assert cli("credentials", "show", "github")[0] == 0
    events = audit_list()
    assert len(events) == 9
    return len(events)


def audit_list(*args: str) -> list[dict[str, Any]]:
    code, out, err = cli("audit", "list", "--json", *args)
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, list)
    return data


def verify_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = cli("audit", "verify", "--json", *args)
    assert code in (0, 1), err
    return code, json.loads(out)


def one_char_edit(body: str) -> str:
    """Back-date the event by changing the last digit of its microseconds."""
    data = json.loads(body)
    stamp: str = data["created_at"]
    assert stamp.endswith("Z") and stamp[-2].isdigit()
    edited = stamp[:-2] + str((int(stamp[-2]) + 1) % 10) + "Z"
    new = body.replace(f'"created_at":"{stamp}"', f'"created_at":"{edited}"', 1)
    assert new != body and len(new) == len(body)
    assert sum(a != b for a, b in zip(body, new, strict=True)) == 1
    return new


def test_list_and_export_show_every_event_in_chain_order(store_url: str) -> None:
    n = fill_store()
    events = audit_list()
    assert [e["id"] for e in events] == list(range(1, n + 1))
    assert [e["action"] for e in events[:3]] == ["created"] * 3
    assert [e["action"] for e in events].count("resolved") == 4
    assert {e["eventType"] for e in events} == {"credential"}
    for prev, event in zip([None, *events], events, strict=False):
        assert len(event["hash"]) == 64
        expected_prev = "00" * 32 if prev is None else prev["hash"]
        assert event["previousHash"] == expected_prev
    resolved = audit_list("--action", "resolved")
    assert [e["id"] for e in resolved] == [e["id"] for e in events if e["action"] == "resolved"]

    code, out, err = cli("audit", "export", "--format", "jsonl")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == n
    exported = [json.loads(line) for line in lines]
    assert [e["id"] for e in exported] == list(range(1, n + 1))
    assert exported == events
    assert f"exported {n} events" in err
    assert "s3cret" not in out


def test_verify_exits_0_when_intact_and_1_after_a_hand_edit(store_url: str, owner: Any) -> None:
    n = fill_store()
    code, out, err = cli("audit", "verify")
    assert code == 0, err
    assert f"audit chain intact: {n} events verified" in out
    code, report = verify_json()
    assert code == 0
    assert report == {
        "isValid": True,
        "firstInvalidId": None,
        "totalChecked": n,
        "message": f"audit chain intact: {n} events verified",
        "kind": None,
    }

    k = 5  # the second resolve
    original = owner.body(k)
    edited = one_char_edit(original)
    # The append-only trigger refuses the edit until the owner removes it.
    with pytest.raises(Exception, match="append-only"):
        owner.run("UPDATE audit_events SET body = ? WHERE id = ?", (edited, k))
    assert owner.body(k) == original
    owner.drop_guard()
    owner.run("UPDATE audit_events SET body = ? WHERE id = ?", (edited, k))
    assert owner.body(k) == edited

    code, out, err = cli("audit", "verify")
    assert code == 1
    assert f"event {k} was modified" in err
    assert "intact" not in out + err
    code, report = verify_json()
    assert code == 1
    assert report["isValid"] is False
    assert report["firstInvalidId"] == k
    assert report["kind"] == "modified"
    assert report["totalChecked"] == k - 1

    # Up to the event before the edit, the chain is intact; from the edited one on it is not.
    code, out, err = cli("audit", "verify", "--up-to", str(k - 1))
    assert code == 0, err
    assert f"audit chain intact: {k - 1} events verified" in out
    code, report = verify_json("--up-to", str(k - 1))
    assert code == 0 and report["isValid"] is True and report["totalChecked"] == k - 1
    code, report = verify_json("--up-to", str(k))
    assert code == 1 and report["firstInvalidId"] == k

    # Control: putting the original character back makes the chain verify again.
    owner.run("UPDATE audit_events SET body = ? WHERE id = ?", (original, k))
    code, report = verify_json()
    assert code == 0 and report["totalChecked"] == n


def test_verify_exits_1_when_the_last_events_are_deleted(store_url: str, owner: Any) -> None:
    """The CLI keeps the checkpoint file up to date, so a cut tail is named too."""
    n = fill_store()
    owner.drop_guard()
    owner.run("DELETE FROM audit_events WHERE id > ?", (n - 2,))
    code, _, err = cli("audit", "verify")
    assert code == 1
    assert f"event {n - 1} and later events are missing" in err
    code, report = verify_json()
    assert code == 1
    assert (report["firstInvalidId"], report["kind"]) == (n - 1, "truncated")
