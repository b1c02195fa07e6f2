"""The audit checkpoint never moves back, whichever process writes last (hardening item 6).

Every process that appends to the chain also writes the checkpoint: after a commit once its
interval has passed, and when it closes. A long-running process (``flowcred serve``, or any
embedding program) used to write its own, older, position at shutdown over the newer one a CLI
process had written meanwhile; cutting the newest events off the chain then verified as intact.

These tests run real processes in different orders (serve stopped with SIGTERM, serve killed with
SIGKILL, a CLI command after serve, a second broker process held open across a CLI command),
then cut the tail the way an attacker with database-owner rights would (triggers dropped, newest
rows deleted) and expect ``flowcred audit verify`` to exit 1 naming a truncation. Long-running
processes get a checkpoint interval of an hour, so their last events are written only at close:
which process writes last is decided by the order of the steps, never by timing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FLOWCRED_BIN = Path(sys.executable).with_name("flowcred")
HELD_OPEN = Path(__file__).parent / "_scripts" / "held_open_broker.py"
WAIT_SECONDS = 60
SECRET = "sk_live_" + "m0n0t0n1c-" + "0123456789abcdef"

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(FLOWCRED_BIN), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        env=_env(),
    )
    return proc


def cli_ok(*args: str, stdin: str | None = None) -> str:
    proc = cli(*args, stdin=stdin)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def add_credential(name: str) -> None:
    cli_ok(
        "credentials", "add", "--type", "api_key", "--name", name, "--secret-stdin", stdin=SECRET
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Serve:
    """A ``flowcred serve`` process on a free loopback port."""

    def __init__(self, api_key: str) -> None:
        self.port = free_port()
        self.api_key = api_key
        self.proc = subprocess.Popen(
            [str(FLOWCRED_BIN), "serve", "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(FLOWCRED_AUDIT_CHECKPOINT_SECONDS="3600"),
        )
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and self.proc.poll() is None and not answers(self.port):
            time.sleep(0.1)
        if self.proc.poll() is not None or not answers(self.port):
            self.stop(signal.SIGKILL)
            pytest.fail(f"serve did not come up: {self.proc.communicate()[1]}")

    def list_credentials(self) -> None:
        """One audited request (a credential list)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/credentials", headers={"X-API-Key": self.api_key}
        )
        with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
            assert response.status == 200

    def stop(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.communicate(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=WAIT_SECONDS)


class HeldOpen:
    """A second broker process: opens the store, reads, and closes only when told to."""

    def __init__(self, reads: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HELD_OPEN), str(reads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(FLOWCRED_AUDIT_CHECKPOINT_SECONDS="3600"),
        )
        assert self.proc.stdout is not None
        # readline is bounded by the process: it either prints "ready" or exits (EOF).
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            pytest.fail(f"held-open broker failed: {self.proc.communicate(timeout=WAIT_SECONDS)}")

    def close(self) -> None:
        out, err = self.proc.communicate("close\n", timeout=WAIT_SECONDS)
        assert self.proc.returncode == 0 and "closed" in out, err

    def kill(self) -> None:
        """Clean-up after a failure: end the process if it still runs."""
        if self.proc.returncode is not None:
            return
        self.proc.kill()
        self.proc.communicate(timeout=WAIT_SECONDS)


@pytest.fixture
def home() -> Iterator[Path]:
    """An initialised embedded store in ``$FLOWCRED_HOME`` (isolated by tests/conftest.py)."""
    cli_ok("init")
    yield Path(os.environ["FLOWCRED_HOME"])


@pytest.fixture
def admin_key(home: Path) -> str:
    out = cli_ok("apikeys", "create", "--role", "admin", "--name", "monotonic", "--json")
    key: str = json.loads(out)["key"]
    return key


@contextmanager
def owner_db(home: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(home / "flowcred.db", isolation_level=None, timeout=WAIT_SECONDS)
    try:
        yield conn
    finally:
        conn.close()


def last_event_id(home: Path) -> int:
    with owner_db(home) as conn:
        return int(conn.execute("SELECT MAX(id) FROM audit_events").fetchone()[0] or 0)


def checkpoint_id(home: Path) -> int:
    last_id: int = json.loads((home / "audit.checkpoint").read_text())["last_id"]
    return last_id


def cut_tail_after(home: Path, keep: int) -> None:
    """Delete every event after ``keep``, as a database owner who dropped the triggers would."""
    with owner_db(home) as conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
        conn.execute("DELETE FROM audit_events WHERE id > ?", (keep,))
        assert int(conn.execute("SELECT MAX(id) FROM audit_events").fetchone()[0]) == keep


def assert_verify_names_truncation(home: Path, first_missing: int) -> None:
    proc = cli("audit", "verify", "--json")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    report = json.loads(proc.stdout)
    assert report["isValid"] is False
    assert report["kind"] == "truncated", report
    assert report["firstInvalidId"] == first_missing, report
    assert "Traceback" not in proc.stderr


def assert_checkpoint_pins_the_end(home: Path) -> int:
    """The invariant: after every process closed, the checkpoint pins the newest event."""
    newest = last_event_id(home)
    assert checkpoint_id(home) == newest
    return newest


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_serve_stopped_after_a_cli_write_keeps_the_newer_checkpoint(
    home: Path, admin_key: str, sig: signal.Signals
) -> None:
    serve = Serve(admin_key)
    try:
        serve.list_credentials()  # written at once: the first checkpoint of the process
        serve.list_credentials()  # held back by the interval: written at close, if at all
        keep = last_event_id(home)
        add_credential("written by the cli")
        assert last_event_id(home) > keep
        assert checkpoint_id(home) == last_event_id(home)
    finally:
        serve.stop(sig)
    assert_checkpoint_pins_the_end(home)
    cut_tail_after(home, keep)
    assert_verify_names_truncation(home, keep + 1)


def test_cli_after_serve_stopped_moves_the_checkpoint_forward(home: Path, admin_key: str) -> None:
    serve = Serve(admin_key)
    try:
        serve.list_credentials()
        serve.list_credentials()
    finally:
        serve.stop(signal.SIGTERM)
    keep = assert_checkpoint_pins_the_end(home)
    add_credential("after serve")
    assert_checkpoint_pins_the_end(home)
    cut_tail_after(home, keep)
    assert_verify_names_truncation(home, keep + 1)


def test_process_closed_after_a_cli_write_keeps_the_newer_checkpoint(home: Path) -> None:
    held = HeldOpen(reads=2)
    try:
        keep = last_event_id(home)
        add_credential("written meanwhile")
        assert checkpoint_id(home) == last_event_id(home)
        held.close()
    finally:
        held.kill()
    assert_checkpoint_pins_the_end(home)
    cut_tail_after(home, keep)
    assert_verify_names_truncation(home, keep + 1)


def test_serve_and_a_process_both_closing_after_a_cli_write(home: Path, admin_key: str) -> None:
    serve = Serve(admin_key)
    held: HeldOpen | None = None
    try:
        serve.list_credentials()
        held = HeldOpen(reads=2)
        serve.list_credentials()
        keep = last_event_id(home)
        add_credential("newest")
        held.close()
    finally:
        serve.stop(signal.SIGTERM)
        if held is not None:
            held.kill()
    assert_checkpoint_pins_the_end(home)
    cut_tail_after(home, keep)
    assert_verify_names_truncation(home, keep + 1)
