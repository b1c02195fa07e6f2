"""CircuitBreaker: opens at the threshold, half-opens after the reset, one probe, on_open."""

from __future__ import annotations

import pytest

from flowcred.clock import ManualClock
from flowcred.errors import CircuitOpen
from flowcred.runtime.circuit_breaker import BreakerRegistry, CircuitBreaker


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker = CircuitBreaker(clock=ManualClock(), key="k")
    for _ in range(4):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.before_call()
    breaker.record_failure()
    with pytest.raises(CircuitOpen) as info:
        breaker.before_call()
    assert info.value.retry_in == pytest.approx(30.0)


def test_success_resets_the_count() -> None:
    breaker = CircuitBreaker(clock=ManualClock())
    for _ in range(4):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(4):
        breaker.record_failure()
    breaker.before_call()


def test_half_open_after_reset_allows_one_probe_then_closes_on_success() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=30.0, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(29)
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.advance(1)
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller while the probe is out
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_call()


def test_failed_probe_reopens_for_another_reset_timeout() -> None:
    clock = ManualClock()
    opened: list[str] = []
    registry = BreakerRegistry(failure_threshold=1, clock=clock, on_open=opened.append)
    breaker = registry.get("https://idp/token")
    breaker.record_failure()
    clock.advance(30)
    breaker.before_call()
    breaker.record_failure()
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    assert opened == ["https://idp/token", "https://idp/token"]


def test_registry_keeps_one_breaker_per_key() -> None:
    registry = BreakerRegistry(failure_threshold=1, clock=ManualClock())
    assert registry.get("a") is registry.get("a")
    registry.get("a").record_failure()
    registry.get("b").before_call()
    with pytest.raises(CircuitOpen):
        registry.get("a").before_call()
