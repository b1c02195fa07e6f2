"""The change feed: a table of committed changes, read by every other process to invalidate caches.

Why a table and not only PostgreSQL NOTIFY: SQLite has no notifications, and a notification is
lost while a listener is disconnected. A row written *in the same transaction as the change*
cannot be lost: it commits if and only if the change does. NOTIFY (PostgreSQL) only makes the
readers look at once instead of at their next poll (see :mod:`flowcred.runtime.invalidation`).

Contract:

* :func:`record_change` is called inside a write transaction, as its last statement, for every
  change a cache elsewhere may hold: a credential's rotation, rollback, update and delete; an API
  key's revocation and rotation.
* ``seq`` order is commit order. SQLite serialises writers (``BEGIN IMMEDIATE``); on PostgreSQL
  :func:`record_change` takes a transaction-scoped advisory lock before taking its ``seq``, so a
  later ``seq`` always commits after an earlier one and a reader that sees ``seq`` N has already
  been able to see every row below it (no row is skipped by "``seq`` > last seen").
* Rows are pruned by count (:data:`KEEP_ROWS` newest kept). :func:`read_since` tells a reader that
  fell further behind than it can trust (:attr:`Batch.overflow`), and the reader then drops every
  cache instead of applying a partial list.

Rows hold a kind and an id, never a secret or a name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from sqlalchemy import Engine, delete, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from flowcred.store.engine import read_connection, translate_db_error
from flowcred.store.tables import changes

ChangeKind = Literal["credential", "api_key", "kek"]

CHANNEL: Final = "flowcred_changes"
KEEP_ROWS: Final = 10_000
MAX_BATCH: Final = 1_000
PRUNE_EVERY: Final = 128
# pg_advisory_xact_lock key of the feed (arbitrary; distinct from the audit appender's).
_LOCK_KEY: Final = 0x666C6368  # "flch"


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change: what kind of object, and its id (as text)."""

    seq: int
    kind: str
    object_id: str


@dataclass(frozen=True, slots=True)
class Batch:
    """What :func:`read_since` found: the changes after a position, and the new position.

    ``overflow`` means more changed than a reader can apply safely (or rows it needed may have
    been pruned): drop every cache and continue from ``newest``.
    """

    changes: tuple[Change, ...]
    newest: int
    overflow: bool


def record_change(conn: Any, kind: ChangeKind, object_id: int | str, now: datetime) -> None:
    """Append a change row in the caller's open write transaction (and NOTIFY on PostgreSQL).

    Call it last in the transaction: on PostgreSQL it serialises the tail of change-making
    transactions (see the module docstring), so nothing slow should follow it.
    """
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    seq = conn.execute(
        insert(changes)
        .values(kind=kind, object_id=str(object_id), created_at=now)
        .returning(changes.c.seq)
    ).scalar_one()
    if seq % PRUNE_EVERY == 0:
        conn.execute(delete(changes).where(changes.c.seq <= seq - KEEP_ROWS))
    if postgres:
        # Delivered at commit, never for a rolled-back change.
        conn.execute(
            text("SELECT pg_notify(:channel, :seq)"), {"channel": CHANNEL, "seq": str(seq)}
        )


def newest_seq(engine: Engine) -> int:
    """The highest ``seq`` committed so far (0 on an empty feed): a reader's starting point."""
    try:
        with read_connection(engine) as conn:
            return int(conn.execute(select(func.coalesce(func.max(changes.c.seq), 0))).scalar_one())
    except DBAPIError as exc:
        raise translate_db_error(exc, "reading the change feed") from None


def read_since(engine: Engine, after: int) -> Batch:
    """The changes committed after ``after``, oldest first (see :class:`Batch`)."""
    query = (
        select(changes.c.seq, changes.c.kind, changes.c.object_id)
        .where(changes.c.seq > after)
        .order_by(changes.c.seq)
        .limit(MAX_BATCH + 1)
    )
    try:
        with read_connection(engine) as conn:
            rows = conn.execute(query).all()
            if len(rows) > MAX_BATCH:
                newest = int(conn.execute(select(func.max(changes.c.seq))).scalar_one())
                return Batch((), newest, True)
    except DBAPIError as exc:
        raise translate_db_error(exc, "reading the change feed") from None
    if not rows:
        return Batch((), after, False)
    found = tuple(Change(int(seq), kind, object_id) for seq, kind, object_id in rows)
    newest = found[-1].seq
    # Fewer rows than the span of seqs they cover by more than the kept window: some may have been
    # pruned (or the reader is simply too far behind to trust a partial list).
    return Batch(found, newest, newest - after >= KEEP_ROWS)


class ChangeSource(Protocol):
    """What a cache needs from the process's change watcher
    (:class:`flowcred.runtime.invalidation.ChangeWatcher`)."""

    def fresh(self) -> bool:
        """True while a cache may answer."""
        ...

    def ready(self) -> bool:
        """Before storing an entry: start watching if needed; True if the entry may be stored."""
        ...

    def subscribe(self, callback: Callable[[Change], None]) -> None: ...

    def on_reset(self, callback: Callable[[], None]) -> None: ...
