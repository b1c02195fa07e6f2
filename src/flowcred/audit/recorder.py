"""Appending to the audit chain: one linear chain, durable before the caller goes on.

Two ways in:

* :meth:`AuditRecorder.append_in` writes an event inside a transaction the caller already holds
  (credential changes), so the change and its event commit together or not at all.
* :meth:`AuditRecorder.record` is for reads (resolve, get_password, views): the caller waits until
  its event is durable. Throughput comes from *group commit*: while one thread (the leader) commits
  a batch, others queue their events; when the leader's own batch is durable it hands leadership
  to the first waiting thread, whose batch holds everything queued meanwhile. Nobody returns before
  their event is committed, and one commit serves many events.
* :meth:`AuditRecorder.arecord` is the same for coroutines (the REST API's resolve): the event loop
  queues the event and awaits a future, so it keeps serving other requests while the disk works,
  and every request in flight shares the next commit. An event loop can never lead (it must not
  block on the disk); when only coroutines are waiting, a flusher thread, started on first use,
  leads for them.

Appends are serialised by the database: SQLite's write lock (``BEGIN IMMEDIATE``), or a PostgreSQL
transaction-scoped advisory lock, so any number of threads and processes build one chain. Each
append reads the last id and hash under that lock and continues from them.

Fail closed: if the write fails, every caller in the batch gets :class:`AuditWriteFailed` and the
operation that wanted the event must not proceed (resolve hands out no material).
"""

from __future__ import annotations

import _thread
import asyncio
import functools
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from flowcred.audit.checkpoint import CheckpointWriter
from flowcred.audit.events import PendingEvent, canonical_body, format_time
from flowcred.clock import Clock
from flowcred.crypto import GENESIS, ChainMac, KekRing, audit_mac
from flowcred.crypto.chain_mac import same
from flowcred.errors import FlowcredError
from flowcred.redaction import SecretRegistry
from flowcred.store.engine import connect_raw, is_sqlite, translate_placeholders

log = logging.getLogger("flowcred.audit")

# Any constant works; it only has to be the same in every process sharing the database.
ADVISORY_LOCK_KEY = 0x666C6F7763726564  # "flowcred"
WAIT_SECONDS = 60.0
GATHER_SECONDS = 0.0002

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


class _Slot:
    __slots__ = ("body", "error", "future", "leader", "result", "wake")

    def __init__(self, body: str) -> None:
        self.body = body
        # A thread's slot has a held lock, released to wake it (results ready, or leadership
        # handed over): the cheapest wake-up CPython has, and one per event is paid for.
        self.wake: _thread.LockType | None = None
        # A coroutine's slot has a future instead, settled on its own event loop.
        self.future: asyncio.Future[Appended] | None = None
        self.leader = False
        self.result: Appended | None = None
        self.error: BaseException | None = None


class AuditRecorder:
    """Builds event bodies (redacted), chains them and appends them durably."""

    def __init__(
        self,
        engine: Engine,
        *,
        ring: Callable[[], KekRing],
        registry: SecretRegistry,
        clock: Clock,
        checkpoint: CheckpointWriter | None = None,
    ) -> None:
        self._engine = engine
        self._ring = ring
        self._registry = registry
        self._clock = clock
        self._checkpoint = checkpoint
        self._postgres = not is_sqlite(engine)
        self._last_sql = translate_placeholders(engine, _LAST_SQL)
        self._insert_sql = translate_placeholders(engine, _INSERT_SQL)
        self._macs: dict[tuple[int, int], ChainMac] = {}
        self._insert_rows: int | None = None
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._flushing = False
        # A gathering leader waits on this lock until the queue holds _gate_size slots.
        self._gate: _thread.LockType | None = None
        self._gate_size = 0
        # Leads batches on behalf of coroutines; one grant (release) per leadership handed to it.
        self._flusher: threading.Thread | None = None
        self._flusher_grants = threading.Semaphore(0)
        self._last_batch = 1
        self._conn: Any = None
        self._closed = False
        # The furthest (id, hash) this process knows the chain reached: its own appends, and the
        # checkpoint found at start. A chain that is shorter than that, or differs there, was cut
        # (and perhaps regrown); appending to it would bury the cut, so appends fail closed.
        self._known: tuple[int, bytes] | None = None
        self._known_sql = translate_placeholders(engine, _HASH_AT_SQL)

    def know(self, last_id: int, digest: bytes) -> None:
        """Tell the recorder the chain is known to have reached ``last_id`` with ``digest``."""
        with self._lock:
            if self._known is None or last_id > self._known[0]:
                self._known = (last_id, digest)

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

    # -- building ----------------------------------------------------------------------------

    def body(self, event: PendingEvent) -> str:
        """The event's canonical JSON with every free-form string passed through redaction.

        Event type, action, result, resource type and time come from flowcred's own vocabulary
        and formats; everything a caller or user supplied (actor, source, tenant, ids, details)
        is redacted, so a registered secret that reached an event is stored as ``***``.

        Rendered directly rather than through a dict and ``json.dumps(sort_keys=True)``: this
        runs once per audited call. The output is the same canonical JSON (sorted keys, no
        whitespace, UTF-8); a test compares the two.
        """
        redact = self._registry.redact
        actor = event.actor
        details = canonical_body(_redacted(dict(event.details), redact)) if event.details else "{}"
        return (
            f'{{"action":{_s(event.action)},'
            f'"actor":{{"id":{_s(redact(actor.id))},"kind":{_s(redact(actor.kind))},'
            f'"name":{_s(redact(actor.name))}}},'
            f'"created_at":{_s(format_time(event.created_at))},'
            f'"details":{details},'
            f'"event_type":{_s(event.event_type)},'
            f'"execution_id":{_o(event.execution_id, redact)},'
            f'"resource_id":{_o(event.resource_id, redact)},'
            f'"resource_type":{_o(event.resource_type, None)},'
            f'"result":{_s(event.result)},'
            f'"source":{_o(event.source, redact)},'
            f'"tenant":{_o(event.tenant, redact)}}}'
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

    # -- inside a caller's transaction --------------------------------------------------------

    def append_in(self, conn: Any, event: PendingEvent) -> Appended:
        """Append ``event`` in the caller's open write transaction (a SQLAlchemy Connection).

        The caller's commit makes it durable; its rollback removes it with the change.
        """
        if self._postgres:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
        row = conn.exec_driver_sql(self._last_sql).first()
        last = (int(row[0]), bytes(row[1])) if row is not None else None

        def hash_at(event_id: int) -> bytes | None:
            found = conn.exec_driver_sql(self._known_sql, (event_id,)).first()
            return bytes(found[0]) if found is not None else None

        self._check_continuity(last, hash_at)
        rows, appended = self._chain(last, [self.body(event)])
        conn.exec_driver_sql(self._insert_sql, rows[0])
        return appended[0]

    def committed(self, appended: Appended) -> None:
        """Tell the recorder an :meth:`append_in` event was committed (for the checkpoint)."""
        self.know(appended.id, appended.hash)
        self._note_checkpoint(appended)

    def _note_checkpoint(self, appended: Appended) -> None:
        """Move the checkpoint file forward. Its events are already durable, so a failure to
        write the file (disk full, unwritable directory) is logged, not raised: it must not
        turn a committed change into an error, nor stop the committing thread. The next note
        tries again."""
        if self._checkpoint is None:
            return
        try:
            self._checkpoint.note(appended.id, appended.hash, self._ring())
        except Exception as exc:
            _checkpoint_not_written(exc)

    # -- group commit --------------------------------------------------------------------------

    def record(self, event: PendingEvent) -> Appended:
        """Append ``event`` and return once it is durable. Raises AuditWriteFailed otherwise."""
        if self._closed:
            raise AuditWriteFailed("audit recorder is closed")
        # The caller builds its own body (redaction, canonical JSON) before queueing: that work
        # then overlaps the leader's commit, which releases the GIL while it waits on the disk,
        # and the leader's serial part shrinks to chaining the MACs.
        slot = _Slot(self.body(event))
        wake = slot.wake = _thread.allocate_lock()
        wake.acquire()
        if self._enqueue(slot):
            slot.leader = True
        elif not wake.acquire(timeout=WAIT_SECONDS):
            self._abandon(slot)
        if slot.leader:
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result

    def _abandon(self, slot: _Slot) -> None:
        """Give up waiting for ``slot`` (raises AuditWriteFailed) -- unless leadership reached it
        meanwhile, which must not be dropped: then the caller leads after all.

        A slot still queued is taken out, so no leader later hands leadership to a thread that
        has gone (that would leave every later caller waiting behind nobody).
        """
        with self._lock:
            if slot.leader:
                return
            if slot in self._pending:
                self._pending.remove(slot)
        raise AuditWriteFailed("timed out waiting for the audit log")

    async def arecord(self, event: PendingEvent) -> Appended:
        """Append ``event`` and return once it is durable, without blocking the event loop.

        Raises AuditWriteFailed like :meth:`record`. A cancelled caller's event is still written
        (it may already be in a commit); the caller just stops waiting for it.
        """
        if self._closed:
            raise AuditWriteFailed("audit recorder is closed")
        slot = _Slot(self.body(event))
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        slot.future = future
        if self._enqueue(slot):
            self._grant_flusher()
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                return await future
        except TimeoutError:
            raise AuditWriteFailed("timed out waiting for the audit log") from None

    def _enqueue(self, slot: _Slot) -> bool:
        """Queue ``slot``; True when nobody was leading, so the caller must see to it."""
        with self._lock:
            self._pending.append(slot)
            gate = self._gate
            if gate is not None and len(self._pending) >= self._gate_size:
                self._gate = None
                gate.release()
            if self._flushing:
                return False
            self._flushing = True
            return True

    def _grant_flusher(self) -> None:
        """Hand leadership to the flusher thread (starting it on first use)."""
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(
                target=self._flusher_loop, name="flowcred-audit-flusher", daemon=True
            )
            self._flusher.start()
        self._flusher_grants.release()

    def _flusher_loop(self) -> None:
        while True:
            if self._flusher_grants.acquire(timeout=1.0):
                try:
                    self._lead(None)
                except Exception as exc:  # _lead already failed the batch's callers
                    log.error("audit flusher: %s", type(exc).__name__)
                continue
            with self._lock:
                # Leave only once closed and idle, deciding under the lock every grant is
                # decided under, so a grant can never go to a thread on its way out.
                if self._closed and not self._flushing:
                    self._flusher = None
                    return

    def _lead(self, own: _Slot | None) -> None:
        # When the last batch had company, the other callers are usually a few microseconds
        # from queueing again (they were just woken). Give them a moment (at most
        # GATHER_SECONDS, blocked on a gate the last of them opens) so one commit serves them
        # all, instead of alternating batches of one and of many. A lone caller never waits.
        # The flusher (own is None) does not wait: coroutines keep queueing while it writes.
        target = self._last_batch
        if target > 1 and own is not None:
            gate = _thread.allocate_lock()
            gate.acquire()
            with self._lock:
                if len(self._pending) < target:
                    self._gate, self._gate_size = gate, target
                else:
                    gate.release()
            gate.acquire(timeout=GATHER_SECONDS)
        with self._lock:
            self._gate = None
            batch, self._pending = self._pending, []
        self._last_batch = len(batch)
        try:
            self._flush(batch)
        finally:
            with self._lock:
                successor = self._pending[0] if self._pending else None
                if successor is None:
                    self._flushing = False
                elif successor.wake is not None:
                    successor.leader = True
            if successor is not None:
                if successor.wake is not None:
                    successor.wake.release()
                else:
                    # A coroutine's slot is first in line: the flusher thread leads for it.
                    self._grant_flusher()

    def _flush(self, batch: list[_Slot]) -> None:
        error: BaseException | None = None
        appended: list[Appended] = []
        try:
            appended = self._write([slot.body for slot in batch])
        except FlowcredError as exc:
            error = exc
        except Exception as exc:
            error = AuditWriteFailed(f"audit write failed ({type(exc).__name__})")
            self._reset_connection()
        results: list[Appended | None] = list(appended) if appended else [None] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[_Slot]] = {}
        for slot, result in zip(batch, results, strict=True):
            slot.result = result
            slot.error = error
            if slot.leader:
                continue  # Not waiting: the leader reads its slot once _lead returns.
            if slot.wake is not None:
                slot.wake.release()
            elif slot.future is not None:
                by_loop.setdefault(slot.future.get_loop(), []).append(slot)
        for loop, slots in by_loop.items():
            # One wake-up per event loop for the whole batch.
            try:
                loop.call_soon_threadsafe(_settle, slots)
            except RuntimeError:
                pass  # That loop is closed: nobody is waiting any more.
        if error is None and appended:
            last = appended[-1]
            self.know(last.id, last.hash)
            self._note_checkpoint(last)

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = connect_raw(self._engine)
        return self._conn

    def _reset_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass  # The connection is already broken; dropping it is all that is left.

    def _write(self, bodies: Sequence[str]) -> list[Appended]:
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

    def close(self) -> None:
        """Write the final checkpoint and release the connection."""
        self._closed = True
        if self._checkpoint is not None:
            try:
                self._checkpoint.flush(self._ring())
            except Exception as exc:
                _checkpoint_not_written(exc)
        self._reset_connection()


def _checkpoint_not_written(exc: Exception) -> None:
    log.error("audit checkpoint file not written (%s: %s)", type(exc).__name__, exc)


def _settle(slots: list[_Slot]) -> None:
    """Complete coroutine slots' futures (runs on their event loop)."""
    for slot in slots:
        future = slot.future
        if future is None or future.done():
            continue  # The caller was cancelled or timed out.
        if slot.error is not None:
            future.set_exception(slot.error)
        else:
            assert slot.result is not None
            future.set_result(slot.result)


# The C string encoder behind json.dumps(..., ensure_ascii=False), quotes included.
_s: Callable[[str], str] = json.encoder.encode_basestring


def _o(value: str | None, redact: Callable[[str], str] | None) -> str:
    if value is None:
        return "null"
    return _s(redact(value) if redact is not None else value)


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        # Keys too: a caller may have used a value as a key.
        return {redact(str(k)): _redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, redact) for v in value]
    return value
