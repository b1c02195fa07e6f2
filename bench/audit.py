"""Audit-trail benchmark: appends, audited resolves and verification, against same-run floors.

Floors measured in this run, on this machine:

* a bare SQLite ``INSERT`` + ``COMMIT`` per event, with the same durability settings flowcred uses
  (WAL, ``synchronous=FULL``) — what one durable event costs without any chaining;
* a plain Python loop of one-shot HMAC-SHA256 over the same canonical JSON bodies — the least
  work any keyed-chain verifier must do per event.

Targets (issue [audit]): verify >= 0.5x the HMAC loop; audited resolve >= 5,000/s single-threaded
and >= 20,000/s with 8 threads (group commit), on SQLite.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flowcred.audit.events import Actor
from flowcred.broker import Broker, open_broker
from flowcred.settings import load_settings

SINGLE_N = 3_000
THREADS = 8
PER_THREAD = 1_500
COROUTINES = 50
PER_COROUTINE = 240
VERIFY_N = 100_000


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def raw_insert_commit(tmp: Path, n: int) -> float:
    """Events/s of a bare durable INSERT + COMMIT per event."""
    db = sqlite3.connect(tmp / "raw-audit.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE e (id INTEGER PRIMARY KEY, body TEXT)")
    body = '{"action":"resolved","actor":{"id":"bench"}}'

    def run() -> None:
        for i in range(n):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO e VALUES (?, ?)", (i, body))
            db.execute("COMMIT")

    elapsed = timed(run)
    db.close()
    return n / elapsed


def open_bench_broker(home: Path) -> Broker:
    settings = load_settings(home=home, cache_ttl_seconds=3600, audit_checkpoint_seconds=10)
    return open_broker(settings=settings, actor=Actor("service", "bench", "bench"))


def audited_resolves(broker: Broker, cid: int) -> tuple[float, float]:
    """(single-threaded, 8-thread) audited resolves per second, material cached."""
    provider = broker.provider()
    provider.resolve(cid)

    def single() -> None:
        for i in range(SINGLE_N):
            provider.resolve(cid, execution_id=f"run-{i}")

    single_rate = SINGLE_N / timed(single)

    barrier = threading.Barrier(THREADS + 1)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(PER_THREAD):
            provider.resolve(cid, execution_id=f"t{t}-{i}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    multi_rate = THREADS * PER_THREAD / (time.perf_counter() - start)
    return single_rate, multi_rate


def audited_aresolves(broker: Broker, cid: int) -> float:
    """Audited ``aresolve`` calls per second from COROUTINES concurrent tasks on one event loop
    (how the REST resolve route drives group commit), material cached."""
    provider = broker.provider()

    async def task(t: int) -> None:
        for i in range(PER_COROUTINE):
            await provider.aresolve(cid, execution_id=f"a{t}-{i}")

    async def run() -> float:
        await provider.aresolve(cid)
        start = time.perf_counter()
        await asyncio.gather(*(task(t) for t in range(COROUTINES)))
        return COROUTINES * PER_COROUTINE / (time.perf_counter() - start)

    return asyncio.run(run())


def appends(broker: Broker) -> tuple[float, float]:
    """(single-threaded, 8-thread) bare audit appends per second through group commit."""
    trail = broker._trail
    access = broker.access

    def one(tag: str) -> None:
        trail.record(
            access, "credential", "viewed", "success", resource_type="credential", resource_id=tag
        )

    single_rate = SINGLE_N / timed(lambda: [one(f"s{i}") for i in range(SINGLE_N)])
    barrier = threading.Barrier(THREADS + 1)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(PER_THREAD):
            one(f"t{t}-{i}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    return single_rate, THREADS * PER_THREAD / (time.perf_counter() - start)


def verify_figures(broker: Broker) -> tuple[float, float, int]:
    """(flowcred verify events/s, raw HMAC loop events/s, events) over the whole chain."""
    # Grow the chain to VERIFY_N events in large batches (set-up, not measured).
    recorder = broker._recorder
    trail = broker._trail
    missing = VERIFY_N - broker.audit.last_id()
    batch = [
        trail.event(
            broker.access,
            "credential",
            "resolved",
            "success",
            tenant="default",
            resource_type="credential",
            resource_id=1,
            execution_id=f"fill-{i}",
            details={"version": 1},
        )
        for i in range(1_000)
    ]
    while missing > 0:
        take = batch[: min(len(batch), missing)]
        recorder._write([recorder.body(e) for e in take])
        missing -= len(take)
    total = broker.audit.last_id()
    verify_time = min(timed(broker.audit.verify) for _ in range(3))

    conn = sqlite3.connect(broker.settings.home / "flowcred.db")
    bodies = [
        (bytes(p), b.encode())
        for p, b in conn.execute("SELECT prev_hash, body FROM audit_events ORDER BY id")
    ]
    conn.close()
    key = os.urandom(32)

    def raw() -> None:
        for previous, body in bodies:
            hmac.new(key, previous + body, hashlib.sha256).digest()

    raw_time = min(timed(raw) for _ in range(3))
    return total / verify_time, len(bodies) / raw_time, total


def main() -> int:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        floor_commit = raw_insert_commit(tmp, SINGLE_N)
        broker = open_bench_broker(tmp / "home")
        try:
            cred = broker.credentials.create(
                name="bench", type="api_key", secret={"api_key": "sk_bench_" + "x" * 24}
            )
            resolve_single, resolve_multi = audited_resolves(broker, cred.id)
            resolve_async = audited_aresolves(broker, cred.id)
            append_single, append_multi = appends(broker)
            broker.audit.verify()
            verify_rate, hmac_rate, events = verify_figures(broker)
        finally:
            broker.close()

    print("audit trail (SQLite, WAL, synchronous=FULL)")
    print(f"  floor: bare INSERT + COMMIT per event          {floor_commit:10,.0f} events/s")
    print(
        f"  append, 1 thread                               {append_single:10,.0f} events/s"
        f"   ({append_single / floor_commit:.2f}x floor)"
    )
    print(
        f"  append, {THREADS} threads (group commit)            {append_multi:10,.0f} events/s"
        f"   ({append_multi / floor_commit:.2f}x floor)"
    )
    print(
        f"  audited resolve, 1 thread                      {resolve_single:10,.0f} /s"
        f"   (target >= 5,000/s)   {'OK' if resolve_single >= 5000 else 'MISSED'}"
    )
    print(
        f"  audited resolve, {THREADS} threads                    {resolve_multi:10,.0f} /s"
        f"   (target >= 20,000/s)  {'OK' if resolve_multi >= 20000 else 'MISSED'}"
    )
    print(
        f"  audited aresolve, {COROUTINES} coroutines              {resolve_async:10,.0f} /s"
        "   (one event loop, as the REST route; no target)"
    )
    print(f"  floor: one-shot HMAC-SHA256 loop               {hmac_rate:10,.0f} events/s")
    print(
        f"  verify ({events:,} events)                    {verify_rate:10,.0f} events/s"
        f"   ({verify_rate / hmac_rate:.2f}x HMAC loop; target >= 0.5x)  "
        f"{'OK' if verify_rate / hmac_rate >= 0.5 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
