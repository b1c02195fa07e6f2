"""A change made in one process is seen by every other process on the same database within the
visibility bound (DESIGN §5, invariant 9; issue 8 item 7).

Two brokers opened on one database have separate caches, exactly as two processes do: a change
through broker A must reach broker B's resolve (and B's API-key check) within a bounded wait,
although B holds the old state in a cache whose TTL (30 s, 5 s for keys) is far longer. The last
tests run a real ``flowcred serve`` subprocess and change its credentials with the CLI.

Waits are bounded loops (no timing assertions): each polls for at most a few seconds, which is
generous against the 1 s bound yet far shorter than the caches' TTLs the bug relied on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.test_invariant_keys import answers, free_port

from flowcred.broker import Broker, open_broker
from flowcred.errors import AccessDenied, CredentialNotFound
from flowcred.settings import load_settings

FLOWCRED_BIN = Path(sys.executable).with_name("flowcred")
OLD = "xoxb-" + "old-0123456789"
NEW = "xoxb-" + "new-9876543210"
WAIT_SECONDS = 3.0


def wait_for(condition: Callable[[], bool], seconds: float = WAIT_SECONDS) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass (bounded); True if it held."""
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@pytest.fixture
def two_brokers(database_url: str, tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    settings = load_settings(home=tmp_path / "home", database_url=database_url)
    a = open_broker(settings=settings)
    b = open_broker(settings=settings)
    try:
        yield a, b
    finally:
        b.close()
        a.close()


def token_in(broker: Broker, cid: int) -> str:
    return broker.provider(tenant="acme").get_password(cid)


def test_rotate_in_one_broker_reaches_the_other_cache(two_brokers: tuple[Broker, Broker]) -> None:
    a, b = two_brokers
    cred = a.credentials.create(name="Bot", type="slack", tenant="acme", secret={"token": OLD})
    assert token_in(b, cred.id) == OLD  # now cached in B
    assert token_in(b, cred.id) == OLD
    a.credentials.rotate(cred.id, secret={"token": NEW})
    assert wait_for(lambda: token_in(b, cred.id) == NEW)


def test_rotate_reaches_a_handle_resolve_and_the_async_path(
    two_brokers: tuple[Broker, Broker],
) -> None:
    import asyncio

    a, b = two_brokers
    cred = a.credentials.create(name="Bot", type="slack", tenant="acme", secret={"token": OLD})
    provider = b.provider(tenant="acme")
    assert provider.get_password(cred.handle) == OLD
    assert asyncio.run(provider.aget_password(cred.id)) == OLD
    a.credentials.rotate(cred.id, secret={"token": NEW})
    assert wait_for(lambda: provider.get_password(cred.handle) == NEW)
    assert asyncio.run(provider.aget_password(cred.id)) == NEW


def test_rollback_and_update_reach_the_other_cache(two_brokers: tuple[Broker, Broker]) -> None:
    a, b = two_brokers
    cred = a.credentials.create(
        name="Key", type="api_key", tenant="acme", secret={"api_key": OLD}, config={}
    )
    a.credentials.rotate(cred.id, secret={"api_key": NEW})
    provider = b.provider(tenant="acme")
    assert provider.resolve(cred.id).version == 2
    a.credentials.rollback(cred.id, 1)
    assert wait_for(lambda: provider.get_password(cred.id) == OLD)
    a.credentials.update(cred.id, config={"key_name": "X-Changed"})
    assert wait_for(lambda: "X-Changed" in provider.resolve(cred.id).headers)


def test_delete_in_one_broker_makes_the_other_raise_not_found(
    two_brokers: tuple[Broker, Broker],
) -> None:
    a, b = two_brokers
    cred = a.credentials.create(name="Bot", type="slack", tenant="acme", secret={"token": OLD})
    assert token_in(b, cred.id) == OLD
    assert b.provider(tenant="acme").get_password(cred.handle) == OLD
    a.credentials.delete(cred.id)

    def gone(ref: int | str) -> bool:
        try:
            b.provider(tenant="acme").get_password(ref)
        except CredentialNotFound:
            return True
        return False

    assert wait_for(lambda: gone(cred.id))
    assert gone(cred.handle)
    assert b.cached_tenant_of(cred.id) is None


def test_revoked_api_key_stops_working_in_the_other_broker(
    two_brokers: tuple[Broker, Broker],
) -> None:
    a, b = two_brokers
    key, raw = a.api_keys.create(role="worker", tenant="acme")
    assert b.api_keys.authenticate(raw).id == key.id  # now cached in B
    a.api_keys.revoke(key.id)

    def refused() -> bool:
        try:
            b.api_keys.authenticate(raw)
        except AccessDenied:
            return True
        return False

    assert wait_for(refused)


def test_rotated_api_key_without_grace_stops_working_in_the_other_broker(
    two_brokers: tuple[Broker, Broker],
) -> None:
    a, b = two_brokers
    key, raw = a.api_keys.create(role="worker", tenant="acme")
    assert b.api_keys.authenticate(raw).id == key.id
    a.api_keys.rotate(key.id, grace_seconds=0)

    def refused() -> bool:
        try:
            b.api_keys.authenticate(raw)
        except AccessDenied:
            return True
        return False

    assert wait_for(refused)


# -- a real server process and the CLI ---------------------------------------------------------


def _env(database_url: str, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["FLOWCRED_HOME"] = str(home)
    env["FLOWCRED_DATABASE_URL"] = database_url
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1] / "src"), env.get("PYTHONPATH", "")]
    )
    return env


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(FLOWCRED_BIN), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _resolve(port: int, raw_key: str, cid: int) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/credentials/{cid}/resolve",
        data=b"{}",
        method="POST",
        headers={"X-API-Key": raw_key, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


@pytest.mark.slow
def test_serve_sees_cli_rotate_delete_and_key_revoke_within_the_bound(
    database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = _env(database_url, home)
    with open_broker(settings=load_settings(home=home, database_url=database_url)) as broker:
        cred = broker.credentials.create(
            name="Bot", type="slack", tenant="acme", secret={"token": OLD}
        )
        key, raw = broker.api_keys.create(role="worker", tenant="acme")
    port = free_port()
    proc = subprocess.Popen(
        [str(FLOWCRED_BIN), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert wait_for(lambda: proc.poll() is not None or answers(port), 30)
        assert proc.poll() is None
        status, body = _resolve(port, raw, cred.id)
        assert (status, body["fields"]["token"]) == (200, OLD)
        _resolve(port, raw, cred.id)  # served from the server's cache now

        _cli(env, "credentials", "rotate", str(cred.id), "--tenant", "acme", "--secret-stdin",
             stdin=NEW)  # fmt: skip
        assert wait_for(lambda: _resolve(port, raw, cred.id)[1].get("fields", {}).get("token")
                        == NEW)  # fmt: skip

        _cli(env, "credentials", "delete", str(cred.id), "--tenant", "acme", "--yes")
        assert wait_for(lambda: _resolve(port, raw, cred.id)[0] == 404)

        _cli(env, "apikeys", "revoke", key.id)
        assert wait_for(lambda: _resolve(port, raw, cred.id)[0] == 401)
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=20)
