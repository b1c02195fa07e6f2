"""A wrong, missing or exposed key-encryption key stops flowcred; it never falls back.

From the issue: "a wrong or missing key makes every command and serve refuse to start with a clear
message — never a fallback to plaintext. A key file readable by group or others is refused (message
says how to fix)". Covered here:

* (a) the key file replaced by another valid key file: every CLI command exits 1 with one line on
  stderr naming the mismatch and both fingerprints, no traceback; ``flowcred.open()`` raises
  KeyMismatch; nothing in the store or the key file changes;
* (b) the key file deleted: every command exits 1 saying no key was found and how to restore it,
  and no command creates a new key file in its place;
* (c) a key file with group/other permissions: exit 1 with ``chmod 600`` in the message;
* (d) ``FLOWCRED_MASTER_KEY`` wrong, a placeholder, not base64, or the wrong length: refused,
  and the value given is never echoed;
* (e) ``flowcred serve`` with a wrong key exits non-zero quickly and never answers on its port;
* (f) on PostgreSQL: a store sealed with key A refuses key B;
* (g) after ``keys rotate`` the file holds two keys; the old one can be removed, the new one not.

Each refusal is paired with a control that the same command works with the right key.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import flowcred
from flowcred.broker import open_broker
from flowcred.cli.main import app
from flowcred.crypto import KeyFileSource, fingerprint, generate_key
from flowcred.crypto.key_sources import KEY_FILE_FORMAT
from flowcred.settings import load_settings

FLOWCRED_BIN = Path(sys.executable).with_name("flowcred")
SECRET = "sk_live_" + "k3y-t3st-" + "0123456789abcdef"
runner = CliRunner()


def run(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


def short(key: bytes) -> str:
    """The fingerprint prefix flowcred prints in messages."""
    return fingerprint(key)[:12]


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def write_key_file(path: Path, keys: list[bytes]) -> None:
    """Write a valid key file (newest key first) with mode 0600, as an operator's edit would."""
    doc = {
        "format": KEY_FILE_FORMAT,
        "keys": [{"created_at": "2026-01-01T00:00:00Z", "key": b64(k)} for k in keys],
    }
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(doc))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def assert_refused(result: Result, *needles: str, secret: str = SECRET) -> str:
    """Exit 1 through flowcred's own error path: one stderr line, no traceback, no secret."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    # A SystemExit means flowcred reported the error itself; anything else would be a crash.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    stderr = result.stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {stderr!r}"
    assert "Traceback" not in result.output
    assert secret not in result.output
    for needle in needles:
        assert needle in stderr, f"{needle!r} not in {stderr!r}"
    return stderr


@dataclass
class Store:
    home: Path
    key_file: Path
    key: bytes
    credential_id: int

    def snapshot(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.home.iterdir()) if p.is_file()}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A store made through the CLI: init, then one credential added from stdin."""
    home = tmp_path / "home"
    result = run("init")
    assert result.exit_code == 0, result.output
    result = run(
        "credentials",
        "add",
        "--type",
        "api_key",
        "--name",
        "stripe",
        "--secret-stdin",
        "--json",
        input=SECRET,
    )
    assert result.exit_code == 0, result.output
    key_file = home / "master.key"
    (key,) = KeyFileSource(key_file).load()
    return Store(home, key_file, key, json.loads(result.stdout)["credentialId"])


def assert_store_intact(store: Store) -> None:
    """Control, with the right key back in place: one credential, version 1, its secret."""
    result = run("credentials", "list", "--json")
    assert result.exit_code == 0, result.output
    (only,) = json.loads(result.stdout)
    assert only["credentialId"] == store.credential_id and only["currentVersion"] == 1
    result = run("resolve", "stripe", "--reveal", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["headers"] == {"X-API-Key": SECRET}


# Every command that opens the store, with the stdin it needs.
COMMANDS: list[tuple[tuple[str, ...], str | None]] = [
    (("credentials", "list"), None),
    (("credentials", "list", "--json"), None),
    (("credentials", "show", "stripe"), None),
    (("resolve", "stripe"), None),
    (("resolve", "stripe", "--reveal"), None),
    (("credentials", "add", "--type", "api_key", "--name", "other", "--secret-stdin"), "new-val"),
    (("credentials", "rotate", "stripe", "--secret-stdin"), "rotated-value"),
    (("credentials", "rollback", "stripe", "1"), None),
    (("credentials", "delete", "stripe", "--yes"), None),
    (("keys", "rotate"), None),
    (("keys", "status"), None),
    (("init",), None),
]


# --- (a) wrong key file -----------------------------------------------------------------------


def test_a_wrong_key_file_stops_every_command(store: Store, tmp_path: Path) -> None:
    other_source = KeyFileSource(tmp_path / "elsewhere" / "master.key")
    wrong = other_source.create_initial()
    os.replace(other_source.path, store.key_file)
    wrong_file = store.key_file.read_bytes()
    before = store.snapshot()

    for args, stdin in COMMANDS:
        stderr = assert_refused(
            run(*args, input=stdin), "does not match", short(wrong), short(store.key)
        )
        assert str(store.key_file) in stderr
        assert store.key_file.read_bytes() == wrong_file, f"{args} changed the key file"
    with pytest.raises(flowcred.KeyMismatch) as info:
        flowcred.open()
    assert short(wrong) in str(info.value) and short(store.key) in str(info.value)

    # The real process: exit status 1 and one line on its stderr, no traceback.
    proc = subprocess.run(
        [str(FLOWCRED_BIN), "credentials", "list"],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
    )
    assert proc.returncode == 1, proc.stderr
    assert "does not match" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

    # No file appeared or vanished in the home directory (no second key file, no fresh database).
    after = store.snapshot()
    assert after.keys() == before.keys()
    assert after["master.key"] == wrong_file
    write_key_file(store.key_file, [store.key])
    assert_store_intact(store)


# --- (b) missing key file ---------------------------------------------------------------------


def test_a_missing_key_file_is_never_recreated(store: Store) -> None:
    store.key_file.unlink()
    names_before = {p.name for p in store.home.iterdir()}
    for args, stdin in COMMANDS:
        stderr = assert_refused(
            run(*args, input=stdin), "no key-encryption key found", "restore", short(store.key)
        )
        assert str(store.key_file) in stderr
        assert not store.key_file.exists(), f"{args} created a new key file"
        assert {p.name for p in store.home.iterdir()} <= names_before | {
            "flowcred.db-wal",
            "flowcred.db-shm",
        }
    with pytest.raises(flowcred.KeyUnavailable):
        flowcred.open()
    assert not store.key_file.exists()
    write_key_file(store.key_file, [store.key])
    assert_store_intact(store)


# --- (c) insecure key file --------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660], ids=lambda m: f"{m:04o}")
def test_a_key_file_open_to_group_or_others_is_refused(store: Store, mode: int) -> None:
    os.chmod(store.key_file, mode)
    for args, stdin in COMMANDS[:5] + COMMANDS[-3:]:
        stderr = assert_refused(run(*args, input=stdin), "chmod 600", f"{mode:04o}")
        assert str(store.key_file) in stderr
        # flowcred reports it; it does not silently "fix" the mode.
        assert (store.key_file.stat().st_mode & 0o777) == mode
    with pytest.raises(flowcred.InsecureKeyFile):
        flowcred.open()
    os.chmod(store.key_file, 0o600)
    assert_store_intact(store)


# --- (d) FLOWCRED_MASTER_KEY ------------------------------------------------------------------


def test_a_wrong_master_key_variable_is_refused(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = generate_key()
    monkeypatch.setenv("FLOWCRED_MASTER_KEY", b64(wrong))
    for args, stdin in COMMANDS:
        result = run(*args, input=stdin)
        stderr = assert_refused(result, "does not match", short(wrong), short(store.key))
        assert "FLOWCRED_MASTER_KEY" in stderr
        assert b64(wrong) not in result.output
    with pytest.raises(flowcred.KeyMismatch):
        flowcred.open()
    # Control: the right key in the variable works, and the key file is not consulted.
    monkeypatch.setenv("FLOWCRED_MASTER_KEY", b64(store.key))
    store.key_file.unlink()
    assert_store_intact(store)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("changethis", "placeholder"),
        ("ChangeMe", "placeholder"),
        ("not base64 at all: s3cr3t!value", "base64"),
        (base64.b64encode(b"sixteen byte key").decode(), "32 bytes"),
        (b64(generate_key()) + ",@@not-a-key@@", "base64"),
    ],
    ids=["placeholder", "placeholder-case", "not-base64", "short-key", "bad-second-key"],
)
def test_an_unusable_master_key_variable_is_refused_without_echo(
    store: Store, monkeypatch: pytest.MonkeyPatch, value: str, needle: str
) -> None:
    monkeypatch.setenv("FLOWCRED_MASTER_KEY", value)
    for args, stdin in [COMMANDS[0], COMMANDS[3], COMMANDS[-1]]:
        result = run(*args, input=stdin)
        stderr = assert_refused(result, "FLOWCRED_MASTER_KEY", needle)
        for part in value.split(","):
            assert part not in result.output, "the key value was echoed"
        assert "sixteen" not in stderr
    with pytest.raises(flowcred.ConfigurationError) as info:
        flowcred.open()
    assert value not in str(info.value)
    assert store.key_file.exists()


# --- (e) serve --------------------------------------------------------------------------------


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


def start_serve(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(FLOWCRED_BIN), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


@pytest.mark.slow
def test_serve_with_a_wrong_key_exits_and_never_listens(store: Store, tmp_path: Path) -> None:
    # Control first: with the right key, serve does come up and answer on its port.
    port = free_port()
    proc = start_serve(port)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None and not answers(port):
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=20)

    wrong = KeyFileSource(tmp_path / "elsewhere" / "master.key")
    wrong_key = wrong.create_initial()
    os.replace(wrong.path, store.key_file)
    port = free_port()
    started = time.monotonic()
    proc = start_serve(port)
    answered = False
    try:
        while proc.poll() is None and time.monotonic() - started < 20:
            answered = answered or answers(port)
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate(timeout=20)
    elapsed = time.monotonic() - started
    assert proc.returncode not in (0, None), "serve kept running with a wrong key"
    assert elapsed < 20
    assert not answered and not answers(port), "serve answered on its port with a wrong key"
    assert "does not match" in stderr and short(wrong_key) in stderr and short(store.key) in stderr
    assert "Traceback" not in stderr


# --- (f) PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_store_refuses_another_key(
    clean_pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "pg-home"
    with open_broker(settings=load_settings(home=home, database_url=clean_pg_url)) as broker:
        cid = broker.credentials.create(
            name="pg stripe", type="api_key", secret={"api_key": SECRET}
        ).id
    (key_a,) = KeyFileSource(home / "master.key").load()
    key_b = generate_key()

    monkeypatch.setenv("FLOWCRED_MASTER_KEY", b64(key_b))
    with pytest.raises(flowcred.KeyMismatch) as info:
        flowcred.open(clean_pg_url, home=str(home))
    assert short(key_a) in str(info.value) and short(key_b) in str(info.value)
    monkeypatch.setenv("FLOWCRED_DATABASE_URL", clean_pg_url)
    assert_refused(run("resolve", str(cid), "--reveal"), "does not match", short(key_b))
    assert_refused(run("keys", "rotate"), "does not match")

    # Key B in a key file instead of the variable: the same refusal.
    monkeypatch.delenv("FLOWCRED_MASTER_KEY")
    write_key_file(home / "master.key", [key_b])
    with pytest.raises(flowcred.KeyMismatch):
        flowcred.open(clean_pg_url, home=str(home))

    # Control: key A opens it and the secret is intact (nothing was written under key B).
    monkeypatch.setenv("FLOWCRED_MASTER_KEY", b64(key_a))
    with flowcred.open(clean_pg_url, home=str(home)) as broker:
        assert broker.provider().get_password(cid) == SECRET
        assert broker.kek_version == 1


# --- (g) after a key rotation -----------------------------------------------------------------


def test_after_rotation_only_the_new_key_is_needed(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWCRED_DATABASE_URL", database_url)
    key_file = tmp_path / "home" / "master.key"
    secrets_ = {"alpha": SECRET, "beta": "sk_test_" + "b" * 24}
    for name, value in secrets_.items():
        result = run(
            "credentials",
            "add",
            "--type",
            "api_key",
            "--name",
            name,
            "--secret-stdin",
            input=value,
        )
        assert result.exit_code == 0, result.output
    (old,) = KeyFileSource(key_file).load()

    result = run("keys", "rotate", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"kekVersion": 2, "rewrapped": 2, "resumed": False}
    keys = KeyFileSource(key_file).load()
    assert len(keys) == 2 and keys[1] == old and keys[0] != old
    new = keys[0]
    assert key_file.stat().st_mode & 0o777 == 0o600

    def resolves_all() -> None:
        for name, value in secrets_.items():
            result = run("resolve", name, "--reveal", "--json")
            assert result.exit_code == 0, result.output
            assert json.loads(result.stdout)["headers"] == {"X-API-Key": value}
        with flowcred.open() as broker:
            for name, value in secrets_.items():
                assert broker.provider().get_password(name) == value

    resolves_all()
    write_key_file(key_file, [new])  # the old key removed: nothing needs it any more
    resolves_all()
    result = run("keys", "status", "--json")
    assert json.loads(result.stdout)["pendingRewraps"] == 0

    write_key_file(key_file, [old])  # the new key removed: refused, never a fallback
    with pytest.raises(flowcred.KeyMismatch) as info:
        flowcred.open()
    assert "older version" in str(info.value)
    for args in (("resolve", "alpha", "--reveal"), ("credentials", "list"), ("keys", "rotate")):
        assert_refused(run(*args), "does not match", short(old), short(new))
    assert KeyFileSource(key_file).load() == [old]

    write_key_file(key_file, [new, old])
    resolves_all()
