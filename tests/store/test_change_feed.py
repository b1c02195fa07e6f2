"""The change feed and its watcher: rows commit with their change, readers never skip or trust a
partial list, and an unreadable feed makes the caches stop answering (fail safe).

Waits are bounded loops; nothing asserts how long anything took.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from flowcred.broker import Broker, open_broker
from flowcred.errors import StoreError
from flowcred.runtime.invalidation import ChangeWatcher
from flowcred.settings import load_settings
from flowcred.store import change_feed, migrate
from flowcred.store.change_feed import Change, newest_seq, read_since, record_change
from flowcred.store.engine import make_engine, write_transaction
from flowcred.store.tables import changes

NOW = datetime(2026, 12, 2, tzinfo=UTC)
OLD = "xoxb-" + "old-feed-0123"
NEW = "xoxb-" + "new-feed-4567"


def wait_for(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


def test_a_change_row_commits_with_its_transaction_and_only_then(engine: Engine) -> None:
    start = newest_seq(engine)
    with pytest.raises(RuntimeError), write_transaction(engine) as conn:
        record_change(conn, "credential", 7, NOW)
        raise RuntimeError("the change fails after its row was written")
    assert read_since(engine, start).changes == ()
    with write_transaction(engine) as conn:
        record_change(conn, "credential", 7, NOW)
    with write_transaction(engine) as conn:
        record_change(conn, "api_key", "abcdefghijkl", NOW)
    batch = read_since(engine, start)
    assert [(c.kind, c.object_id) for c in batch.changes] == [
        ("credential", "7"),
        ("api_key", "abcdefghijkl"),
    ]
    assert batch.newest == batch.changes[-1].seq == newest_seq(engine)
    assert not batch.overflow
    assert read_since(engine, batch.newest).changes == ()


def test_too_many_changes_since_the_last_read_is_an_overflow(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(change_feed, "MAX_BATCH", 3)
    start = newest_seq(engine)
    for cid in range(5):
        with write_transaction(engine) as conn:
            record_change(conn, "credential", cid, NOW)
    batch = read_since(engine, start)
    assert batch.overflow
    assert batch.changes == ()
    assert batch.newest == newest_seq(engine)


def test_old_rows_are_pruned_and_a_reader_behind_them_overflows(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(change_feed, "KEEP_ROWS", 4)
    monkeypatch.setattr(change_feed, "PRUNE_EVERY", 2)
    start = newest_seq(engine)
    for cid in range(12):
        with write_transaction(engine) as conn:
            record_change(conn, "credential", cid, NOW)
    with engine.connect() as conn:
        kept = conn.execute(select(func.count()).select_from(changes)).scalar_one()
    assert kept <= 5
    # Rows the reader needed are gone: it must not apply the partial list.
    assert read_since(engine, start).overflow


@pytest.fixture
def watcher(engine: Engine) -> Iterator[ChangeWatcher]:
    w = ChangeWatcher(engine, bound=0.2)
    try:
        yield w
    finally:
        w.close()


def test_watcher_hands_each_change_to_subscribers(engine: Engine, watcher: ChangeWatcher) -> None:
    seen: list[Change] = []
    watcher.subscribe(seen.append)
    assert watcher.ready()
    with write_transaction(engine) as conn:
        record_change(conn, "credential", 42, NOW)
    assert wait_for(lambda: [c.object_id for c in seen] == ["42"])
    assert watcher.fresh()


def test_watcher_resets_every_cache_on_overflow(
    engine: Engine, watcher: ChangeWatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    resets: list[bool] = []
    seen: list[Change] = []
    watcher.subscribe(seen.append)
    watcher.on_reset(lambda: resets.append(True))
    assert watcher.ready()
    monkeypatch.setattr(change_feed, "MAX_BATCH", 2)
    with write_transaction(engine) as conn:
        for cid in range(4):
            record_change(conn, "credential", cid, NOW)
    assert wait_for(lambda: bool(resets))
    assert seen == []


def test_an_unreadable_feed_makes_the_watcher_stale_and_it_recovers(
    watcher: ChangeWatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert watcher.ready() and watcher.fresh()
    real = change_feed.read_since

    def unreachable(engine: Engine, after: int) -> change_feed.Batch:
        raise StoreError("reading the change feed failed (OperationalError)")

    monkeypatch.setattr(change_feed, "read_since", unreachable)
    assert wait_for(lambda: not watcher.fresh())
    assert not watcher.ready()  # nothing may be cached meanwhile
    monkeypatch.setattr(change_feed, "read_since", real)
    assert wait_for(watcher.fresh)


def _brokers(database_url: str, tmp_path: Path, **overrides: object) -> tuple[Broker, Broker]:
    settings = load_settings(home=tmp_path / "home", database_url=database_url, **overrides)
    return open_broker(settings=settings), open_broker(settings=settings)


def test_a_broker_whose_feed_is_unreadable_reads_the_database_instead_of_its_cache(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _brokers(database_url, tmp_path)
    try:
        cred = a.credentials.create(name="Bot", type="slack", tenant="acme", secret={"token": OLD})
        provider = b.provider(tenant="acme")
        assert provider.get_password(cred.id) == OLD  # cached in B

        def unreachable(engine: Engine, after: int) -> change_feed.Batch:
            raise StoreError("reading the change feed failed (OperationalError)")

        # B can no longer learn of changes; A's rotation must still reach B's answers.
        monkeypatch.setattr(change_feed, "read_since", unreachable)
        a.credentials.rotate(cred.id, secret={"token": NEW})
        assert wait_for(lambda: provider.get_password(cred.id) == NEW)
        assert b._resolver.cached("Bot", "acme", "default") is None
    finally:
        b.close()
        a.close()


def test_a_fill_that_raced_an_invalidation_is_not_cached(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _brokers(database_url, tmp_path)
    try:
        cred = a.credentials.create(name="Bot", type="slack", tenant="acme", secret={"token": OLD})
        resolver = b._resolver
        load = resolver._load

        def load_then_invalidated(cid: int, ref: int | str, tenant: str) -> object:
            material = load(cid, ref, tenant)
            resolver.invalidate(cid)  # a change arrives while this fill is in flight
            return material

        monkeypatch.setattr(resolver, "_load", load_then_invalidated)
        assert b.provider(tenant="acme").get_password(cred.id) == OLD
        assert cred.id not in resolver._cache
    finally:
        b.close()
        a.close()


@pytest.mark.postgres
def test_postgres_notify_reaches_the_other_broker_before_its_next_poll(
    clean_pg_url: str, tmp_path: Path
) -> None:
    # A 60 s bound polls every 15 s: only the LISTEN/NOTIFY path can deliver within the wait.
    a, b = _brokers(clean_pg_url, tmp_path, change_visibility_seconds=60)
    try:
        cred = a.credentials.create(name="Bot", type="slack", tenant="acme", secret={"token": OLD})
        provider = b.provider(tenant="acme")
        assert provider.get_password(cred.id) == OLD
        assert wait_for(lambda: b._changes._listener_conn is not None)
        a.credentials.rotate(cred.id, secret={"token": NEW})
        assert wait_for(lambda: provider.get_password(cred.id) == NEW, seconds=5)
    finally:
        b.close()
        a.close()


def test_the_change_visibility_setting_is_bounded() -> None:
    from flowcred.errors import ConfigurationError

    assert load_settings().change_visibility_seconds == 1.0
    with pytest.raises(ConfigurationError, match="FLOWCRED_CHANGE_VISIBILITY_SECONDS"):
        load_settings(change_visibility_seconds=0)
