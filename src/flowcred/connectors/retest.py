"""Test many credentials at once, and keep re-testing them while ``serve`` runs.

A status nobody refreshes is a lie: :func:`run_many` runs the live test of each given
credential (a few at a time, each bounded by the runner's timeout) and is what
``flowcred credentials test --all`` shows; :class:`Retester` repeats it every
``FLOWCRED_RETEST_INTERVAL_SECONDS`` in a background thread of ``serve`` (0, the default,
means never), so statuses move to error when a system starts refusing a credential.

A credential whose type has no live test, or lacks what its test needs (``test_url``), is
*skipped*: it is not tested, gets no event and keeps its status.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowcred.audit.events import Actor
from flowcred.connectors.base import TestResult
from flowcred.connectors.credential_test import run_stored_test
from flowcred.connectors.runner import family_for, kind_of
from flowcred.errors import FlowcredError, InvalidCredential
from flowcred.records import Credential

if TYPE_CHECKING:
    from flowcred.broker import Broker, BrokerView

log = logging.getLogger("flowcred.connectors")

#: Credentials one re-test round looks at, at most (a bound on one round's duration).
MAX_PER_ROUND = 10_000


@dataclass(frozen=True, slots=True)
class Outcome:
    """One credential's result, or why it was skipped (``result`` is then None)."""

    record: Credential
    result: TestResult | None
    skipped: str | None = None

    @property
    def label(self) -> str:
        if self.result is None:
            return "skipped"
        return "ok" if self.result.ok else "failed"


def skip_reason(view: BrokerView, record: Credential) -> str | None:
    """Why ``record`` cannot be tested without trying, or None."""
    try:
        ctype = view._broker.catalog.get(record.type)
    except InvalidCredential:
        return "unknown type"
    if family_for(ctype) is None:
        kind = kind_of(ctype)
        return "no live test for this type" + (f" (test kind {kind})" if kind else "")
    if kind_of(ctype) == "http" and not record.config.get("test_url"):
        return "no test_url"
    return None


def run_many(
    view: BrokerView,
    records: Sequence[Credential],
    *,
    concurrency: int = 4,
    on_done: Callable[[Outcome], None] | None = None,
    stop: threading.Event | None = None,
) -> list[Outcome]:
    """Test each of ``records``, ``concurrency`` at a time; results in ``records``' order."""

    def one(record: Credential) -> Outcome:
        reason = skip_reason(view, record)
        outcome: Outcome
        if reason is not None or (stop is not None and stop.is_set()):
            outcome = Outcome(record, None, reason or "stopped")
        else:
            try:
                result = run_stored_test(
                    view, record.id, tenant=record.tenant, environment=record.environment
                )
                outcome = Outcome(record, result)
            except FlowcredError as exc:
                outcome = Outcome(record, None, str(exc)[:200])
        if on_done is not None:
            on_done(outcome)
        return outcome

    with ThreadPoolExecutor(
        max_workers=max(1, concurrency), thread_name_prefix="flowcred-test"
    ) as pool:
        return list(pool.map(one, records))


class Retester:
    """Re-tests every credential every ``interval`` seconds in a daemon thread, as the system
    actor ``flowcred-retest``; :meth:`stop` ends it (waiting at most ``join_timeout``)."""

    def __init__(self, broker: Broker, interval: float, *, concurrency: int = 2) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._broker = broker
        self._interval = interval
        self._concurrency = concurrency
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="flowcred-retest", daemon=True)
        self.rounds = 0

    @property
    def alive(self) -> bool:
        """Whether the re-test thread is running."""
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, join_timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(join_timeout)

    def run_once(self) -> list[Outcome]:
        view = self._broker.acting_as(Actor("system", "flowcred-retest", "periodic re-test"))
        records = view.credentials.list(limit=MAX_PER_ROUND)
        outcomes = run_many(view, records, concurrency=self._concurrency, stop=self._stop)
        self.rounds += 1
        failed = sum(1 for o in outcomes if o.result is not None and not o.result.ok)
        log.info("periodic re-test: %d credentials, %d failed", len(outcomes), failed)
        return outcomes

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.run_once()
            except FlowcredError as exc:  # e.g. the database is away: try again next round
                log.warning("periodic re-test failed: %s", exc)
            except Exception:  # never let the thread die silently; the next round retries
                log.exception("periodic re-test failed")
