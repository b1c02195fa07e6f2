"""Issue 8, item 1: credential ids are never reused, on SQLite and PostgreSQL.

Before the fix SQLite handed the id of a deleted newest credential to the next one created, so a
flow bound to the old id silently received the new credential's secret.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from flowcred.broker import Broker, open_broker
from flowcred.catalog import default_catalog
from flowcred.clock import SystemClock
from flowcred.crypto import key_source_from_settings
from flowcred.redaction import default_registry
from flowcred.settings import load_settings
from flowcred.store import migrate
from flowcred.store.engine import make_engine, write_transaction
from flowcred.store.tables import oauth_tokens, retained_subkeys


def _new(broker: Broker, name: str) -> int:
    return broker.credentials.create(name=name, type="slack", secret={"token": f"xoxb-{name}"}).id


def test_deleting_the_newest_id_never_gives_it_out_again(database_url: str, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", database_url=database_url)
    with open_broker(settings=settings) as broker:
        first = _new(broker, "first")
        newest = _new(broker, "second")
        broker.credentials.delete(newest)
        third = _new(broker, "third")
        assert third not in (first, newest)
        broker.credentials.delete(third)
    with open_broker(settings=settings) as broker:  # also after a reopen
        fourth = _new(broker, "fourth")
        assert fourth not in (first, newest, third)
        assert fourth > third


def _broker_on(settings_home: Path, url: str) -> Broker:
    """A broker on a database left at an older revision (open_broker would migrate it)."""
    settings = load_settings(home=settings_home, database_url=url)
    return Broker(
        settings=settings,
        engine=make_engine(url),
        key_source=key_source_from_settings(settings),
        catalog=default_catalog(),
        clock=SystemClock(),
        registry=default_registry(),
    )


def test_migrating_a_database_from_before_0006_keeps_ids_and_stops_reuse(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'flowcred.db'}"
    engine = make_engine(url)
    with write_transaction(engine) as conn:
        cfg = migrate._config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    assert migrate.current_revision(engine) == "0005"
    # Today's Broker also reads the tables of retired-key subkeys (revision 0007) and OAuth
    # tokens (0008); give the pre-0006 database temporary ones so the rows below go through the
    # real code paths.
    retained_subkeys.create(engine)
    oauth_tokens.create(engine)
    engine.dispose()

    old = _broker_on(home, url)
    with old:
        one = _new(old, "one")
        two = _new(old, "two")
        old.credentials.rotate(two, secret={"token": "xoxb-two-v2"})
        three = _new(old, "three")
        old.credentials.delete(three)  # the highest id, deleted before the migration
        old._binding_store.put("flow", "default", [one, two])
    assert (one, two, three) == (1, 2, 3)
    engine = make_engine(url)
    oauth_tokens.drop(engine)
    retained_subkeys.drop(engine)
    engine.dispose()

    settings = load_settings(home=home, database_url=url)
    with open_broker(settings=settings) as broker:  # migrates to head
        assert migrate.current_revision(broker.engine) == migrate.head_revision()
        with broker.engine.connect() as conn:
            sql = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'credentials'")
            ).scalar_one()
            assert "AUTOINCREMENT" in sql
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        assert [c.id for c in broker.credentials.list()] == [one, two]
        provider = broker.provider()
        assert provider.get_password(one) == "xoxb-one"
        assert provider.get_password(two) == "xoxb-two-v2"
        assert [v.version for v in broker.credentials.versions(two)] == [2, 1]
        assert broker.bindings.connections(broker.credentials.list()) == {one: 1, two: 1}
        new = _new(broker, "after")
        assert new == 4  # not 3: that id was handed out (and audited) before the migration
        broker.credentials.delete(new)
        assert _new(broker, "again") == 5
        broker.audit.verify()
    with open_broker(settings=settings) as broker:
        assert _new(broker, "reopened") == 6


def test_a_fresh_sqlite_database_declares_autoincrement(sqlite_broker: Broker) -> None:
    with sqlite_broker.engine.connect() as conn:
        sql = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'credentials'")
        ).scalar_one()
    assert "AUTOINCREMENT" in sql
