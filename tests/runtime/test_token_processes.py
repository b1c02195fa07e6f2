"""Token refreshes across processes and crashes, on SQLite and PostgreSQL.

Child processes (``tests/_scripts/oauth_resolver.py``) open the same store and resolve the same
OAuth credential against the loopback authorization server running in the test process, which
counts every token request it receives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.oauth_support.server import AuthzServer

from flowcred.broker import Broker, open_broker
from flowcred.errors import TokenRefreshFailed
from flowcred.settings import load_settings

SCRIPT = Path(__file__).resolve().parents[1] / "_scripts" / "oauth_resolver.py"
LEASE = 1.0  # seconds: a killed holder's lease lapses quickly


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store_broker(database_url: str, home: Path) -> Iterator[Broker]:
    settings = load_settings(
        home=home,
        database_url=database_url,
        oauth_lease_seconds=LEASE,
        oauth_retry_base_seconds=0.01,
        oauth_retry_max_seconds=0.05,
    )
    b = open_broker(settings=settings)
    try:
        yield b
    finally:
        b.close()


def _env(broker: Broker, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["FLOWCRED_HOME"] = str(home)
    env["FLOWCRED_DATABASE_URL"] = broker.settings.resolved_database_url
    env["FLOWCRED_OAUTH_LEASE_SECONDS"] = str(LEASE)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")]
    )
    return env


def _spawn(broker: Broker, home: Path, cid: int, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(cid), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(broker, home),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
    return proc


def _go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def _result(proc: subprocess.Popen[str]) -> dict[str, list[str]]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result: dict[str, list[str]] = json.loads(out.strip().splitlines()[-1])
    return result


def _wait(check: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def _m2m(broker: Broker, server: AuthzServer) -> int:
    server.register_client("m2m-app", "m2m-secret", grant_types=("client_credentials",))
    return broker.credentials.create(
        name="Shared M2M",
        type="oauth2_client_credentials",
        config={"token_url": server.token_url, "client_id": "m2m-app"},
        secret={"client_secret": "m2m-secret"},
    ).id


def _authorized(broker: Broker, server: AuthzServer) -> int:
    """An authorization-code credential authorised through the flow (Python API)."""
    flow = broker.oauth_flow
    server.register_client("web-app", "web-secret", redirect_uris=(flow.redirect_uri,))
    cid = broker.credentials.create(
        name="CRM",
        type="oauth2",
        config={
            "authorization_url": server.authorize_url,
            "token_url": server.token_url,
            "client_id": "web-app",
            "scopes": ["crm"],
        },
        secret={"client_secret": "web-secret"},
    ).id
    url = flow.start(cid, caller=broker)
    back = httpx.get(url, follow_redirects=False, timeout=10).headers["location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    flow.complete(query["state"], code=query["code"])
    return cid


def _expire_soon(broker: Broker, server: AuthzServer, cid: int) -> str:
    """Resolve once with a token due 1 s later, wait for it to be due; returns that token."""
    server.access_token_lifetime = 61
    token = broker.provider().resolve(cid).fields["access_token"].reveal()
    time.sleep(1.2)
    server.reset_counts()
    return str(token)


@pytest.mark.slow
def test_four_processes_resolving_an_expiring_token_cause_one_token_request(
    store_broker: Broker, home: Path, authz_server: AuthzServer
) -> None:
    cid = _m2m(store_broker, authz_server)
    old = _expire_soon(store_broker, authz_server, cid)
    authz_server.access_token_lifetime = 3600
    authz_server.delay = 0.5  # every process reaches the endpoint's lease while it is held
    procs = [_spawn(store_broker, home, cid, "8", "3") for _ in range(4)]
    for proc in procs:
        _go(proc)
    results = [_result(proc) for proc in procs]
    tokens = {t for r in results for t in r["tokens"]}
    assert all(not r["errors"] for r in results), results
    # Said on failure: whether the spent token was handed out, and how many requests were made
    # (a rare two-token failure was seen once under a loaded CI run; this tells which one).
    assert len(tokens) == 1 and old not in tokens, (old in tokens, authz_server.counts())
    assert authz_server.count("total") == 1, authz_server.counts()
    assert authz_server.is_valid(tokens.pop())


@pytest.mark.slow
def test_a_process_killed_before_the_provider_answered_leaves_a_working_credential(
    store_broker: Broker, home: Path, authz_server: AuthzServer
) -> None:
    cid = _m2m(store_broker, authz_server)
    _expire_soon(store_broker, authz_server, cid)
    authz_server.inject_fault("hang", seconds=5)  # the request is held, never granted
    proc = _spawn(store_broker, home, cid, "1", "1")
    _go(proc)
    _wait(lambda: authz_server.count("total") == 1)
    proc.kill()
    proc.wait(timeout=10)
    # The dead holder's lease lapses within LEASE; the next resolve refreshes and works.
    token = store_broker.provider().resolve(cid).fields["access_token"].reveal()
    assert authz_server.is_valid(token)
    assert authz_server.count("total") == 2


@pytest.mark.slow
def test_a_process_killed_just_after_storing_the_token_leaves_it_for_the_others(
    store_broker: Broker, home: Path, authz_server: AuthzServer
) -> None:
    cid = _m2m(store_broker, authz_server)
    _expire_soon(store_broker, authz_server, cid)
    authz_server.access_token_lifetime = 3600
    proc = _spawn(store_broker, home, cid, "1", "1", "--die-after-resolve")
    _go(proc)
    proc.wait(timeout=60)
    assert proc.returncode == -9
    assert authz_server.count("total") == 1
    token = store_broker.provider().resolve(cid).fields["access_token"].reveal()
    assert authz_server.is_valid(token)
    assert authz_server.count("total") == 1, "the stored token is used, not fetched again"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["grace", "strict"])
def test_a_process_killed_after_the_provider_rotated_but_before_storing(
    store_broker: Broker, home: Path, authz_server: AuthzServer, mode: str
) -> None:
    authz_server.refresh_mode = mode  # type: ignore[assignment]
    authz_server.grace_seconds = 60.0
    authz_server.access_token_lifetime = 61
    cid = _authorized(store_broker, authz_server)
    _expire_soon(store_broker, authz_server, cid)
    authz_server.inject_fault("slow_success", seconds=5)  # rotated, answer held
    proc = _spawn(store_broker, home, cid, "1", "1")
    _go(proc)
    _wait(lambda: authz_server.count("refresh_token") == 1)
    time.sleep(0.1)  # the server has rotated the refresh token by now
    proc.kill()
    proc.wait(timeout=10)
    provider = store_broker.provider()
    if mode == "grace":
        token = provider.resolve(cid).fields["access_token"].reveal()
        assert authz_server.is_valid(token)
        assert store_broker.tokens.status(cid, "default").state == "active"
        return
    with pytest.raises(TokenRefreshFailed) as caught:
        provider.resolve(cid)
    assert caught.value.reauthorize and "flowcred oauth authorize" in str(caught.value)
    assert authz_server.count("refresh_token") == 2, "exactly one further attempt"
    with pytest.raises(TokenRefreshFailed):
        provider.resolve(cid)
    assert authz_server.count("refresh_token") == 2, "no retry loop"
    assert store_broker.tokens.status(cid, "default").state == "expired"


def test_an_invalid_grant_after_another_holders_refresh_is_a_lost_race(
    database_url: str, home: Path, authz_server: AuthzServer
) -> None:
    settings = load_settings(home=home, database_url=database_url, oauth_lease_seconds=0.3)
    with open_broker(settings=settings) as slow, open_broker(settings=settings) as fast:
        authz_server.refresh_mode = "static"
        authz_server.access_token_lifetime = 61
        cid = _authorized(slow, authz_server)
        _expire_soon(slow, authz_server, cid)
        fast.provider().resolve  # noqa: B018 - both brokers are open on one store
        authz_server.access_token_lifetime = 3600
        # The slow holder's refresh is held, then refused; meanwhile its lease lapses and the
        # fast one refreshes successfully.
        authz_server.inject_fault("late_invalid_grant", seconds=1.5)
        got: list[str] = []
        thread = threading.Thread(
            target=lambda: got.append(slow.provider().resolve(cid).fields["access_token"].reveal())
        )
        thread.start()
        _wait(lambda: authz_server.count("refresh_token") == 1)
        time.sleep(0.5)
        winner = fast.provider().resolve(cid).fields["access_token"].reveal()
        thread.join(timeout=30)
        assert got == [winner], "the loser uses the winner's token instead of failing"
        assert slow.tokens.status(cid, "default").state == "active"
        assert authz_server.count("refresh_token") == 2
