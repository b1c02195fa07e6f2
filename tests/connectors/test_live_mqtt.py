"""MQTT connection test against real Mosquitto brokers.

The shared Mosquitto on 127.0.0.1:1883 allows anonymous clients, so it accepts any login and
cannot show a refusal. The set-up starts a private ``mosquitto`` on a free loopback port with
``allow_anonymous false`` and a password file made by ``mosquitto_passwd``, and stops it after.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from tests.conftest import require_service
from tests.connectors.failure_endpoints import (
    assert_network_failures,
    canary,
    failure,
    target,
)
from tests.connectors.live_servers import mosquitto

from flowcred.connectors.base import TestTarget
from flowcred.connectors.mqtt import MqttTest

PASSWORD = canary("mqtt")


@pytest.fixture(scope="module")
def broker_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with mosquitto(tmp_path_factory.mktemp("mosquitto"), "alice", PASSWORD) as port:
        yield port


def mq(host: str, port: int, password: str | None = PASSWORD, **config: object) -> TestTarget:
    base: dict[str, object] = {"host": host, "port": port, "username": "alice"}
    base.update(config)
    return target("mqtt", base, **({"password": password} if password is not None else {}))


def test_a_valid_login_gets_connack_accepted(broker_port: int) -> None:
    message = MqttTest().check(mq("127.0.0.1", broker_port), 5.0)
    assert message == f"CONNACK accepted as 'alice' by 127.0.0.1:{broker_port} (no TLS)"


def test_a_wrong_password_fails_authentication(broker_port: int) -> None:
    wrong = canary("wrong")
    message = failure(MqttTest(), mq("127.0.0.1", broker_port, wrong))
    assert (
        message
        == "authentication failed for user 'alice': the broker answered CONNACK 'Not authorized'"
    )
    assert wrong not in message and PASSWORD not in message


def test_an_anonymous_client_is_refused_by_a_broker_that_needs_a_login(broker_port: int) -> None:
    message = failure(MqttTest(), mq("127.0.0.1", broker_port, None, username=None))
    assert message == "authentication failed: the broker answered CONNACK 'Not authorized'"


def test_the_shared_broker_on_1883_accepts_the_login() -> None:
    try:
        socket.create_connection(("127.0.0.1", 1883), 2).close()
    except OSError as exc:
        require_service(f"Mosquitto not reachable at 127.0.0.1:1883 ({type(exc).__name__})")
    message = MqttTest().check(mq("127.0.0.1", 1883), 5.0)
    assert message == "CONNACK accepted as 'alice' by 127.0.0.1:1883 (no TLS)"


def test_wrong_host_closed_port_and_timeout_have_their_own_messages(broker_port: int) -> None:
    assert_network_failures(MqttTest(), lambda host, port: mq(host, port), PASSWORD)
