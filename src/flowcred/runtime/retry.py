"""Retry with exponential backoff and jitter, for calls to remote endpoints.

Contract: :meth:`RetryPolicy.run` calls ``fn`` up to ``attempts`` times. After a failure the
``retry_after`` classifier decides: ``False`` means "do not retry" (the exception propagates at
once), ``None`` means "retry after the backoff delay" (``base_delay * 2**n``, capped at
``max_delay``, with full jitter in ``[delay/2, delay]`` when ``jitter``), a float means "retry
after this many seconds" (a server's ``Retry-After``), capped at ``max_delay`` so a hostile or
confused server cannot park a caller for an hour. ``CircuitOpen``, ``asyncio.CancelledError``,
``ConfigurationError``, ``InvalidCredential`` (and ``KeyboardInterrupt``/``SystemExit``, which
are not ``Exception``) are never retried, whatever the classifier says. On exhaustion the last
exception propagates unchanged; the caller turns it into its own error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from flowcred.errors import CircuitOpen, ConfigurationError, InvalidCredential

T = TypeVar("T")

RetryAfter = Callable[[BaseException], "float | Literal[False] | None"]

_NEVER_RETRIED: tuple[type[BaseException], ...] = (
    CircuitOpen,
    asyncio.CancelledError,
    ConfigurationError,
    InvalidCredential,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry. Defaults: 5 attempts, delays 1/2/4/8 s."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 8.0
    jitter: bool = True
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def delay(self, retry_number: int) -> float:
        """Backoff before retry ``retry_number`` (0-based), before jitter."""
        return float(min(self.base_delay * (2**retry_number), self.max_delay))

    def run(self, fn: Callable[[], T], *, retry_after: RetryAfter) -> T:
        """``fn()``, retried as the module docstring describes."""
        attempts = max(1, self.attempts)
        for attempt in range(attempts):
            try:
                return fn()
            except _NEVER_RETRIED:
                raise
            except Exception as exc:
                hint = retry_after(exc)
                if hint is False or attempt == attempts - 1:
                    raise
                if hint is None:
                    wait = self.delay(attempt)
                    if self.jitter:
                        wait = random.uniform(wait / 2, wait)
                else:
                    wait = min(max(float(hint), 0.0), self.max_delay)
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover
