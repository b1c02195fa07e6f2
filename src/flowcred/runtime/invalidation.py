"""Cross-process cache invalidation: every process sees a change within a bound (default 1 s).

DESIGN §5, invariant 9. The caches of one process (resolved material, handle → id, authenticated
API keys) are kept true to changes made by *other* processes on the same database by reading the
change feed (:mod:`flowcred.store.change_feed`).

Contract, with ``bound`` = ``FLOWCRED_CHANGE_VISIBILITY_SECONDS`` (default 1.0), in real time:

* A cached answer is only given while the watcher is *fresh*: a poll of the feed that started
  less than ``bound`` seconds ago succeeded and its changes were applied. So whatever a cache
  answers reflects every change committed more than ``bound`` seconds earlier.
* A background thread polls every ``bound / 4`` (one indexed ``seq > ?`` read). On PostgreSQL a
  second thread LISTENs on its own connection and wakes the poller at each commit's NOTIFY, so a
  change usually shows in milliseconds; the poll stays the guarantee, and a lost listener
  connection or a missed notification costs at most the poll interval.
* Fail safe: when the feed cannot be read (database down, thread stalled), freshness lapses after
  ``bound`` and the caches stop answering: every resolve and key check reads the database, which
  is the truth (or fails if it is unreachable). Nothing stale is ever served for longer than the
  bound, and the caches answer again after the next successful poll.
* A reader too far behind to trust the list (:attr:`~flowcred.store.change_feed.Batch.overflow`)
  drops every cache.

The bound is measured with the real monotonic clock, not the injected :class:`~flowcred.clock.
Clock`: tests that step a manual clock for TTLs cannot stretch it. The cached path pays one
comparison against :attr:`ChangeWatcher.fresh_until` (the resolver reuses the monotonic time it
reads anyway); the thread starts on the first cache fill, so a short-lived CLI process that only
writes never starts it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from flowcred.errors import FlowcredError
from flowcred.store import change_feed
from flowcred.store.change_feed import Change
from flowcred.store.engine import connect_raw

OnChange = Callable[[Change], None]
OnReset = Callable[[], None]

# How long the PostgreSQL listener waits before reconnecting after its connection fails.
_LISTEN_RETRY_SECONDS = 1.0


class ChangeWatcher:
    """Reads the change feed for one process and hands each change to the caches subscribed.

    Subscribers register with :meth:`subscribe` (called for every change) and :meth:`on_reset`
    (drop everything). Callbacks run on the poller thread and must be quick and must not raise.
    """

    def __init__(self, engine: Engine, *, bound: float) -> None:
        if bound <= 0:
            raise ValueError("bound must be positive")
        self._engine = engine
        self.bound = bound
        self._interval = bound / 4
        self._postgres = engine.dialect.name == "postgresql"
        self._subscribers: list[OnChange] = []
        self._resetters: list[OnReset] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._last_seen = 0
        # Real monotonic time (time.monotonic) until which the caches may answer (0: not fresh).
        # Public so the resolver's hit path can compare it with the time it already read.
        self.fresh_until = 0.0
        self._listener_conn: Any = None

    def subscribe(self, callback: OnChange) -> None:
        self._subscribers.append(callback)

    def on_reset(self, callback: OnReset) -> None:
        self._resetters.append(callback)

    # -- the cached path ---------------------------------------------------------------------

    def fresh(self) -> bool:
        """True while a cache may answer (see the module contract). Cheap: one clock read."""
        return time.monotonic() < self.fresh_until

    def ready(self) -> bool:
        """Before a cache stores an entry: start watching if not yet, then say if it may store.

        The starting position is read *before* the caller reads what it will cache, so no change
        committed in between goes unseen. False (store nothing) while the feed is unreadable.
        """
        if not self._started:
            self._start()
        return self.fresh()

    # -- polling -----------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._started or self._stop.is_set():
                return
            began = time.monotonic()
            try:
                self._last_seen = change_feed.newest_seq(self._engine)
            except FlowcredError:
                return  # Not started: the next cache fill tries again; nothing is cached.
            self.fresh_until = began + self.bound
            self._started = True
            self._spawn(self._run_poller, "flowcred-change-poll")
            if self._postgres:
                self._spawn(self._run_listener, "flowcred-change-listen")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run_poller(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.poll()

    def poll(self) -> bool:
        """Read and apply what changed since the last poll; True if the feed was read.

        Freshness is extended to ``bound`` after the moment this poll *started*, and only after
        its changes are applied.
        """
        began = time.monotonic()
        try:
            batch = change_feed.read_since(self._engine, self._last_seen)
        except FlowcredError:
            return False  # Freshness lapses on its own: the caches stop answering.
        if batch.overflow:
            self._reset()
        else:
            for change in batch.changes:
                for callback in self._subscribers:
                    callback(change)
        self._last_seen = batch.newest
        self.fresh_until = began + self.bound
        return True

    def _reset(self) -> None:
        for callback in self._resetters:
            callback()

    # -- PostgreSQL LISTEN ---------------------------------------------------------------------

    def _run_listener(self) -> None:
        """Wake the poller on every NOTIFY; reconnect after failures (the poll covers gaps)."""
        while not self._stop.is_set():
            try:
                conn = connect_raw(self._engine)
            except Exception:
                self._stop.wait(_LISTEN_RETRY_SECONDS)
                continue
            self._listener_conn = conn
            try:
                conn.execute(f"LISTEN {change_feed.CHANNEL}")
                self._wake.set()  # Anything committed before LISTEN: look now.
                while not self._stop.is_set():
                    for _notify in conn.notifies(timeout=self._interval):
                        self._wake.set()
            except Exception:
                # Dropped connection, server restart: reconnect; polling continues meanwhile.
                self._stop.wait(_LISTEN_RETRY_SECONDS)
            finally:
                self._listener_conn = None
                with contextlib.suppress(Exception):
                    conn.close()

    def close(self) -> None:
        """Stop the threads (each exits within one poll interval)."""
        self._stop.set()
        self._wake.set()
        self.fresh_until = 0.0
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
