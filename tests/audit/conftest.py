"""Fixtures for the audit-trail tamper tests: a realistic chain, built once per database.

``pristine_chain`` (module scope, SQLite and PostgreSQL) opens a broker with the checkpoint
written after every commit, drives a few hundred credential operations through it (several
tenants and actors, execution ids, failures, one KEK rotation in the middle so the chain spans two
key versions), snapshots the ``audit_events`` rows and the checkpoint file, and then switches off
the append-only triggers the way an attacker with database-owner rights would (SQLite ``DROP
TRIGGER``; PostgreSQL ``ALTER TABLE ... DISABLE TRIGGER USER``). Tests restore the snapshot,
tamper, and verify with the same broker.

The PostgreSQL chain lives in its own database (created and dropped here), so the per-test resets
the shared session database gets elsewhere never race with it.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flowcred.audit import Actor
from flowcred.broker import Broker, open_broker
from flowcred.errors import CredentialNotFound
from flowcred.settings import load_settings

PG_ADMIN_DSN = os.environ.get(
    "FLOWCRED_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# (id, key_version, prev_hash, hash, body), as stored.
Row = tuple[int, int, bytes, bytes, str]

SELECT_ROWS = "SELECT id, key_version, prev_hash, hash, body FROM audit_events ORDER BY id"
INSERT_ROW = (
    "INSERT INTO audit_events (id, key_version, prev_hash, hash, body) VALUES (?, ?, ?, ?, ?)"
)


def plain_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def require_service(reason: str) -> None:
    """Skip locally, fail under CI=true (as tests/conftest.py does)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"service required under CI=true: {reason}")
    pytest.skip(reason)


class Db:
    """A raw driver connection with owner rights: what a tampering attacker holds.

    SQL uses ``?`` placeholders (translated for psycopg). Autocommit; :meth:`transaction` groups
    statements.
    """

    def __init__(self, url: str) -> None:
        self.postgres = url.startswith("postgresql")
        if self.postgres:
            import psycopg

            self.conn: Any = psycopg.connect(plain_url(url), autocommit=True)
        else:
            path = url.removeprefix("sqlite:///")
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=10)
            # A test harness's restore writes need no power-loss durability.
            self.conn.execute("PRAGMA synchronous=OFF")

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.postgres:
            with self.conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
        else:
            self.conn.executemany(sql, rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(self._sql(sql), params).fetchall())

    def rows(self) -> list[Row]:
        return [
            (int(r[0]), int(r[1]), bytes(r[2]), bytes(r[3]), str(r[4]))
            for r in self.fetchall(SELECT_ROWS)
        ]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.postgres:
            with self.conn.transaction():
                yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def disable_append_only(self) -> None:
        """Remove the append-only guard, as the database owner can."""
        if self.postgres:
            self.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        else:
            self.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
            self.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")

    def enable_append_only(self) -> None:
        if self.postgres:
            self.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")

    def replace_all(self, rows: Sequence[Row]) -> None:
        """Make the table hold exactly ``rows`` (one transaction)."""
        with self.transaction():
            self.execute("DELETE FROM audit_events")
            self.executemany(INSERT_ROW, rows)

    def close(self) -> None:
        self.conn.close()


@dataclass
class PristineChain:
    """A broker on a store whose audit chain was snapshotted, and an attacker's connection."""

    backend: str
    url: str
    home: Path
    broker: Broker
    rows: list[Row]
    checkpoint_path: Path
    checkpoint_text: str
    db: Db

    @property
    def last_id(self) -> int:
        return self.rows[-1][0]

    def restore(self) -> None:
        """Put the pristine rows and checkpoint back."""
        self.db.replace_all(self.rows)
        if self.checkpoint_path.read_text() != self.checkpoint_text:
            self.checkpoint_path.write_text(self.checkpoint_text)


def drive_operations(broker: Broker) -> None:
    """A few hundred audited operations, spanning a KEK rotation."""
    tenants = ("acme", "globex", "initech")
    ci = broker.acting_as(Actor("api_key", "key-ci-7", "ci pipeline"), source="10.0.0.7")
    runner = broker.acting_as(Actor("service", "flow-runner", "Flow Runner"), source="10.1.2.3")
    ids: dict[str, list[int]] = {t: [] for t in tenants}
    for tenant in tenants:
        for n in range(4):
            who = broker if n % 2 == 0 else ci
            record = who.credentials.create(
                name=f"{tenant} key {n}",
                type="api_key",
                tenant=tenant,
                secret={"api_key": f"sk_{tenant}_{n}_{secrets.token_hex(8)}"},
            )
            ids[tenant].append(record.id)
    for round_ in range(10):
        if round_ == 5:
            broker.rotate_keys()
        for tenant in tenants:
            provider = runner.provider(tenant=tenant)
            for cid in ids[tenant]:
                provider.resolve(cid, execution_id=f"exec-{tenant}-{round_:02d}")
            provider.get_password(ids[tenant][round_ % 4], execution_id=f"pw-{round_:02d}")
            broker.credentials.list(tenant=tenant)
            ci.credentials.rotate(
                ids[tenant][round_ % 4],
                tenant=tenant,
                secret={"api_key": f"sk_{tenant}_r{round_}_{secrets.token_hex(8)}"},
            )
            broker.credentials.get(ids[tenant][(round_ + 1) % 4], tenant=tenant)
        # A cross-tenant read: denied, and audited as such.
        with pytest.raises(CredentialNotFound):
            runner.provider(tenant="globex").resolve(ids["acme"][0], execution_id="exec-x")
    broker.credentials.update(ids["initech"][3], tenant="initech", name="initech key three")
    broker.credentials.delete(ids["initech"][2], tenant="initech")


@contextmanager
def _fresh_pg_database() -> Iterator[str]:
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        require_service(f"PostgreSQL not reachable ({type(exc).__name__})")
        raise  # unreachable
    name = f"flowcred_audit_{os.getpid()}_{secrets.token_hex(3)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def pristine_chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PristineChain]:
    backend: str = request.param
    home = tmp_path_factory.mktemp(f"audit-{backend}") / "home"
    with pytest.MonkeyPatch.context() as mp:
        # Nothing from the developer's shell may leak into a module-scoped broker either.
        for name in list(os.environ):
            if name.startswith("FLOWCRED_") and name != "FLOWCRED_TEST_PG_ADMIN_DSN":
                mp.delenv(name, raising=False)
        mp.setenv("FLOWCRED_HOME", str(home))
        with _fresh_pg_database() if backend == "postgres" else _sqlite_url(home) as url:
            settings = load_settings(home=home, database_url=url, audit_checkpoint_seconds=0)
            broker = open_broker(settings=settings)
            db = Db(url)
            try:
                drive_operations(broker)
                rows = db.rows()
                checkpoint_path = settings.resolved_checkpoint_path
                text = checkpoint_path.read_text()
                # The checkpoint must pin exactly the pristine end of the chain.
                doc = json.loads(text)
                assert (doc["last_id"], doc["hash"]) == (rows[-1][0], rows[-1][3].hex())
                db.disable_append_only()
                yield PristineChain(backend, url, home, broker, rows, checkpoint_path, text, db)
            finally:
                broker.close()
                db.close()


@contextmanager
def _sqlite_url(home: Path) -> Iterator[str]:
    yield f"sqlite:///{home / 'flowcred.db'}"


@pytest.fixture
def chain(pristine_chain: PristineChain) -> PristineChain:
    """The pristine chain, restored before the test."""
    pristine_chain.restore()
    return pristine_chain


@pytest.fixture
def owner_db() -> Iterator[Callable[[str], Db]]:
    """Open owner connections to a database URL (closed after the test)."""
    opened: list[Db] = []

    def open_db(url: str) -> Db:
        db = Db(url)
        opened.append(db)
        return db

    yield open_db
    for db in opened:
        db.close()
