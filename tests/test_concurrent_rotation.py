"""Concurrent rotations of one credential lose no update (DESIGN §5, invariant 4).

Every secret write is a check-and-set on the credential's current version: of several writers that
read the same version, exactly one wins and every other one gets a clear
:class:`flowcred.VersionConflict` -- never a silent overwrite, never a version number written
twice, never another error. Proven on SQLite (one file shared by threads and by processes, writers
serialised by ``BEGIN IMMEDIATE`` + busy timeout) and on PostgreSQL (row locks).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import flowcred
from flowcred.broker import Broker, open_broker
from flowcred.settings import load_settings

SCRIPTS = Path(__file__).resolve().parent / "_scripts"
THREADS = 8
ROTATIONS_PER_THREAD = 25
PROCESSES = 4
ROTATIONS_PER_PROCESS = 25
TIMEOUT = 120.0


def secret_at(broker: Broker, cid: int, version: int | None = None) -> str:
    """The stored secret of one version (or the current one), decrypted from the store."""
    return json.loads(broker._store.read_secret(cid, version))["api_key"]


def check_no_lost_update(
    broker: Broker, cid: int, successes: list[tuple[int, str]], initial: str
) -> None:
    """``successes`` are (returned version, value) of every rotation that reported success."""
    numbers = [version for version, _ in successes]
    assert len(set(numbers)) == len(numbers), "two successful rotations got the same version"
    record = broker.credentials.get(cid)
    assert record.current_version == len(successes) + 1, (record.current_version, len(successes))
    assert sorted(numbers) == list(range(2, len(successes) + 2)), "versions are not contiguous"
    by_version = {1: initial, **dict(successes)}
    newest = max(numbers)
    assert secret_at(broker, cid) == by_version[newest]
    assert broker.provider().get_password(cid) == by_version[newest]
    kept = broker.credentials.versions(cid)
    retention = broker.settings.version_retention
    expected_kept = set(range(max(1, newest - retention + 1), newest + 1))
    assert {v.version for v in kept} == expected_kept
    assert [v.version for v in kept if v.current] == [newest]
    for version in expected_kept:
        # Each kept version holds exactly the value whose rotation returned that version: no
        # success was overwritten, and no write that reported a conflict was stored.
        assert secret_at(broker, cid, version) == by_version[version], version


def test_threads_rotating_one_credential_lose_no_update(broker: Broker) -> None:
    cred = broker.credentials.create(name="shared", type="api_key", secret_value="initial")
    barrier = threading.Barrier(THREADS)
    lock = threading.Lock()
    successes: list[tuple[int, str]] = []
    conflicts: list[flowcred.VersionConflict] = []
    errors: list[str] = []

    def worker(n: int) -> None:
        barrier.wait(timeout=30)
        for i in range(ROTATIONS_PER_THREAD):
            value = f"thread-{n}-{i}"
            try:
                record = broker.credentials.rotate(cred.id, secret_value=value)
            except flowcred.VersionConflict as exc:
                with lock:
                    conflicts.append(exc)
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
            else:
                with lock:
                    successes.append((record.current_version, value))

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + TIMEOUT
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "rotating threads did not finish in time"
    assert not errors, errors
    assert len(successes) + len(conflicts) == THREADS * ROTATIONS_PER_THREAD
    check_no_lost_update(broker, cred.id, successes, "initial")
    # The run exercised contention (positive control), and every loser was told clearly.
    assert conflicts, "no rotation ever conflicted: the test did not exercise concurrency"
    for exc in conflicts:
        assert exc.credential_id == cred.id
        assert "version conflict" in str(exc)
        assert "thread-" not in str(exc)
    print(f"\nthreads: {len(successes)} rotations won, {len(conflicts)} got VersionConflict")


def _child_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "FLOWCRED_HOME": str(tmp_path / "home"),
        "FLOWCRED_DATABASE_URL": database_url,
        "FLOWCRED_CACHE_TTL_SECONDS": "0",
    }


def test_processes_rotating_one_credential_with_cas_lose_no_update(
    broker: Broker, database_url: str, tmp_path: Path
) -> None:
    cred = broker.credentials.create(name="shared", type="api_key", secret_value="initial")
    env = _child_env(database_url, tmp_path)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(SCRIPTS / "cas_rotator.py"),
                str(cred.id),
                str(n),
                str(ROTATIONS_PER_PROCESS),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(PROCESSES)
    ]
    try:
        for proc in procs:  # all open and waiting, then released together
            assert proc.stdout is not None
            ready = proc.stdout.readline().strip()
            assert ready == "ready", (ready, proc.stderr.read() if proc.stderr else "")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == 0, err
            outputs.append(out.splitlines())
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    attempts = []
    for lines in outputs:
        assert lines[-1] == "done", lines[-3:]
        attempts += [json.loads(line) for line in lines[:-1]]
    assert len(attempts) == PROCESSES * ROTATIONS_PER_PROCESS
    odd = [a for a in attempts if not a["ok"] and a["error"] != "VersionConflict"]
    assert not odd, f"losers must get VersionConflict and nothing else: {odd}"
    wins = [a for a in attempts if a["ok"]]
    losses = [a for a in attempts if not a["ok"]]
    for win in wins:
        assert win["version"] == win["expected"] + 1, win
    won_from = [w["expected"] for w in wins]
    assert len(set(won_from)) == len(won_from), "two writers won from the same version"
    for loss in losses:
        # A CAS fails only because the version moved on, which only a winner from it can do.
        assert loss["expected"] in won_from, loss
    check_no_lost_update(broker, cred.id, [(w["version"], w["value"]) for w in wins], "initial")
    assert losses, "no rotation ever conflicted: the processes did not contend"
    print(f"\nprocesses: {len(wins)} rotations won, {len(losses)} got VersionConflict")


def test_stale_expected_version_conflicts_and_changes_nothing(
    broker: Broker, database_url: str, tmp_path: Path
) -> None:
    cred = broker.credentials.create(name="cas", type="api_key", secret_value="value-1")
    # Positive control: the right expected version is accepted.
    record = broker.credentials.rotate(cred.id, secret_value="value-2", expected_version=1)
    assert record.current_version == 2
    before = broker.credentials.versions(cred.id)
    provider = broker.provider()
    assert provider.get_password(cred.id) == "value-2"

    with pytest.raises(flowcred.VersionConflict) as info:
        broker.credentials.rotate(cred.id, secret_value="value-stale", expected_version=1)
    assert (info.value.credential_id, info.value.expected, info.value.actual) == (cred.id, 1, 2)
    assert "value-stale" not in str(info.value)
    with pytest.raises(flowcred.VersionConflict):
        broker.credentials.rollback(cred.id, 1, expected_version=1)

    # The same through the CLI, from another process: exit code 1, one clear line, no change.
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "flowcred"),
            "credentials",
            "rotate",
            str(cred.id),
            "--expected-version",
            "1",
            "--secret-stdin",
        ],
        input="value-stale-cli",
        env=_child_env(database_url, tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "version conflict" in proc.stderr and "value-stale-cli" not in proc.stderr + proc.stdout

    assert broker.credentials.get(cred.id).current_version == 2
    assert broker.credentials.versions(cred.id) == before
    assert provider.get_password(cred.id) == "value-2"
    assert secret_at(broker, cred.id) == "value-2"
    assert secret_at(broker, cred.id, 1) == "value-1"


class _Lines:
    """Stdout lines of a child, read by a thread so that waiting for one can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.seen.append(line.rstrip("\n"))
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, word: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"child exited before {word!r}: {self.seen}"
            if line == word:
                return


def test_concurrent_key_rotations_never_lose_a_key(
    broker: Broker, database_url: str, tmp_path: Path
) -> None:
    """Two ``keys rotate`` runs at once: A has read the key file and is about to write it when B
    runs. Whatever happens to A and B (either may fail with a clear error, or wait for the
    other), every secret must stay readable and a later ``keys rotate`` must finish."""
    values = {}
    for i in range(30):
        record = broker.credentials.create(name=f"k{i}", type="api_key", secret_value=f"kv-{i}")
        values[record.id] = f"kv-{i}"
    broker.close()
    env = _child_env(database_url, tmp_path)
    script = [sys.executable, str(SCRIPTS / "rotate_keys.py")]
    spawn = {
        "stdin": subprocess.PIPE,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "text": True,
        "env": env,
    }
    first = subprocess.Popen([*script, "--pause-before-key-write"], **spawn)
    second = None
    try:
        first_lines = _Lines(first)
        first_lines.until("writing-key")
        first_lines.until("paused")
        second = subprocess.Popen(script, **spawn)
        second_lines = _Lines(second)
        try:  # B runs to its end, or waits (e.g. on a rotation lock) while A is paused
            second.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        assert first.stdin is not None
        first.stdin.write("\n")
        first.stdin.flush()
        first.wait(timeout=TIMEOUT)
        second.wait(timeout=TIMEOUT)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    for proc, lines in ((first, first_lines), (second, second_lines)):
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert "Traceback" not in err, err
        # Each run either finished or failed with one clear flowcred error line.
        assert lines.seen and lines.seen[-1].startswith(("done ", "error ")), lines.seen

    settings = load_settings(home=tmp_path / "home", database_url=database_url, cache_ttl_seconds=0)
    try:
        fresh = open_broker(settings=settings)
    except flowcred.KeyUnavailable as exc:
        pytest.fail(
            f"secrets lost after two concurrent key rotations ({exc}); run A printed "
            f"{first_lines.seen[-1]!r}, run B printed {second_lines.seen[-1]!r}"
        )
    with fresh:
        provider = fresh.provider()
        for cid, value in values.items():
            assert provider.get_password(cid) == value
        fresh.rotate_keys()
        assert fresh.pending_rewraps() == 0
    with open_broker(settings=settings) as fresh:
        provider = fresh.provider()
        for cid, value in values.items():
            assert provider.get_password(cid) == value
