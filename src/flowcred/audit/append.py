"""Landing events on the audit chain: chaining their MACs and inserting them under the lock.

:class:`ChainAppender` is the database side of :class:`~flowcred.audit.recorder.AuditRecorder`:
given bodies, it takes the chain's write lock (SQLite's ``BEGIN IMMEDIATE``, or a PostgreSQL
transaction-scoped advisory lock, so any number of threads and processes build one chain), reads
the last id and hash, checks that the chain still reaches the position this process knows it
reached, chains the MACs and inserts the rows. How callers are batched into one such write is the
recorder's business (group commit); this module writes one batch.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from flowcred.crypto import GENESIS, ChainMac, KekRing, audit_mac
from flowcred.crypto.chain_mac import same
from flowcred.errors import FlowcredError
from flowcred.store.engine import connect_raw, is_sqlite, translate_placeholders

# Any constant works; it only has to be the same in every process sharing the database.
ADVISORY_LOCK_KEY = 0x666C6F7763726564  # "flowcred"

_LAST_SQL = "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1"
_HASH_AT_SQL = "SELECT hash FROM audit_events WHERE id = ?"
_INSERT_SQL = (
    "INSERT INTO audit_events (id, key_version, prev_hash, hash, body) VALUES (?, ?, ?, ?, ?)"
)

# One multi-row INSERT per batch on SQLite, not executemany: the driver releases the GIL around
# every step, and in a busy process each release can cost a wait to get it back, once per row.
# Capped further by the build's bound on parameters (5 a row), see _rows_per_insert.
_ROWS_PER_INSERT = 500


@functools.lru_cache(maxsize=64)
def _multi_row_insert(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    return f"INSERT INTO audit_events (id, key_version, prev_hash, hash, body) VALUES {values}"


class AuditWriteFailed(FlowcredError):
    """Raised when an audit event could not be made durable; the operation must not proceed."""


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an event landed on the chain."""

    id: int
    hash: bytes


class ChainAppender:
    """Chains and inserts batches of event bodies; refuses to extend a chain that was cut."""

    def __init__(self, engine: Engine, *, ring: Callable[[], KekRing]) -> None:
        self._engine = engine
        self._ring = ring
        self._postgres = not is_sqlite(engine)
        self._last_sql = translate_placeholders(engine, _LAST_SQL)
        self._insert_sql = translate_placeholders(engine, _INSERT_SQL)
        self._known_sql = translate_placeholders(engine, _HASH_AT_SQL)
        self._macs: dict[tuple[int, int], ChainMac] = {}
        self._insert_rows: int | None = None
        # Used only by the thread that leads a batch (one at a time, see the recorder).
        self._conn: Any = None
        self._lock = threading.Lock()
        # The furthest (id, hash) this process knows the chain reached: its own appends, and the
        # checkpoints it read. A chain that is shorter than that, or differs there, was cut (and
        # perhaps regrown); appending to it would bury the cut, so appends fail closed.
        self._known: tuple[int, bytes] | None = None

    def know(self, last_id: int, digest: bytes) -> None:
        """Record that the chain is known to have reached ``last_id`` with ``digest``."""
        with self._lock:
            if self._known is None or last_id > self._known[0]:
                self._known = (last_id, digest)

    def hash_at(self, event_id: int) -> bytes | None:
        """The stored hash of event ``event_id`` (``None`` when there is no such row).

        Reads through the pool, not the batch connection: any thread may ask.
        """
        with self._engine.connect() as conn:
            row = conn.exec_driver_sql(self._known_sql, (event_id,)).first()
        return bytes(row[0]) if row is not None else None

    def _check_continuity(
        self, last: tuple[int, bytes] | None, hash_at: Callable[[int], bytes | None]
    ) -> None:
        known = self._known
        if known is None:
            return
        known_id, known_hash = known
        if last is None or last[0] < known_id:
            raise AuditWriteFailed(
                f"audit chain ends before event {known_id}, which it is known to have reached: "
                "it was truncated; run 'flowcred audit verify' and restore it"
            )
        at = last[1] if last[0] == known_id else hash_at(known_id)
        if at is None or not same(at, known_hash):
            raise AuditWriteFailed(
                f"audit event {known_id} is not the one this process recorded: the chain was "
                "cut and regrown; run 'flowcred audit verify' and restore it"
            )

    def _mac(self) -> tuple[int, ChainMac]:
        ring = self._ring()
        version = ring.primary_version
        key = (id(ring), version)
        mac = self._macs.get(key)
        if mac is None:
            mac = self._macs[key] = audit_mac(ring, version)
        return version, mac

    def _chain(
        self, last: tuple[int, bytes] | None, bodies: Sequence[str]
    ) -> tuple[list[tuple[int, int, bytes, bytes, str]], list[Appended]]:
        version, mac = self._mac()
        last_id, previous = last if last is not None else (0, GENESIS)
        rows = []
        appended = []
        for body in bodies:
            last_id += 1
            digest = mac.mac(previous, body.encode())
            rows.append((last_id, version, previous, digest, body))
            appended.append(Appended(last_id, digest))
            previous = digest
        return rows, appended

    def append_in(self, conn: Any, body: str) -> Appended:
        """Append ``body`` in the caller's open write transaction (a SQLAlchemy Connection)."""
        if self._postgres:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
        row = conn.exec_driver_sql(self._last_sql).first()
        last = (int(row[0]), bytes(row[1])) if row is not None else None

        def hash_at(event_id: int) -> bytes | None:
            found = conn.exec_driver_sql(self._known_sql, (event_id,)).first()
            return bytes(found[0]) if found is not None else None

        self._check_continuity(last, hash_at)
        rows, appended = self._chain(last, [body])
        conn.exec_driver_sql(self._insert_sql, rows[0])
        return appended[0]

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = connect_raw(self._engine)
        return self._conn

    def reset_connection(self) -> None:
        """Drop the batch connection (after a failed write, or at close)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass  # The connection is already broken; dropping it is all that is left.

    def write(self, bodies: Sequence[str]) -> list[Appended]:
        """Append ``bodies`` in one transaction of their own and commit it."""
        conn = self._connection()
        if self._postgres:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
                cur.execute(self._last_sql)
                row = cur.fetchone()
                last = (int(row[0]), bytes(row[1])) if row is not None else None

                def pg_hash_at(event_id: int) -> bytes | None:
                    cur.execute(self._known_sql, (event_id,))
                    found = cur.fetchone()
                    return bytes(found[0]) if found is not None else None

                self._check_continuity(last, pg_hash_at)
                rows, appended = self._chain(last, bodies)
                cur.executemany(self._insert_sql, rows)
            return appended
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(self._last_sql).fetchone()
            last = (int(row[0]), bytes(row[1])) if row is not None else None

            def hash_at(event_id: int) -> bytes | None:
                found = conn.execute(self._known_sql, (event_id,)).fetchone()
                return bytes(found[0]) if found is not None else None

            self._check_continuity(last, hash_at)
            rows, appended = self._chain(last, bodies)
            per_insert = self._rows_per_insert(conn)
            for start in range(0, len(rows), per_insert):
                chunk = rows[start : start + per_insert]
                conn.execute(_multi_row_insert(len(chunk)), [v for row in chunk for v in row])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return appended

    def _rows_per_insert(self, conn: Any) -> int:
        """Rows per multi-row INSERT: _ROWS_PER_INSERT, or fewer where this SQLite build allows
        fewer parameters per statement (999 before SQLite 3.32)."""
        if self._insert_rows is None:
            limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self._insert_rows = max(1, min(_ROWS_PER_INSERT, limit // 5))
        return self._insert_rows
