"""Start-up retry: backoff, the total budget, the shared circuit breaker and the final error.

Time is a ManualClock stepped by the injected sleep, so 15 simulated minutes take milliseconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from flowcred.clock import ManualClock
from flowcred.errors import CredentialsFileUnreadable, StartupFailed
from flowcred.files import load_credentials
from flowcred.runtime.circuit_breaker import CircuitBreaker
from flowcred.runtime.startup_retry import StartupRetry, aload_with_retry, load_with_retry
from flowcred.settings import load_settings

CANARY = "CANARY-startup-5f1e2d"


class Timeline:
    """A manual clock plus the sleeps taken; ``on_sleep`` runs after each (to change the world)."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[int], None] = lambda n: None

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        self.on_sleep(len(self.sleeps))

    def policy(self, **kwargs: object) -> StartupRetry:
        timed = StartupRetry(sleep=self.sleep, monotonic=self.clock.monotonic)
        return dataclasses.replace(timed, **kwargs)


def failing(times: int, result: str = "ok") -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def load() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise ConnectionError(f"attempt {len(calls)}")
        return result

    return load, calls


def test_succeeds_after_failures_with_doubling_delays() -> None:
    t = Timeline()
    load, calls = failing(3)
    assert load_with_retry(load, what="task ingest", policy=t.policy(jitter=False)) == "ok"
    assert len(calls) == 4
    assert t.sleeps == [1.0, 2.0, 4.0]


def test_defaults_are_flowgens_and_the_final_error_is_clear() -> None:
    t = Timeline()
    load, calls = failing(1000)
    with pytest.raises(StartupFailed) as caught:
        load_with_retry(
            load, what="task ingest (credentials /etc/c.json)", policy=t.policy(jitter=False)
        )
    assert len(calls) == 10 and caught.value.attempts == 10
    assert t.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
    message = str(caught.value)
    assert message.startswith("task ingest (credentials /etc/c.json): gave up after 10 attempt(s)")
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert str(caught.value.__cause__) == "attempt 10"


def test_jitter_stays_within_half_and_full_delay() -> None:
    t = Timeline()
    load, _ = failing(5)
    load_with_retry(load, what="x", policy=t.policy())
    for number, slept in enumerate(t.sleeps):
        full = 2.0**number
        assert full / 2 <= slept <= full


def test_gives_up_before_a_wait_that_would_pass_the_total_budget() -> None:
    t = Timeline()
    load, calls = failing(1000)
    with pytest.raises(StartupFailed) as caught:
        load_with_retry(
            load, what="x", policy=t.policy(base_delay=100.0, max_total=250.0, jitter=False)
        )
    # 100 s then 200 s would end at 300 s > 250 s: two attempts, one sleep.
    assert len(calls) == 2 and t.sleeps == [100.0]
    assert "after 2 attempt(s) in 100.0 s" in str(caught.value)


def test_default_schedule_fits_about_fifteen_minutes() -> None:
    policy = StartupRetry(jitter=False)
    total = sum(policy.wait_before(n) for n in range(policy.attempts - 1))
    assert total <= policy.max_total == 900.0


def test_retry_if_false_gives_up_at_once() -> None:
    t = Timeline()
    load, calls = failing(1000)
    with pytest.raises(StartupFailed) as caught:
        load_with_retry(load, what="x", policy=t.policy(retry_if=lambda exc: False))
    assert len(calls) == 1 and t.sleeps == [] and caught.value.attempts == 1


def test_interrupts_are_not_retried() -> None:
    t = Timeline()
    calls: list[int] = []

    def load() -> str:
        calls.append(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_with_retry(load, what="x", policy=t.policy())
    assert calls == [1]


def test_a_file_that_appears_later_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "webhook.json"
    t = Timeline()

    def mount(sleep_number: int) -> None:
        if sleep_number == 2:
            path.write_text(json.dumps({"bearer_auth": "tok-12345"}))
            path.chmod(0o600)

    t.on_sleep = mount
    creds = load_with_retry(
        lambda: load_credentials(path, "http"), what="task ingest", policy=t.policy()
    )
    assert creds.configured and len(t.sleeps) == 2


def test_a_file_that_never_appears_names_the_read_failure(tmp_path: Path) -> None:
    path = tmp_path / "never.json"
    t = Timeline()
    with pytest.raises(StartupFailed) as caught:
        load_with_retry(
            lambda: load_credentials(path, "http"), what="task ingest", policy=t.policy(attempts=3)
        )
    assert f"Failed to read credentials file at {path}" in str(caught.value)
    assert isinstance(caught.value.__cause__, CredentialsFileUnreadable)


def test_foreign_error_messages_are_not_copied(caplog: pytest.LogCaptureFixture) -> None:
    t = Timeline()

    def load() -> str:
        raise RuntimeError(f"connect failed: password={CANARY}")

    with (
        caplog.at_level(logging.WARNING, logger="flowcred.startup"),
        pytest.raises(StartupFailed) as caught,
    ):
        load_with_retry(load, what="task q", policy=t.policy(attempts=3))
    assert "last error: RuntimeError" in str(caught.value)
    assert CANARY not in str(caught.value)
    logged = [r.getMessage() for r in caplog.records if r.name == "flowcred.startup"]
    assert len(logged) == 3 and all(CANARY not in line for line in logged)


def test_a_shared_breaker_stops_other_tasks_from_hammering_a_dead_file() -> None:
    t = Timeline()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30.0, clock=t.clock, key="f")
    first, first_calls = failing(1000)
    with pytest.raises(StartupFailed):
        load_with_retry(first, what="a", policy=t.policy(attempts=3, jitter=False), breaker=breaker)
    assert len(first_calls) == 3 and breaker.state == "open"

    t.sleeps.clear()
    second, second_calls = failing(0)
    result = load_with_retry(second, what="b", policy=t.policy(jitter=False), breaker=breaker)
    # The second task waited for the breaker (30 s from its opening) before its single probe.
    assert result == "ok" and len(second_calls) == 1
    assert t.sleeps == [30.0]
    assert breaker.state == "closed"


def test_a_breaker_open_for_the_whole_budget_makes_no_attempt() -> None:
    t = Timeline()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=3600.0, clock=t.clock)
    breaker.record_failure()
    load, calls = failing(0)
    with pytest.raises(StartupFailed) as caught:
        load_with_retry(load, what="x", policy=t.policy(max_total=60.0), breaker=breaker)
    assert calls == [] and caught.value.attempts == 0
    assert "circuit breaker stayed open" in str(caught.value)
    assert caught.value.__cause__ is None


def test_settings_configure_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWCRED_STARTUP_RETRY_ATTEMPTS", "4")
    monkeypatch.setenv("FLOWCRED_STARTUP_RETRY_BASE_SECONDS", "0.5")
    monkeypatch.setenv("FLOWCRED_STARTUP_RETRY_MAX_TOTAL_SECONDS", "60")
    policy = StartupRetry.from_settings(load_settings())
    assert (policy.attempts, policy.base_delay, policy.max_total) == (4, 0.5, 60.0)
    for name in ("ATTEMPTS", "BASE_SECONDS", "MAX_TOTAL_SECONDS"):
        monkeypatch.delenv(f"FLOWCRED_STARTUP_RETRY_{name}")
    assert StartupRetry.from_settings(load_settings()) == StartupRetry()


def test_async_load_retries_with_the_async_sleep() -> None:
    t = Timeline()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        t.clock.advance(seconds)

    calls: list[int] = []

    async def load() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return "ready"

    policy = dataclasses.replace(t.policy(jitter=False), async_sleep=fake_sleep)
    assert asyncio.run(aload_with_retry(load, what="x", policy=policy)) == "ready"
    assert slept == [1.0, 2.0] and t.sleeps == []


def test_a_cancelled_probe_does_not_wedge_a_shared_breaker() -> None:
    t = Timeline()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10.0, clock=t.clock)
    breaker.record_failure()
    t.clock.advance(10.0)  # half-open: one probe may go

    async def cancelled() -> str:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(aload_with_retry(cancelled, what="x", policy=t.policy(), breaker=breaker))
    # The probe slot was given back: the next task may probe at once, without waiting.
    load, calls = failing(0)
    assert load_with_retry(load, what="y", policy=t.policy(), breaker=breaker) == "ok"
    assert len(calls) == 1 and t.sleeps == []
