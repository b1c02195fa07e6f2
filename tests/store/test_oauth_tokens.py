"""The token table's guarantees, on SQLite and PostgreSQL: one lease holder at a time, a lapsed
lease can be taken over, a fenced persist cannot overwrite a newer token, tokens are sealed to
their row and re-wrapped by ``keys rotate``, and a refresh never touches secret versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from flowcred.broker import Broker
from flowcred.errors import DecryptionFailed
from flowcred.runtime.token_set import TokenSet
from flowcred.store.oauth_tokens import TokenStore, new_lease_owner
from flowcred.store.tables import oauth_tokens

CANARY_ACCESS = "canary-access-7f3a9c21e5d84b60"
CANARY_REFRESH = "canary-refresh-0d9e8c7b6a5f4e31"


class StepClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()


def _credential(broker: Broker, name: str = "m2m") -> int:
    cred = broker.credentials.create(
        name=name,
        type="oauth2_client_credentials",
        config={"token_url": "https://auth.example.test/token", "client_id": "app"},
        secret={"client_secret": "s3cret-client-value"},
    )
    return cred.id


def _store(broker: Broker, clock: StepClock) -> TokenStore:
    rings = broker._rings
    return TokenStore(
        broker.engine, ring=lambda: rings.current, ring_for=rings.covering, clock=clock
    )


def _tokens(access: str = CANARY_ACCESS, refresh: str | None = CANARY_REFRESH) -> TokenSet:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    return TokenSet(
        access_token=access,
        issued_at=now,
        expires_at=now + timedelta(hours=1),
        refresh_token=refresh,
        scopes=("read",),
    )


def test_only_one_holder_takes_the_lease_until_it_lapses(broker: Broker) -> None:
    clock = StepClock()
    store = _store(broker, clock)
    cid = _credential(broker)
    store.ensure(cid)
    first, second = new_lease_owner(), new_lease_owner()
    assert store.try_lease(cid, first, 30)
    assert not store.try_lease(cid, second, 30)
    clock.at += timedelta(seconds=31)
    assert store.try_lease(cid, second, 30), "a lapsed lease must be taken over"
    store.release(cid, first)  # the late holder's release leaves the new holder's lease
    assert not store.try_lease(cid, new_lease_owner(), 30)
    store.release(cid, second)
    assert store.try_lease(cid, new_lease_owner(), 30)


def test_a_holder_whose_lease_was_taken_over_cannot_overwrite_the_newer_token(
    broker: Broker,
) -> None:
    clock = StepClock()
    store = _store(broker, clock)
    cid = _credential(broker)
    store.ensure(cid)
    slow, fast = new_lease_owner(), new_lease_owner()
    start = store.read(cid)
    assert start is not None and start.generation == 0
    assert store.try_lease(cid, slow, 30)
    clock.at += timedelta(seconds=31)
    assert store.try_lease(cid, fast, 30)
    assert store.persist(cid, "default", _tokens("new-from-fast"), owner=fast, generation=0) == 1
    # The slow holder comes back with what it fetched: fenced out, nothing written.
    assert (
        store.persist(cid, "default", _tokens("late-from-slow"), owner=slow, generation=0) is None
    )
    row = store.read(cid)
    assert row is not None and row.tokens is not None
    assert row.tokens.access_token == "new-from-fast"
    assert row.generation == 1 and row.state == "active" and row.lease_owner is None


def test_tokens_are_sealed_to_their_row_and_absent_in_clear(broker: Broker) -> None:
    clock = StepClock()
    store = _store(broker, clock)
    one, two = _credential(broker, "one"), _credential(broker, "two")
    store.persist(one, "default", _tokens(), owner=None, generation=None)
    store.persist(two, "default", _tokens("other-access"), owner=None, generation=None)
    with broker.engine.begin() as conn:
        rows = {r[0]: r for r in conn.execute(select(oauth_tokens)).all()}
        for row in rows.values():
            blob = bytes(row.ciphertext) + bytes(row.wrapped_key)
            assert CANARY_ACCESS.encode() not in blob and CANARY_REFRESH.encode() not in blob
        # Copy credential one's sealed tokens onto credential two: they must not open there.
        conn.execute(
            update(oauth_tokens)
            .where(oauth_tokens.c.credential_id == two)
            .values(
                ciphertext=rows[one].ciphertext,
                wrapped_key=rows[one].wrapped_key,
                generation=rows[one].generation,
            )
        )
    with pytest.raises(DecryptionFailed):
        store.read(two)


def test_keys_rotate_rewraps_tokens_and_a_refresh_is_not_a_version(broker: Broker) -> None:
    clock = StepClock()
    store = _store(broker, clock)
    cid = _credential(broker)
    before = broker.credentials.versions(cid)
    store.persist(cid, "default", _tokens(), owner=None, generation=None)
    store.persist(cid, "default", _tokens("second"), owner=None, generation=None)
    assert [v.version for v in broker.credentials.versions(cid)] == [v.version for v in before]
    old_kek = broker.kek_version
    result = broker.rotate_keys()
    assert result.rewrapped >= 2  # the secret version and the token row
    with broker.engine.begin() as conn:
        kek = conn.execute(
            select(oauth_tokens.c.kek_version).where(oauth_tokens.c.credential_id == cid)
        ).scalar_one()
    assert kek == broker.kek_version != old_kek
    # The old key can now be retired: no token row needs it any more.
    broker.retire_keys()
    row = _store(broker, clock).read(cid)
    assert row is not None and row.tokens is not None and row.tokens.access_token == "second"


def test_deleting_the_credential_deletes_its_tokens(broker: Broker) -> None:
    store = _store(broker, StepClock())
    cid = _credential(broker)
    store.persist(cid, "default", _tokens(), owner=None, generation=None)
    broker.credentials.delete(cid)
    assert store.read(cid) is None
