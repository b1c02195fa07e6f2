"""OAuth tokens that stay valid by themselves, against the loopback authorization server.

Each test drives a real token endpoint (``tests/oauth_support``) over HTTP and steps the
broker's and the server's clocks together, so several expiries pass in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.oauth_support.server import AuthzServer

from flowcred.audit.log import AuditFilter
from flowcred.broker import Broker, open_broker
from flowcred.clock import ManualClock
from flowcred.errors import CircuitOpen, TokenRefreshFailed
from flowcred.settings import load_settings


class Clocks:
    """The broker's manual clock and the server's offset clock, moved together."""

    def __init__(self, broker_clock: ManualClock, server: AuthzServer) -> None:
        self.broker = broker_clock
        self.server = server

    def advance(self, seconds: float) -> None:
        self.broker.advance(seconds)
        self.server.advance(seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def oauth_broker(database_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Broker]:
    settings = load_settings(
        home=tmp_path / "home",
        database_url=database_url,
        oauth_retry_base_seconds=0.01,
        oauth_retry_max_seconds=0.05,
        oauth_breaker_reset_seconds=30,
    )
    b = open_broker(settings=settings, clock=clock)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def sqlite_oauth_broker(tmp_path: Path, clock: ManualClock) -> Iterator[Broker]:
    """The embedded default only: 200 resolving threads each hold a database connection on a
    cache miss, more than a default PostgreSQL server accepts (max_connections = 100)."""
    b = open_broker(settings=load_settings(home=tmp_path / "home"), clock=clock)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def clocks(clock: ManualClock, authz_server: AuthzServer) -> Clocks:
    return Clocks(clock, authz_server)


def _m2m(broker: Broker, server: AuthzServer, **config: object) -> int:
    server.register_client("m2m-app", "m2m-secret", grant_types=("client_credentials",))
    cred = broker.credentials.create(
        name="Reporting M2M",
        type="oauth2_client_credentials",
        config={"token_url": server.token_url, "client_id": "m2m-app", **config},
        secret={"client_secret": "m2m-secret"},
    )
    return cred.id


def _token(material: object) -> str:
    return material.fields["access_token"].reveal()  # type: ignore[attr-defined]


def test_client_credentials_stay_valid_across_several_expiries(
    oauth_broker: Broker, authz_server: AuthzServer, clocks: Clocks
) -> None:
    authz_server.access_token_lifetime = 600
    cid = _m2m(oauth_broker, authz_server, scopes=["reports:read"])
    provider = oauth_broker.provider()
    seen = []
    for _ in range(4):
        material = provider.resolve(cid)
        token = _token(material)
        assert authz_server.is_valid(token)
        assert material.reveal_headers() == {"Authorization": f"Bearer {token}"}
        assert material.expires_at is not None
        assert (material.expires_at - clocks.broker.now()).total_seconds() >= 60
        assert "client_secret" not in material.fields
        assert material.fields["scopes"] == ["reports:read"]
        seen.append(token)
        clocks.advance(600 - 30)  # inside the 60 s margin: the next resolve refreshes first
    assert len(set(seen)) == 4
    assert authz_server.count("client_credentials") == 4


def _wait_until(check: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_a_stale_token_is_answered_at_once_and_refreshed_once_in_the_background(
    oauth_broker: Broker, authz_server: AuthzServer, clocks: Clocks
) -> None:
    authz_server.access_token_lifetime = 3600
    cid = _m2m(oauth_broker, authz_server)
    provider = oauth_broker.provider()
    first = _token(provider.resolve(cid))
    authz_server.delay = 0.3  # a slow endpoint: no resolve below may wait for it
    clocks.advance(3600 - 60 - 200)  # inside the 5-minute stale window, before the margin
    answers = {_token(provider.resolve(cid)) for _ in range(20)}
    assert answers == {first}, "a stale token is still handed out while the refresh runs"
    assert _wait_until(lambda: authz_server.count("client_credentials") == 2)
    assert _wait_until(lambda: _token(provider.resolve(cid)) != first)
    assert authz_server.count("client_credentials") == 2, "one background refresh, not 20"


def test_a_short_lived_token_is_not_refreshed_the_moment_it_arrives(
    oauth_broker: Broker, authz_server: AuthzServer, clocks: Clocks
) -> None:
    # 100 s tokens, 60 s margin: 40 s usable, so the stale window is 20 s, not 5 minutes.
    authz_server.access_token_lifetime = 100
    cid = _m2m(oauth_broker, authz_server)
    provider = oauth_broker.provider()
    first = _token(provider.resolve(cid))
    clocks.advance(15)
    assert _token(provider.resolve(cid)) == first
    time.sleep(0.2)
    assert authz_server.count("client_credentials") == 1
    clocks.advance(10)  # 25 s: inside the 20 s window before the margin
    assert _token(provider.resolve(cid)) == first
    assert _wait_until(lambda: authz_server.count("client_credentials") == 2)


def test_200_threads_resolving_an_expiring_token_cause_one_token_request(
    sqlite_oauth_broker: Broker, authz_server: AuthzServer, clocks: Clocks
) -> None:
    cid = _m2m(sqlite_oauth_broker, authz_server)
    provider = sqlite_oauth_broker.provider()
    provider.resolve(cid)
    clocks.advance(3600 - 10)  # inside the margin: every resolve must wait for a new token
    authz_server.delay = 0.3
    authz_server.reset_counts()
    barrier = threading.Barrier(200)
    tokens: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait(timeout=30)
        token = _token(provider.resolve(cid))
        with lock:
            tokens.append(token)

    threads = [threading.Thread(target=work) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(tokens) == 200 and len(set(tokens)) == 1
    assert authz_server.count("total") == 1
    assert authz_server.is_valid(tokens[0])


def test_200_asyncio_tasks_resolving_an_expiring_token_cause_one_token_request(
    oauth_broker: Broker, authz_server: AuthzServer, clocks: Clocks
) -> None:
    cid = _m2m(oauth_broker, authz_server)
    provider = oauth_broker.provider()
    provider.resolve(cid)
    clocks.advance(3600 - 10)
    authz_server.delay = 0.3
    authz_server.reset_counts()

    async def storm() -> list[str]:
        materials = await asyncio.gather(*(provider.aresolve(cid) for _ in range(200)))
        return [_token(m) for m in materials]

    tokens = asyncio.run(asyncio.wait_for(storm(), timeout=60))
    assert len(set(tokens)) == 1
    assert authz_server.count("total") == 1


def test_a_refused_client_is_an_error_after_one_attempt_and_no_retry_loop(
    oauth_broker: Broker, authz_server: AuthzServer
) -> None:
    cid = _m2m(oauth_broker, authz_server)
    authz_server.inject_fault("invalid_client", count=10)
    provider = oauth_broker.provider()
    with pytest.raises(TokenRefreshFailed) as caught:
        provider.resolve(cid)
    assert caught.value.oauth_error == "invalid_client" and caught.value.permanent
    with pytest.raises(TokenRefreshFailed):
        provider.resolve(cid)
    assert authz_server.count("total") == 1, "a refused client is not asked again"
    assert oauth_broker.tokens.status(cid, "default").state == "error"
    # Fixing the client secret (a new version) lets the next resolve try again.
    authz_server.clear_faults()
    oauth_broker.credentials.rotate(cid, secret={"client_secret": "m2m-secret"})
    assert authz_server.is_valid(_token(provider.resolve(cid)))
    assert oauth_broker.tokens.status(cid, "default").state == "active"


def test_transient_failures_are_retried_a_bounded_number_of_times_then_the_breaker_opens(
    oauth_broker: Broker, authz_server: AuthzServer, clocks: Clocks
) -> None:
    cid = _m2m(oauth_broker, authz_server)
    provider = oauth_broker.provider()
    authz_server.inject_fault("5xx", count=2)
    assert authz_server.is_valid(_token(provider.resolve(cid)))  # two retries, then success
    assert authz_server.count("total") == 3
    clocks.advance(3600)
    authz_server.reset_counts()
    authz_server.inject_fault("5xx", count=100)
    with pytest.raises(TokenRefreshFailed) as caught:
        provider.resolve(cid)
    assert not caught.value.permanent
    assert authz_server.count("total") == 5, "5 attempts in all"
    with pytest.raises(CircuitOpen):
        provider.resolve(cid)
    assert authz_server.count("total") == 5, "an open breaker sends nothing"
    authz_server.clear_faults()
    clocks.advance(31)  # half-open: one probe, which succeeds and closes the breaker
    assert authz_server.is_valid(_token(provider.resolve(cid)))
    events = [
        e.action for e in oauth_broker.audit.list(AuditFilter(event_type="token"), limit=1000)
    ]
    assert "breaker_opened" in events and "refresh_failed" in events and "refreshed" in events


def test_429_retry_after_is_honoured(oauth_broker: Broker, authz_server: AuthzServer) -> None:
    cid = _m2m(oauth_broker, authz_server)
    authz_server.inject_fault("429", count=1, retry_after=0)
    assert authz_server.is_valid(_token(oauth_broker.provider().resolve(cid)))
    assert authz_server.count("total") == 2


def test_a_token_without_expires_in_does_not_expire(
    oauth_broker: Broker, authz_server: AuthzServer, clocks: Clocks
) -> None:
    authz_server.access_token_lifetime = None
    cid = _m2m(oauth_broker, authz_server)
    provider = oauth_broker.provider()
    first = provider.resolve(cid)
    assert first.expires_at is None
    clocks.advance(30 * 86400)
    assert _token(provider.resolve(cid)) == _token(first)
    assert authz_server.count("total") == 1


def test_oidc_user_uses_the_password_grant_then_its_refresh_token(
    oauth_broker: Broker, authz_server: AuthzServer, clocks: Clocks
) -> None:
    authz_server.register_client("portal", "portal-secret")
    cred = oauth_broker.credentials.create(
        name="Portal user",
        type="oidc_user",
        config={"issuer": authz_server.issuer, "client_id": "portal", "username": "alice"},
        secret={"client_secret": "portal-secret", "password": "wonderland"},
    )
    provider = oauth_broker.provider()
    tokens = []
    for _ in range(3):
        token = _token(provider.resolve(cred.id))
        assert authz_server.is_valid(token)
        tokens.append(token)
        clocks.advance(3600 - 30)
    assert len(set(tokens)) == 3
    assert authz_server.count("password") == 1, "the held refresh token is tried first"
    assert authz_server.count("refresh_token") == 2
    # A refused refresh token falls back to the password grant (no person needed).
    authz_server.inject_fault("invalid_grant")
    assert authz_server.is_valid(_token(provider.resolve(cred.id)))
    assert authz_server.count("password") == 2


def test_a_service_account_key_is_exchanged_for_tokens_across_expiries(
    oauth_broker: Broker, authz_server: AuthzServer, clocks: Clocks
) -> None:
    key_file = authz_server.register_service_account()
    cred = oauth_broker.credentials.create(
        name="BigQuery loader",
        type="google_service_account",
        config={"scopes": ["https://www.googleapis.com/auth/bigquery"]},
        secret={"service_account_json": json.dumps(key_file)},
    )
    provider = oauth_broker.provider()
    seen = set()
    for _ in range(3):
        material = provider.resolve(cred.id)
        token = _token(material)
        assert authz_server.is_valid(token)
        assert "service_account_json" not in material.fields
        seen.add(token)
        clocks.advance(3600 - 30)
    assert len(seen) == 3
    assert authz_server.count("urn:ietf:params:oauth:grant-type:jwt-bearer") == 3


def test_no_refresh_token_client_secret_or_key_leaves_flowcred(
    oauth_broker: Broker,
    authz_server: AuthzServer,
    clocks: Clocks,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Canaries: the client secret, every access token but through resolve, and every refresh
    token never appear in a log line, an audit event, a repr or the database file."""
    caplog.set_level("DEBUG")
    secret = "canary-client-secret-9c41d7e2"
    authz_server.register_client("canary-app", secret)
    cred = oauth_broker.credentials.create(
        name="Canary user",
        type="oidc_user",
        config={"issuer": authz_server.issuer, "client_id": "canary-app", "username": "alice"},
        secret={"client_secret": secret, "password": "wonderland"},
    )
    provider = oauth_broker.provider()
    materials = []
    for _ in range(2):
        materials.append(provider.resolve(cred.id))
        clocks.advance(3600 - 30)
    stored = oauth_broker.tokens._store.read(cred.id)
    assert stored is not None and stored.tokens is not None
    refresh = stored.tokens.refresh_token
    assert refresh
    tokens = [_token(m) for m in materials]
    for material in materials:
        assert refresh not in repr(material.to_dict(reveal=True))
        assert secret not in repr(material.to_dict(reveal=True))
        assert tokens[0] not in repr(material) and "[secure]" in repr(material.headers)
    assert refresh not in repr(stored) and refresh not in repr(stored.tokens)
    out = io.StringIO()
    assert oauth_broker.audit.export_jsonl(out) > 0
    text = out.getvalue() + "\n" + caplog.text
    for value in (secret, refresh, *tokens):
        assert value not in text
    db = Path(oauth_broker.settings.resolved_database_url.removeprefix("sqlite:///"))
    if db.exists():
        raw = db.read_bytes() + b"".join(p.read_bytes() for p in db.parent.glob("*.db-wal"))
        for value in (secret, refresh, *tokens):
            assert value.encode() not in raw


def test_expires_in_zero_means_the_token_does_not_expire(
    oauth_broker: Broker, authz_server: AuthzServer, clocks: Clocks
) -> None:
    authz_server.access_token_lifetime = None
    authz_server.extra_fields = {"expires_in": 0}  # Mailchimp's way of saying "never"
    cid = _m2m(oauth_broker, authz_server)
    provider = oauth_broker.provider()
    first = provider.resolve(cid)
    assert first.expires_at is None
    clocks.advance(7 * 86400)
    assert _token(provider.resolve(cid)) == _token(first)
    assert authz_server.count("total") == 1
