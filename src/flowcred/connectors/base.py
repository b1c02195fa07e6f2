"""The contract of a live connection test, and the registry that finds one by ``test.kind``.

A family's test is a :class:`ConnectionTest` registered under the catalog's ``test.kind``
(``sql``, ``redis``, ``amqp``, ``smtp``, ``http``, ...), so adding a family is one module plus
data. :meth:`ConnectionTest.check` gets a :class:`TestTarget` (the type, the non-secret config
and the secret fields, already validated by the catalog) and a deadline; it connects, proves
the credential with the cheapest authenticated call (``SELECT 1``, ``AUTH`` + ``PING``, an AMQP
login, ...) and returns a short success message, or raises :class:`ConnectionTestError` with a
message a person can act on ("authentication failed", "connection refused", "timed out",
"host not found"). The runner (:mod:`flowcred.connectors.runner`) wraps every test: it bounds
its time, runs it off the event loop, refuses forbidden destinations, scrubs every message of
the secret and its encoded forms, sets the credential's status and writes the audit event.
A test therefore never formats a secret on purpose, but its driver's messages may: the runner
is the one place that scrubs them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from flowcred.redaction import Secret


@dataclass(frozen=True, slots=True)
class TestTarget:
    """What a test connects with. ``secret`` values are wrapped; ``config`` holds the rest,
    defaults filled in."""

    __test__ = False  # not a pytest class

    type: str
    config: Mapping[str, Any]
    secret: Mapping[str, Secret]

    def reveal(self, name: str) -> str | None:
        value = self.secret.get(name)
        return value.reveal() if value is not None else None


@dataclass(frozen=True, slots=True)
class TestResult:
    """The outcome people and the API see: ``{ok, latencyMs, message, checkedAt}``."""

    __test__ = False

    ok: bool
    latency_ms: float
    message: str
    checked_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "latencyMs": round(self.latency_ms, 1),
            "message": self.message,
            "checkedAt": self.checked_at.isoformat(),
        }


class ConnectionTestError(Exception):
    """A test's failure, with a message for people (scrubbed again by the runner)."""


class ConnectionTest(ABC):
    """One family's live test. ``kind`` is the catalog's ``test.kind`` it serves;
    ``live_tested`` says whether CI runs it against a real server (``flowcred types`` shows
    "not live-tested" otherwise), ``live_types`` which catalog types that server proves."""

    kind: str = ""
    live_tested: bool = True
    #: The catalog types CI tests against a real server; other types of a live-tested family
    #: (Redshift for ``postgres``, Stripe for ``http``) share its code but not its proof.
    live_types: frozenset[str] = frozenset()

    @abstractmethod
    def check(self, target: TestTarget, timeout: float) -> str:
        """Connect and authenticate within ``timeout`` seconds; return a success message or
        raise :class:`ConnectionTestError`. Destinations come from ``target.config``; the
        runner has already checked them against the allow / deny lists."""


_REGISTRY: dict[str, type[ConnectionTest]] = {}
C = TypeVar("C", bound=type[ConnectionTest])


def register(kind: str) -> Callable[[C], C]:
    """Class decorator: make ``cls`` the test for ``kind``."""

    def add(cls: C) -> C:
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return add


def registered() -> Mapping[str, type[ConnectionTest]]:
    """Every registered test by kind (importing :mod:`flowcred.connectors.families` fills it)."""
    return dict(_REGISTRY)
