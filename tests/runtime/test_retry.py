"""RetryPolicy: attempt counts, backoff delays, Retry-After caps, never-retried errors."""

from __future__ import annotations

import asyncio

import pytest

from flowcred.errors import CircuitOpen, ConfigurationError, FieldProblem, InvalidCredential
from flowcred.runtime.retry import RetryPolicy


class Flaky(Exception):
    pass


def failing(n_failures: int, calls: list[int]):
    def fn() -> str:
        calls.append(1)
        if len(calls) <= n_failures:
            raise Flaky()
        return "ok"

    return fn


def test_retries_then_succeeds_with_exponential_delays() -> None:
    slept: list[float] = []
    policy = RetryPolicy(jitter=False, sleep=slept.append)
    calls: list[int] = []
    assert policy.run(failing(3, calls), retry_after=lambda e: None) == "ok"
    assert len(calls) == 4
    assert slept == [1.0, 2.0, 4.0]


def test_exhaustion_raises_the_last_error_after_all_attempts() -> None:
    slept: list[float] = []
    policy = RetryPolicy(jitter=False, sleep=slept.append)
    calls: list[int] = []
    with pytest.raises(Flaky):
        policy.run(failing(99, calls), retry_after=lambda e: None)
    assert len(calls) == 5
    assert slept == [1.0, 2.0, 4.0, 8.0]


def test_jitter_stays_within_half_to_full_delay() -> None:
    slept: list[float] = []
    policy = RetryPolicy(sleep=slept.append)
    with pytest.raises(Flaky):
        policy.run(failing(99, []), retry_after=lambda e: None)
    for got, full in zip(slept, [1.0, 2.0, 4.0, 8.0], strict=True):
        assert full / 2 <= got <= full


def test_retry_after_hint_is_used_and_capped_at_max_delay() -> None:
    slept: list[float] = []
    policy = RetryPolicy(attempts=3, sleep=slept.append)
    hints = iter([3.0, 3600.0, 1.0])
    with pytest.raises(Flaky):
        policy.run(failing(99, []), retry_after=lambda e: next(hints))
    assert slept == [3.0, 8.0]


def test_classifier_false_stops_at_once() -> None:
    calls: list[int] = []
    with pytest.raises(Flaky):
        RetryPolicy(sleep=lambda s: None).run(failing(99, calls), retry_after=lambda e: False)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "exc",
    [
        CircuitOpen("https://x/token", 5.0),
        asyncio.CancelledError(),
        ConfigurationError("bad"),
        InvalidCredential([FieldProblem("f", "bad")]),
    ],
)
def test_never_retried_even_when_the_classifier_says_retry(exc: BaseException) -> None:
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        raise exc

    with pytest.raises(type(exc)):
        RetryPolicy(sleep=lambda s: None).run(fn, retry_after=lambda e: None)
    assert len(calls) == 1
