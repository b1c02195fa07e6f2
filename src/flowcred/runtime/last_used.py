"""Last-used times of credentials, noted in memory on every resolve and written in batches.

A resolve never writes to the database: :class:`LastUsedTracker` keeps the newest time per
credential and a background thread flushes them every ``interval`` seconds (and at close).
"""

from __future__ import annotations

import threading
from datetime import datetime

from flowcred.errors import FlowcredError
from flowcred.store.credentials import CredentialStore


class LastUsedTracker:
    """Collects last-used times in memory and writes them in batches from a background thread."""

    def __init__(self, store: CredentialStore, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._seen: dict[int, datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def touch(self, credential_id: int, when: datetime) -> None:
        self._seen[credential_id] = when
        if self._thread is None:
            self._start()

    def seen(self, credential_id: int) -> datetime | None:
        """The last use noted here and not yet written (``None`` if none)."""
        return self._seen.get(credential_id)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name="flowcred-last-used", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> None:
        """Write what was collected; on failure keep it for the next attempt."""
        seen, self._seen = self._seen, {}
        if not seen:
            return
        try:
            self._store.record_last_used(seen)
        except FlowcredError:
            for cid, when in seen.items():
                self._seen.setdefault(cid, when)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
