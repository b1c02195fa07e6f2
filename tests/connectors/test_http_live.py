"""The ``http`` family against a loopback server that checks the credential as a real API does:
an API key in a header, a query parameter or a cookie, a bearer token, basic auth."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.connectors.loopback_http import Loopback, loopback_server

from flowcred.catalog import default_catalog
from flowcred.connectors.base import TestResult, TestTarget
from flowcred.connectors.destinations import DestinationPolicy
from flowcred.connectors.runner import run_test
from flowcred.errors import InvalidCredential
from flowcred.redaction import Secret


@pytest.fixture
def server() -> Iterator[Loopback]:
    with loopback_server() as state:
        yield state


def target(type_name: str, config: dict[str, Any], secret: dict[str, str]) -> TestTarget:
    clean_config, clean_secret = default_catalog().get(type_name).validate(config, secret)
    return TestTarget(
        type=type_name,
        config=clean_config,
        secret={k: Secret(v) for k, v in clean_secret.items()},
    )


def api_key(url: str, key: str, location: str, name: str = "X-Shop-Key") -> TestTarget:
    return target(
        "api_key",
        {"test_url": url, "location": location, "key_name": name},
        {"api_key": key},
    )


@pytest.mark.parametrize("location", ["header", "query", "cookie"])
def test_api_key_in_each_location_is_accepted(server: Loopback, location: str) -> None:
    url = f"{server.url}/{location}?name=X-Shop-Key&want=shop-key-12345"
    result = run_test(api_key(url, "shop-key-12345", location), timeout=5)
    assert result.ok, result.message
    assert result.message == "credential accepted"
    assert 0 < result.latency_ms < 5000


@pytest.mark.parametrize("location", ["header", "query", "cookie"])
def test_wrong_api_key_fails_clearly(server: Loopback, location: str) -> None:
    url = f"{server.url}/{location}?name=X-Shop-Key&want=shop-key-12345"
    result = run_test(api_key(url, "wrong-key-98765", location), timeout=5)
    assert not result.ok
    assert "rejected with HTTP 401" in result.message
    assert "authentication failed" in result.message
    assert "wrong-key-98765" not in result.message


def test_bearer_token(server: Loopback) -> None:
    good = target(
        "bearer_token",
        {"test_url": f"{server.url}/bearer?want=jwt-abc-123"},
        {"token": "jwt-abc-123"},
    )
    bad = target(
        "bearer_token",
        {"test_url": f"{server.url}/bearer?want=jwt-abc-123"},
        {"token": "jwt-stale-999"},
    )
    assert run_test(good, timeout=5).ok
    refused = run_test(bad, timeout=5)
    assert not refused.ok and "HTTP 401" in refused.message
    assert server.seen[-1]["headers"]["Authorization"] == "Bearer jwt-stale-999"


def test_basic_auth(server: Loopback) -> None:
    url = f"{server.url}/basic?user=svc-user&want=pa55-word-1"
    good = target(
        "basic_auth", {"test_url": url, "username": "svc-user"}, {"password": "pa55-word-1"}
    )
    bad = target(
        "basic_auth", {"test_url": url, "username": "svc-user"}, {"password": "nope-nope-2"}
    )
    assert run_test(good, timeout=5).ok
    assert "HTTP 401" in run_test(bad, timeout=5).message


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_closed_port_says_connection_refused() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/check"
    result = run_test(api_key(url, "shop-key-12345", "header"), timeout=5)
    assert not result.ok
    assert result.message.startswith("connection refused by 127.0.0.1:")


def test_unknown_host_says_host_not_found() -> None:
    def no_such_host(host: str, port: int | None) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # An injected resolver: the answer must not depend on how fast this machine's DNS fails.
    policy = DestinationPolicy(resolver=no_such_host)
    url = "http://no-such-host.invalid/check"
    result = run_test(api_key(url, "shop-key-12345", "header"), timeout=5, policy=policy)
    assert not result.ok
    assert result.message == "host not found: no-such-host.invalid"


def test_a_server_that_never_answers_times_out(server: Loopback) -> None:
    started = time.monotonic()
    result: TestResult = run_test(
        api_key(f"{server.url}/hang", "shop-key-12345", "header"), timeout=0.5
    )
    assert not result.ok
    assert result.message == "timed out after 0.5 s"
    assert time.monotonic() - started < 2


def test_without_test_url_there_is_nothing_to_test() -> None:
    with pytest.raises(InvalidCredential) as raised:
        run_test(target("api_key", {}, {"api_key": "shop-key-12345"}), timeout=5)
    assert "config.test_url" in str(raised.value)


def test_a_server_echoing_the_key_in_its_answer_does_not_leak_it(server: Loopback) -> None:
    # The family reports the status, not the body; even so the message is scrubbed.
    result = run_test(api_key(f"{server.url}/echo", "echoed-key-4242", "query"), timeout=5)
    assert not result.ok and "echoed-key-4242" not in result.message
