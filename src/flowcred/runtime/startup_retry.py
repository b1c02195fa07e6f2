"""Retry a task's start-up load (its credentials file, its first client) until it works or a
budget runs out, then fail with one clear error.

flowgen retries a task whose credentials fail to load "behind the standard retry circuit
breaker" and gives up after about 15 minutes: 10 attempts, the delay starting at 1 s and
doubling, with jitter. :func:`load_with_retry` does the same with every number configurable
(``FLOWCRED_STARTUP_RETRY_*``) and with time injected, so tests run in milliseconds.

Contract of ``load_with_retry(load, what=..., policy=..., breaker=...)``:

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

import logging
import random
import time
from collections.abc import Callable
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


def load_with_retry(
    load: Callable[[], T],
    *,
    what: str,
    policy: StartupRetry | None = None,
    breaker: CircuitBreaker | None = None,
) -> T:
    """``load()``, retried as the module docstring describes; ``what`` names it in errors."""
    policy = policy or StartupRetry()
    attempts = max(1, policy.attempts)
    started = policy.monotonic()
    made = 0
    last: Exception | None = None
    # Each pass makes an attempt or waits once for an open breaker (until its probe is due, or
    # one base delay while another task's probe is in flight). The budget bounds the waits; the
    # pass count is bounded too, so a clock that never moves cannot spin forever.
    for _ in range(attempts * 10 + 100):
        if made >= attempts:
            break
        if breaker is not None:
            try:
                breaker.before_call()
            except CircuitOpen as exc:
                wait = max(exc.retry_in, policy.base_delay, 0.001)
                if not _sleep_within(policy, started, wait):
                    break
                continue
        made += 1
        try:
            result = load()
        except Exception as exc:
            last = exc
            if breaker is not None:
                breaker.record_failure()
            if not policy.retry_if(exc):
                break
            log.warning(
                "%s: start-up attempt %d of %d failed (%s)", what, made, attempts, _describe(exc)
            )
            if made >= attempts or not _sleep_within(policy, started, policy.wait_before(made - 1)):
                break
            continue
        if breaker is not None:
            breaker.record_success()
        return result
    elapsed = policy.monotonic() - started
    reason = _describe(last) if last is not None else "the circuit breaker stayed open"
    raise StartupFailed(
        f"{what}: gave up after {made} attempt(s) in {elapsed:.1f} s; last error: {reason}",
        attempts=made,
    ) from last


def _sleep_within(policy: StartupRetry, started: float, wait: float) -> bool:
    """Sleep ``wait`` seconds unless that ends past the total budget; say whether it slept."""
    if policy.monotonic() - started + wait > policy.max_total:
        return False
    policy.sleep(wait)
    return True
