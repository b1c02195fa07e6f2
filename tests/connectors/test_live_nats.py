"""NATS connection test against real nats-server processes started by the set-up.

The shared server on 127.0.0.1:4222 runs without any authorization, so it accepts every
credential and cannot show a refusal. The set-up starts two private ``nats-server`` processes
on free loopback ports: one with a user/password and an NKey user, one with a token (NATS
allows only one of users or token per server), and stops them afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from tests.conftest import require_service
from tests.connectors.failure_endpoints import (
    assert_network_failures,
    canary,
    closed_port,
    failure,
    target,
)
from tests.connectors.live_servers import NatsServers, nats_servers

from flowcred.connectors.base import TestTarget
from flowcred.connectors.nats import NatsTest

PASSWORD = canary("nats-pw")
TOKEN = canary("nats-token")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServers]:
    with nats_servers(tmp_path_factory.mktemp("nats"), "alice", PASSWORD, TOKEN) as running:
        yield running


def nt(servers: str, **secret: str) -> TestTarget:
    config: dict[str, object] = {"servers": [servers]}
    if "password" in secret:
        config["username"] = secret.pop("username", "alice")
    return target("nats", config, **secret)


def test_user_and_password_are_accepted(servers: NatsServers) -> None:
    url = f"nats://127.0.0.1:{servers.users_port}"
    message = NatsTest().check(nt(url, password=PASSWORD), 5.0)
    assert message.startswith("connected to NATS 2.")
    assert message.endswith(f"at 127.0.0.1:{servers.users_port} with user 'alice'; PING ok")


def test_a_token_is_accepted(servers: NatsServers) -> None:
    message = NatsTest().check(nt(f"nats://127.0.0.1:{servers.token_port}", token=TOKEN), 5.0)
    assert message.endswith("with token; PING ok")


def test_an_nkey_seed_is_accepted(servers: NatsServers) -> None:
    url = f"nats://127.0.0.1:{servers.users_port}"
    message = NatsTest().check(nt(url, nkey_seed=servers.nkey_seed), 5.0)
    assert message.endswith("with NKey; PING ok")


def test_a_wrong_password_fails_authentication(servers: NatsServers) -> None:
    wrong = canary("wrong")
    message = failure(NatsTest(), nt(f"nats://127.0.0.1:{servers.users_port}", password=wrong))
    assert message == "authentication failed for user 'alice': the server refused the password"
    assert wrong not in message and PASSWORD not in message


def test_a_wrong_token_fails_authentication(servers: NatsServers) -> None:
    wrong = canary("wrong")
    message = failure(NatsTest(), nt(f"nats://127.0.0.1:{servers.token_port}", token=wrong))
    assert message == "authentication failed: the server refused the token"
    assert wrong not in message


def test_an_nkey_the_server_does_not_know_fails_authentication(servers: NatsServers) -> None:
    import nkeys

    stranger = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()
    url = f"nats://127.0.0.1:{servers.users_port}"
    message = failure(NatsTest(), nt(url, nkey_seed=stranger))
    assert message == "authentication failed: the server refused the NKey"
    assert stranger not in message


def test_the_second_server_is_tried_when_the_first_is_down(servers: NatsServers) -> None:
    urls = f"nats://127.0.0.1:{closed_port()}, nats://127.0.0.1:{servers.token_port}"
    tgt = target("nats", {"servers": urls}, token=TOKEN)
    assert NatsTest().check(tgt, 5.0).endswith("with token; PING ok")


def test_wrong_host_closed_port_and_timeout_have_their_own_messages(servers: NatsServers) -> None:
    assert_network_failures(
        NatsTest(), lambda host, port: nt(f"nats://{host}:{port}", token=TOKEN), TOKEN
    )


def test_the_shared_server_on_4222_answers() -> None:
    # It has no authorization configured, so any credential is accepted there.
    import socket

    try:
        socket.create_connection(("127.0.0.1", 4222), 2).close()
    except OSError as exc:
        require_service(f"NATS not reachable at 127.0.0.1:4222 ({type(exc).__name__})")
    message = NatsTest().check(nt("nats://127.0.0.1:4222", token=TOKEN), 5.0)
    assert message.endswith("at 127.0.0.1:4222 with token; PING ok")


def test_a_metadata_address_in_the_server_list_is_refused_by_the_runner(
    servers: NatsServers,
) -> None:
    from flowcred.connectors.runner import run_test

    urls = [f"nats://127.0.0.1:{servers.token_port}", "nats://169.254.169.254:4222"]
    # The first URL would succeed, but a forbidden one anywhere in the list refuses the test.
    result = run_test(target("nats", {"servers": urls}, token=TOKEN), timeout=3.0)
    assert not result.ok
    assert "169.254.169.254" in result.message and "timed out" not in result.message
