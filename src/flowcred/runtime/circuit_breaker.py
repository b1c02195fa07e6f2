"""Circuit breakers, one per remote endpoint key, so a dead token endpoint is not hammered.

States: *closed* (calls pass), *open* after ``failure_threshold`` consecutive failures (calls
raise :class:`~flowcred.errors.CircuitOpen` at once, no request is made), *half-open* once
``reset_timeout`` seconds have passed (``half_open_probes`` calls may pass; a success closes the
breaker, a failure re-opens it for another ``reset_timeout``).

A failure is counted per *attempt*, not per call: with a 5-attempt retry policy, one call that
exhausts its retries on a dead endpoint opens a breaker with the default threshold of 5. This is
deliberate: the breaker measures the endpoint's health, and each attempt is evidence. Only
transient failures count (the caller decides); a permanent 4xx is a healthy endpoint refusing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flowcred.clock import Clock, SystemClock
from flowcred.errors import CircuitOpen


class CircuitBreaker:
    """One endpoint's breaker. Thread-safe."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_probes: int = 1,
        clock: Clock | None = None,
        *,
        key: str = "",
        on_open: Callable[[str], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_probes = half_open_probes
        self.key = key
        self._clock = clock or SystemClock()
        self._on_open = on_open
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probes_in_flight = 0

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"``."""
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock.monotonic() - self._opened_at >= self.reset_timeout:
            return "half_open"
        return "open"

    def before_call(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go out now (reserves a half-open probe)."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return
            if state == "half_open" and self._probes_in_flight < self.half_open_probes:
                self._probes_in_flight += 1
                return
            assert self._opened_at is not None
            retry_in = self._opened_at + self.reset_timeout - self._clock.monotonic()
            raise CircuitOpen(self.key, max(retry_in, 0.0))

    def record_success(self) -> None:
        """The call reached a healthy endpoint: close the breaker."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probes_in_flight = 0

    def record_failure(self) -> None:
        """One transient failure; opens (or re-opens) the breaker at the threshold."""
        opened = False
        with self._lock:
            was_half_open = self._opened_at is not None
            self._failures += 1
            self._probes_in_flight = 0
            if was_half_open or self._failures >= self.failure_threshold:
                opened = True
                self._opened_at = self._clock.monotonic()
        if opened and self._on_open is not None:
            self._on_open(self.key)

    def release(self) -> None:
        """A call ended with neither verdict (a permanent refusal counts as success instead)."""
        with self._lock:
            self._probes_in_flight = max(0, self._probes_in_flight - 1)


class BreakerRegistry:
    """One :class:`CircuitBreaker` per key (a token endpoint's origin and path).

    ``on_open(key)`` is called (outside any lock) each time a breaker opens or re-opens.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_probes: int = 1,
        clock: Clock | None = None,
        on_open: Callable[[str], None] | None = None,
    ) -> None:
        self._args = (failure_threshold, reset_timeout, half_open_probes)
        self._clock = clock or SystemClock()
        self._on_open = on_open
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, key: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                threshold, reset, probes = self._args
                breaker = CircuitBreaker(
                    threshold, reset, probes, self._clock, key=key, on_open=self._on_open
                )
                self._breakers[key] = breaker
            return breaker
