"""Retry a task's start-up load (its credentials file, its first client) until it works or a
budget runs out, then fail with one clear error.

flowgen retries a task whose credentials fail to load "behind the standard retry circuit
breaker" and gives up after about 15 minutes: 10 attempts, the delay starting at 1 s and
doubling, with jitter. :func:`load_with_retry` does the same with every number configurable
(``FLOWCRED_STARTUP_RETRY_*``) and with time injected, so tests run in milliseconds.

Contract of ``load_with_retry(load, what=..., policy=..., breaker=...)`` (and of
``aload_with_retry``, the same for a coroutine function, sleeping with ``policy.async_sleep``):

* ``load()`` is called at most ``policy.attempts`` times; its first result is returned.
* Every ``Exception`` is retried (a missing file may be mounted a minute later; a malformed one
  fixed by the operator), unless ``policy.retry_if(exc)`` says no; ``BaseException``\\ s such as
  cancellation and ``KeyboardInterrupt`` propagate at once.
* Between attempts it sleeps the :class:`~flowcred.runtime.retry.RetryPolicy` backoff
  (``base * 2**n``, capped at ``max_delay``), with jitter in ``[d/2, d]``.
* With a ``breaker`` (a :class:`~flowcred.runtime.circuit_breaker.CircuitBreaker`, e.g. one per
  credentials path shared by every task that loads it), each failure is recorded on it, a
  success closes it, and while it is open no attempt is made: the loop waits until it lets a
  probe through. Tasks sharing a dead file therefore stop hammering it together.
* No sleep goes past ``policy.max_total`` seconds after the first attempt: when the next wait
  would, it gives up early.
* Giving up raises :class:`~flowcred.errors.StartupFailed` naming ``what`` and the number of
  attempts, with the last failure as ``__cause__``. The message quotes the last error only when
  it is a flowcred error (whose messages carry no secrets); otherwise only its class.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from flowcred.errors import CircuitOpen, FlowcredError, StartupFailed
from flowcred.runtime.circuit_breaker import CircuitBreaker
from flowcred.runtime.retry import RetryPolicy

if TYPE_CHECKING:
    from flowcred.settings import FlowcredSettings

T = TypeVar("T")

log = logging.getLogger("flowcred.startup")


def _retry_everything(exc: Exception) -> bool:
    return True


@dataclass(frozen=True)
class StartupRetry:
    """How patiently to retry a start-up load. Defaults are flowgen's (about 15 minutes)."""

    attempts: int = 10
    base_delay: float = 1.0
    max_delay: float = 300.0
    max_total: float = 900.0
    jitter: bool = True
    retry_if: Callable[[Exception], bool] = field(default=_retry_everything, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    async_sleep: Callable[[float], Awaitable[None]] = field(
        default=asyncio.sleep, repr=False, compare=False
    )

    @classmethod
    def from_settings(cls, settings: FlowcredSettings) -> StartupRetry:
        return cls(
            attempts=settings.startup_retry_attempts,
            base_delay=settings.startup_retry_base_seconds,
            max_total=settings.startup_retry_max_total_seconds,
        )

    @property
    def backoff(self) -> RetryPolicy:
        """The shared retry schedule these numbers describe."""
        return RetryPolicy(
            attempts=self.attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            jitter=self.jitter,
        )

    def wait_before(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (0-based), jitter applied."""
        delay = self.backoff.delay(retry_number)
        return random.uniform(delay / 2, delay) if self.jitter else delay


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FlowcredError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


class _Run:
    """The bookkeeping of one retried load, shared by the sync and the async loop.

    :meth:`before_attempt` answers ``None`` (attempt now) or the seconds to wait for an open
    breaker; :meth:`failed` the seconds to wait before the next attempt. Both raise
    :class:`StartupFailed` instead when the attempts or the total budget are spent.
    """

    def __init__(self, what: str, policy: StartupRetry, breaker: CircuitBreaker | None) -> None:
        self.what = what
        self.policy = policy
        self.breaker = breaker
        self.attempts = max(1, policy.attempts)
        self.started = policy.monotonic()
        self.made = 0
        self.last: Exception | None = None
        # Each pass makes an attempt or waits once for an open breaker; the budget bounds the
        # waits, and the pass count is bounded too, so a clock that never moves cannot spin.
        self.passes_left = self.attempts * 10 + 100

    def before_attempt(self) -> float | None:
        self.passes_left -= 1
        if self.made >= self.attempts or self.passes_left < 0:
            raise self.give_up()
        if self.breaker is None:
            return None
        try:
            self.breaker.before_call()
        except CircuitOpen as exc:
            # Until its probe is due, or one base delay while another task's probe is out.
            return self._within(max(exc.retry_in, self.policy.base_delay, 0.001))
        return None

    def attempting(self) -> None:
        self.made += 1

    def failed(self, exc: Exception) -> float:
        self.last = exc
        if self.breaker is not None:
            self.breaker.record_failure()
        log.warning(
            "%s: start-up attempt %d of %d failed (%s)",
            self.what,
            self.made,
            self.attempts,
            _describe(exc),
        )
        if not self.policy.retry_if(exc) or self.made >= self.attempts:
            raise self.give_up()
        return self._within(self.policy.wait_before(self.made - 1))

    def interrupted(self) -> None:
        if self.breaker is not None:
            self.breaker.release()

    def succeeded(self) -> None:
        if self.breaker is not None:
            self.breaker.record_success()

    def _within(self, wait: float) -> float:
        """``wait``, unless sleeping it would end past the total budget (then give up)."""
        if self.policy.monotonic() - self.started + wait > self.policy.max_total:
            raise self.give_up()
        return wait

    def give_up(self) -> StartupFailed:
        elapsed = self.policy.monotonic() - self.started
        last = self.last
        reason = _describe(last) if last is not None else "the circuit breaker stayed open"
        error = StartupFailed(
            f"{self.what}: gave up after {self.made} attempt(s) in {elapsed:.1f} s; "
            f"last error: {reason}",
            attempts=self.made,
        )
        error.__cause__ = last  # as ``raise ... from last`` would
        error.__suppress_context__ = True
        return error


def load_with_retry(
    load: Callable[[], T],
    *,
    what: str,
    policy: StartupRetry | None = None,
    breaker: CircuitBreaker | None = None,
) -> T:
    """``load()``, retried as the module docstring describes; ``what`` names it in errors."""
    policy = policy or StartupRetry()
    run = _Run(what, policy, breaker)
    while True:
        wait = run.before_attempt()
        if wait is not None:
            policy.sleep(wait)
            continue
        run.attempting()
        try:
            result = load()
        except Exception as exc:
            policy.sleep(run.failed(exc))
            continue
        except BaseException:
            run.interrupted()
            raise
        run.succeeded()
        return result


async def aload_with_retry(
    load: Callable[[], Awaitable[T]],
    *,
    what: str,
    policy: StartupRetry | None = None,
    breaker: CircuitBreaker | None = None,
) -> T:
    """:func:`load_with_retry` for a coroutine function, sleeping with ``policy.async_sleep``."""
    policy = policy or StartupRetry()
    run = _Run(what, policy, breaker)
    while True:
        wait = run.before_attempt()
        if wait is not None:
            await policy.async_sleep(wait)
            continue
        run.attempting()
        try:
            result = await load()
        except Exception as exc:
            await policy.async_sleep(run.failed(exc))
            continue
        except BaseException:
            run.interrupted()
            raise
        run.succeeded()
        return result
