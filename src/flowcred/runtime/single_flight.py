"""In-process single-flight: one call per key at a time, its result shared by every waiter.

The token manager runs each refresh through :meth:`SingleFlight.run`: the first thread to ask
for a key runs the call; threads asking while it runs wait for it and get the same result or
the same exception. Async callers reach it from worker threads (``asyncio.to_thread``), so one
in-flight refresh also serves every asyncio task. Across processes the database lease
(``store/oauth_tokens.py``) does the same job; this layer keeps a process from taking that lease
once per thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """Deduplicates concurrent calls by key. ``wait_seconds`` bounds how long a waiter waits."""

    def __init__(self, wait_seconds: float) -> None:
        self._wait = wait_seconds
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight[T]] = {}

    def in_flight(self, key: Hashable) -> bool:
        return key in self._flights

    def run(self, key: Hashable, call: Callable[[], T], on_timeout: Callable[[], T]) -> T:
        """``call()`` once for all concurrent callers of ``key``.

        A waiter that waits longer than ``wait_seconds`` gets ``on_timeout()`` (which may raise).
        """
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if not flight.done.wait(self._wait):
                return on_timeout()
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            return flight.result
        try:
            flight.result = call()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
