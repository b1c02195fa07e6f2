"""One linear audit chain, whatever the number of threads and processes appending to it.

Every audited read goes through group commit and every append is serialised by the database
(PostgreSQL advisory lock, SQLite write lock). These tests make appends really overlap -- four
processes released together by a start file, eight threads released by a barrier -- and then
check the chain they built: exactly the expected number of events, ids 1..N without a gap, every
execution id exactly once (no event lost, none written twice), the right actions, and
``broker.audit.verify()`` passing (every link and MAC recomputes, the checkpoint the workers wrote
matches). No assertion depends on timing.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from flowcred.audit import AuditEvent
from flowcred.audit import recorder as recorder_module
from flowcred.audit.recorder import AuditWriteFailed
from flowcred.broker import Broker, open_broker
from flowcred.settings import load_settings

SCRIPT = Path(__file__).resolve().parent / "_scripts" / "audit_resolver.py"
PROCESSES = 4
PER_PROCESS = 500
THREADS = 8
PER_THREAD = 200
SUBPROCESS_TIMEOUT = 120.0
SECRET = "sk_live_concurrency_0123456789"


def all_events(broker: Broker) -> list[AuditEvent]:
    """Every event of the chain, oldest first (bounded: at most 50 pages)."""
    events: list[AuditEvent] = []
    after: int | None = None
    for _ in range(50):
        page = broker.audit.list(after_id=after, limit=1000)
        events.extend(page)
        if len(page) < 1000:
            return events
        after = page[-1].id
    raise AssertionError("more than 50,000 events: the test wrote far more than it meant to")


def stored_ids(broker: Broker) -> list[int]:
    """The ids actually in the table, read directly (not through AuditLog)."""
    with broker.engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(text("SELECT id FROM audit_events ORDER BY id"))]


def check_one_chain(
    broker: Broker, *, setup_events: int, expected_execution_ids: set[str]
) -> list[AuditEvent]:
    """The chain holds setup + one event per execution id, ids 1..N, and verifies."""
    total = setup_events + len(expected_execution_ids)
    ids = stored_ids(broker)
    assert len(ids) == total, f"expected {total} events, the table holds {len(ids)}"
    assert ids == list(range(1, total + 1)), "event ids have a gap or do not start at 1"
    events = all_events(broker)
    assert [e.id for e in events] == ids
    # Hash links as read back: each event's previous hash is the hash of the event before it.
    for before, after in itertools.pairwise(events):
        assert after.previous_hash == before.hash, f"event {after.id} does not link to {before.id}"
    seen = collections.Counter(e.execution_id for e in events if e.execution_id is not None)
    duplicated = {k: n for k, n in seen.items() if n != 1}
    assert not duplicated, f"execution ids recorded more than once: {list(duplicated)[:5]}"
    missing = expected_execution_ids - set(seen)
    assert not missing, f"{len(missing)} execution ids have no event, e.g. {sorted(missing)[:5]}"
    unexpected = set(seen) - expected_execution_ids
    assert not unexpected, f"unexpected execution ids: {sorted(unexpected)[:5]}"
    assert all(e.result == "success" for e in events)
    report = broker.audit.verify()
    assert report.is_valid
    assert report.total_checked == total
    return events


def expected_action(execution_id: str) -> str:
    n = int(execution_id.rsplit("-", 1)[1])
    return "password_read" if n % 10 == 0 else "resolved"


# -- processes -------------------------------------------------------------------------------


def run_processes(tmp_path: Path, url: str) -> None:
    home = tmp_path / "home"
    settings = load_settings(home=home, database_url=url)
    with open_broker(settings=settings) as setup:
        cred = setup.credentials.create(name="shared", type="api_key", secret_value=SECRET)
        assert setup.audit.last_id() == 1
    go_file = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWCRED_")}
    env["FLOWCRED_HOME"] = str(home)
    procs: list[subprocess.Popen[str]] = []
    try:
        for worker in range(PROCESSES):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(SCRIPT),
                        str(home),
                        url,
                        str(cred.id),
                        str(worker),
                        str(PER_PROCESS),
                        str(go_file),
                        SECRET,
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        # Release them together only once every worker has opened the store.
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", (line, proc.stderr.read() if proc.stderr else "")
        go_file.touch()
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        for worker, proc in enumerate(procs):
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert proc.returncode == 0, f"worker {worker} exited {proc.returncode}: {err[-2000:]}"
            assert out.strip() == f"done {PER_PROCESS - PER_PROCESS // 10} {PER_PROCESS // 10}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def process_execution_ids() -> set[str]:
    return {f"w{w}-{n}" for w in range(PROCESSES) for n in range(PER_PROCESS)}


@pytest.mark.slow
@pytest.mark.postgres
def test_four_processes_build_one_chain_on_postgres(clean_pg_url: str, tmp_path: Path) -> None:
    run_processes(tmp_path, clean_pg_url)
    settings = load_settings(home=tmp_path / "home", database_url=clean_pg_url)
    with open_broker(settings=settings) as broker:
        events = check_one_chain(
            broker, setup_events=1, expected_execution_ids=process_execution_ids()
        )
        assert events[0].action == "created"
        for event in events[1:]:
            assert event.action == expected_action(event.execution_id or "")
            assert event.resource_id == events[0].resource_id


@pytest.mark.slow
def test_four_processes_build_one_chain_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'home' / 'flowcred.db'}"
    run_processes(tmp_path, url)
    settings = load_settings(home=tmp_path / "home", database_url=url)
    with open_broker(settings=settings) as broker:
        events = check_one_chain(
            broker, setup_events=1, expected_execution_ids=process_execution_ids()
        )
        for event in events[1:]:
            assert event.action == expected_action(event.execution_id or "")


# -- threads ---------------------------------------------------------------------------------


@pytest.fixture
def cached_broker(database_url: str, tmp_path: Path) -> Iterator[Broker]:
    """A broker with the resolve cache on (the default TTL, stated explicitly)."""
    settings = load_settings(
        home=tmp_path / "home", database_url=database_url, cache_ttl_seconds=30
    )
    b = open_broker(settings=settings)
    try:
        yield b
    finally:
        b.close()


def run_threads(worker: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    lock = threading.Lock()

    def guarded(n: int) -> None:
        try:
            worker(n)
        except BaseException as exc:  # reported by the test, not lost in a thread
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SUBPROCESS_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    return errors


def test_threads_build_one_chain(cached_broker: Broker) -> None:
    broker = cached_broker
    cred = broker.credentials.create(name="shared", type="api_key", secret_value=SECRET)
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        provider = broker.provider()
        barrier.wait(timeout=30)
        for i in range(PER_THREAD):
            execution_id = f"t{n}-{i}"
            if i % 10 == 0:
                value = provider.get_password(cred.id, execution_id=execution_id)
            else:
                value = (
                    provider.resolve(cred.id, execution_id=execution_id).fields["api_key"].reveal()
                )
            assert value == SECRET

    errors = run_threads(worker)
    assert not errors, errors[:3]
    expected = {f"t{n}-{i}" for n in range(THREADS) for i in range(PER_THREAD)}
    events = check_one_chain(broker, setup_events=1, expected_execution_ids=expected)
    for event in events[1:]:
        assert event.action == expected_action(event.execution_id or "")
        assert event.resource_id == str(cred.id)


def test_threads_mixing_writes_and_reads_build_one_chain(cached_broker: Broker) -> None:
    """Changes (append_in, inside their own transaction) and reads (group commit) interleave on
    one chain: every change and every read has exactly one event."""
    broker = cached_broker
    creds = [
        broker.credentials.create(name=f"c{n}", type="api_key", secret_value=f"{SECRET}-{n}")
        for n in range(THREADS)
    ]
    barrier = threading.Barrier(THREADS)
    rotations = 10
    reads = 40

    def worker(n: int) -> None:
        provider = broker.provider()
        cid = creds[n].id
        barrier.wait(timeout=30)
        for i in range(reads):
            provider.resolve(cid, execution_id=f"m{n}-{i}")
            if i % (reads // rotations) == 0:
                broker.credentials.rotate(cid, secret_value=f"{SECRET}-{n}-{i}")

    errors = run_threads(worker)
    assert not errors, errors[:3]
    expected = {f"m{n}-{i}" for n in range(THREADS) for i in range(reads)}
    events = check_one_chain(
        broker, setup_events=THREADS + THREADS * rotations, expected_execution_ids=expected
    )
    actions = collections.Counter(e.action for e in events)
    assert actions == {
        "created": THREADS,
        "rotated": THREADS * rotations,
        "resolved": THREADS * reads,
    }
    for cred in creds:
        assert broker.credentials.get(cred.id).current_version == rotations + 1


# -- a key rotation by another process -------------------------------------------------------


def test_broker_open_during_a_kek_rotation_can_verify(tmp_path: Path) -> None:
    """A long-running broker (the HTTP service) and a 'flowcred keys rotate' run by an operator
    in another process share one chain and one checkpoint. After the rotation the other process
    writes the checkpoint under the new key version; the long-running broker must still be able
    to verify the chain (it holds every key it needs for the events), not call the checkpoint
    forged."""
    settings = load_settings(home=tmp_path / "home", audit_checkpoint_seconds=0)
    with open_broker(settings=settings) as service:
        cred = service.credentials.create(name="k", type="api_key", secret_value=SECRET)
        assert service.provider().get_password(cred.id, execution_id="before") == SECRET
        with open_broker(settings=settings) as operator:  # stands in for the CLI process
            operator.rotate_keys()
        assert service.provider().get_password(cred.id, execution_id="after") == SECRET
        with open_broker(settings=settings) as fresh:
            assert fresh.audit.verify().is_valid  # the chain itself is intact
        report = service.audit.verify()
        assert report.is_valid
        assert report.total_checked == 4


# -- coroutines (the REST API's resolve) ------------------------------------------------------

TASKS = 100
PER_TASK = 10


def test_coroutines_and_threads_build_one_chain(cached_broker: Broker) -> None:
    """``aresolve`` from many coroutines on one event loop, while threads resolve through the
    blocking path: both queue into the same group commit, and the chain has one event each."""
    broker = cached_broker
    cred = broker.credentials.create(name="shared", type="api_key", secret_value=SECRET)
    start = threading.Event()

    async def task(n: int) -> None:
        provider = broker.provider()
        for i in range(PER_TASK):
            execution_id = f"a{n}-{i}"
            if i % 10 == 0:
                value = await provider.aget_password(cred.id, execution_id=execution_id)
            else:
                material = await provider.aresolve(cred.id, execution_id=execution_id)
                value = material.fields["api_key"].reveal()
            assert value == SECRET

    async def all_tasks() -> None:
        start.set()
        async with asyncio.timeout(SUBPROCESS_TIMEOUT):
            await asyncio.gather(*(task(n) for n in range(TASKS)))

    def worker(n: int) -> None:
        if n == 0:
            asyncio.run(all_tasks())
            return
        provider = broker.provider()
        start.wait(timeout=30)
        for i in range(PER_THREAD):
            provider.resolve(cred.id, execution_id=f"t{n}-{i}")

    errors = run_threads(worker)
    assert not errors, errors[:3]
    expected = {f"a{n}-{i}" for n in range(TASKS) for i in range(PER_TASK)}
    expected |= {f"t{n}-{i}" for n in range(1, THREADS) for i in range(PER_THREAD)}
    events = check_one_chain(broker, setup_events=1, expected_execution_ids=expected)
    for event in events[1:]:
        execution_id = event.execution_id or ""
        if execution_id.startswith("a"):
            assert event.action == ("password_read" if execution_id.endswith("-0") else "resolved")


def test_event_loop_keeps_running_while_the_audit_write_waits(sqlite_broker: Broker) -> None:
    """While another connection holds the database's write lock, an ``aresolve`` waits for its
    event to become durable -- without blocking the event loop: other coroutines keep running,
    and the resolve completes once the lock is released."""
    broker = sqlite_broker
    cred = broker.credentials.create(name="held", type="api_key", secret_value=SECRET)
    provider = broker.provider()
    provider.resolve(cred.id, execution_id="warm")  # cached from now on
    blocker = sqlite3.connect(broker.settings.home / "flowcred.db", isolation_level=None)
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def scenario() -> int:
        stop = asyncio.Event()
        tick_task = asyncio.create_task(ticker(stop))
        blocker.execute("BEGIN IMMEDIATE")
        try:
            resolving = asyncio.create_task(provider.aresolve(cred.id, execution_id="held-1"))
            await asyncio.sleep(0.3)
            assert not resolving.done(), "resolve returned before its event could be written"
            during = ticks
        finally:
            blocker.execute("ROLLBACK")
        material = await asyncio.wait_for(resolving, timeout=30)
        assert material.fields["api_key"].reveal() == SECRET
        stop.set()
        await tick_task
        return during

    try:
        ticks_while_held = asyncio.run(scenario())
    finally:
        blocker.close()
    # 0.3 s at one tick per 10 ms: a blocked loop would have ticked once at most.
    assert ticks_while_held >= 10, f"the event loop stalled: {ticks_while_held} ticks"
    last = broker.audit.list(limit=1, newest_first=True)[0]
    assert (last.action, last.execution_id, last.result) == ("resolved", "held-1", "success")


def test_a_cancelled_aresolve_leaves_its_event_and_harms_no_other(sqlite_broker: Broker) -> None:
    """A request abandoned while its event waits (client gone, timeout) stops waiting; the event
    it queued is still written, so the trail shows the attempt, and other callers are unaffected."""
    broker = sqlite_broker
    cred = broker.credentials.create(name="held", type="api_key", secret_value=SECRET)
    provider = broker.provider()
    provider.resolve(cred.id, execution_id="warm")
    blocker = sqlite3.connect(broker.settings.home / "flowcred.db", isolation_level=None)

    async def scenario() -> None:
        blocker.execute("BEGIN IMMEDIATE")
        try:
            doomed = asyncio.create_task(provider.aresolve(cred.id, execution_id="gone"))
            kept = asyncio.create_task(provider.aresolve(cred.id, execution_id="kept"))
            await asyncio.sleep(0.1)
            doomed.cancel()
            await asyncio.sleep(0)
        finally:
            blocker.execute("ROLLBACK")
        material = await asyncio.wait_for(kept, timeout=30)
        assert material.version == 1
        with pytest.raises(asyncio.CancelledError):
            await doomed

    try:
        asyncio.run(scenario())
    finally:
        blocker.close()
    recorded = {e.execution_id for e in broker.audit.list(limit=10)}
    assert {"gone", "kept"} <= recorded
    assert broker.audit.verify().is_valid


def test_callers_that_gave_up_waiting_do_not_wedge_the_recorder(
    sqlite_broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Callers queued behind a stuck commit give up after the wait limit (AuditWriteFailed, no
    material). Once the database is free again, the next caller must be served: leadership must
    never be handed to a thread that has already gone."""
    monkeypatch.setattr(recorder_module, "WAIT_SECONDS", 0.5)
    broker = sqlite_broker
    cred = broker.credentials.create(name="stuck", type="api_key", secret_value=SECRET)
    provider = broker.provider()
    provider.resolve(cred.id, execution_id="warm")
    blocker = sqlite3.connect(broker.settings.home / "flowcred.db", isolation_level=None)
    outcomes: dict[str, str] = {}

    def resolve(execution_id: str) -> None:
        try:
            provider.resolve(cred.id, execution_id=execution_id)
            outcomes[execution_id] = "ok"
        except AuditWriteFailed:
            outcomes[execution_id] = "failed"

    blocker.execute("BEGIN IMMEDIATE")
    try:
        leader = threading.Thread(target=resolve, args=("leader",))
        leader.start()
        deadline = time.monotonic() + 10
        while not broker._recorder._flushing and time.monotonic() < deadline:
            time.sleep(0.01)
        assert broker._recorder._flushing, "the first caller never started its commit"
        followers = [threading.Thread(target=resolve, args=(f"gave-up-{n}",)) for n in range(2)]
        for thread in followers:
            thread.start()
        for thread in followers:
            thread.join(timeout=10)
        assert outcomes == {"gave-up-0": "failed", "gave-up-1": "failed"}
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    leader.join(timeout=30)
    assert outcomes["leader"] == "ok"
    resolve("after")
    assert outcomes["after"] == "ok", "the recorder stayed wedged behind callers that had gone"
    recorded = {e.execution_id for e in broker.audit.list(limit=20)}
    assert {"leader", "after"} <= recorded
    assert not {"gave-up-0", "gave-up-1"} & recorded  # they got no material and left no event
    assert broker.audit.verify().is_valid


def test_an_unwritable_checkpoint_file_neither_fails_nor_stalls_recorded_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The checkpoint file is written after events are durable. If it cannot be written (disk
    full, a directory in its place), the calls whose events committed succeed, the error is
    logged, and later calls -- threads and coroutines queued behind one another -- are served
    rather than left waiting behind a commit thread that died."""
    monkeypatch.setattr(recorder_module, "WAIT_SECONDS", 5.0)
    settings = load_settings(home=tmp_path / "home", audit_checkpoint_seconds=0)
    with open_broker(settings=settings) as broker:
        cred = broker.credentials.create(name="cp", type="api_key", secret_value=SECRET)
        provider = broker.provider()
        provider.resolve(cred.id, execution_id="warm")
        checkpoint = settings.resolved_checkpoint_path
        checkpoint.unlink()
        checkpoint.mkdir()  # the atomic rename onto it now fails

        async def burst(tag: str) -> list[str]:
            async def one(n: int) -> str:
                material = await provider.aresolve(cred.id, execution_id=f"{tag}-{n}")
                return material.fields["api_key"].reveal()

            async with asyncio.timeout(60):
                return await asyncio.gather(*(one(n) for n in range(20)))

        assert asyncio.run(burst("first")) == [SECRET] * 20
        assert asyncio.run(burst("second")) == [SECRET] * 20
        assert provider.resolve(cred.id, execution_id="sync").version == 1
        broker.credentials.rotate(cred.id, secret_value=SECRET + "-2")
        assert any("audit checkpoint file not written" in r.getMessage() for r in caplog.records)
        recorded = collections.Counter(e.execution_id for e in all_events(broker))
        for tag in ("first", "second"):
            assert all(recorded[f"{tag}-{n}"] == 1 for n in range(20))
        assert recorded["sync"] == 1
    # Closing (a final checkpoint write) logs the same error instead of raising.
    checkpoint.rmdir()
    with open_broker(settings=settings) as reopened:
        assert reopened.audit.verify().is_valid


def test_a_cancelled_aresolve_that_had_to_read_still_leaves_its_event(
    sqlite_broker: Broker,
) -> None:
    """A cache miss reads in a worker thread. Cancelling the caller meanwhile must not lose the
    call's event: the read finishes in its thread and records what happened."""
    broker = sqlite_broker
    cred = broker.credentials.create(name="cold", type="api_key", secret_value=SECRET)
    provider = broker.provider()

    async def scenario() -> None:
        task = asyncio.create_task(provider.aresolve(cred.id, execution_id="cold-cancelled"))
        await asyncio.sleep(0)  # the task starts and hands the read to a worker thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    deadline = time.monotonic() + 10
    found: list[AuditEvent] = []
    while not found and time.monotonic() < deadline:
        found = [e for e in broker.audit.list(limit=10) if e.execution_id == "cold-cancelled"]
        time.sleep(0.02)
    assert [(e.action, e.result) for e in found] == [("resolved", "success")]
