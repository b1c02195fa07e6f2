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

Appends are serialised by the database (see :mod:`flowcred.audit.append`, which writes each
batch), so any number of threads and processes build one chain.

Fail closed: if the write fails, every caller in the batch gets :class:`AuditWriteFailed` and the
operation that wanted the event must not proceed (resolve hands out no material).
"""

from __future__ import annotations

import _thread
import asyncio
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from flowcred.audit.append import Appended, AuditWriteFailed, ChainAppender
from flowcred.audit.checkpoint import CheckpointWriter
from flowcred.audit.events import PendingEvent, canonical_body, format_time
from flowcred.clock import Clock
from flowcred.crypto import KekRing
from flowcred.errors import FlowcredError
from flowcred.redaction import SecretRegistry

log = logging.getLogger("flowcred.audit")

WAIT_SECONDS = 60.0
GATHER_SECONDS = 0.0002

__all__ = ["Appended", "AuditRecorder", "AuditWriteFailed"]


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
        self._appender = ChainAppender(engine, ring=ring)
        if checkpoint is not None:
            # The checkpoint moves only past positions still on the chain, and a newer one it
            # finds bounds this process's appends (see flowcred.audit.checkpoint).
            checkpoint.attach(hash_at=self._appender.hash_at, adopt=self._appender.know)
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
        self._closed = False

    def know(self, last_id: int, digest: bytes) -> None:
        """Tell the recorder the chain is known to have reached ``last_id`` with ``digest``."""
        self._appender.know(last_id, digest)

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

    # -- inside a caller's transaction --------------------------------------------------------

    def append_in(self, conn: Any, event: PendingEvent) -> Appended:
        """Append ``event`` in the caller's open write transaction (a SQLAlchemy Connection).

        The caller's commit makes it durable; its rollback removes it with the change.
        """
        return self._appender.append_in(conn, self.body(event))

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

    def _reset_connection(self) -> None:
        self._appender.reset_connection()

    def _write(self, bodies: Sequence[str]) -> list[Appended]:
        """Append one batch (the leader's commit); see :meth:`ChainAppender.write`."""
        return self._appender.write(bodies)

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
