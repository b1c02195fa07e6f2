"""RabbitMQ connection test against the real broker on 127.0.0.1:5672.

``guest``/``guest`` may log in over loopback, so no user is created: a wrong password for
``guest`` is a real refusal by the broker.
"""

from __future__ import annotations

import socket

import pytest
from tests.conftest import require_service
from tests.connectors.failure_endpoints import assert_network_failures, canary, failure, target

from flowcred.catalog import load_catalog
from flowcred.connectors.amqp import AmqpTest
from flowcred.connectors.base import TestTarget


@pytest.fixture(scope="module")
def broker() -> None:
    try:
        socket.create_connection(("127.0.0.1", 5672), 2).close()
    except OSError as exc:
        require_service(f"RabbitMQ not reachable at 127.0.0.1:5672 ({type(exc).__name__})")


def mq(
    host: str = "127.0.0.1", port: int = 5672, password: str = "guest", **config: object
) -> TestTarget:
    base: dict[str, object] = {
        "host": host,
        "port": port,
        "username": "guest",
        "virtual_host": "/",
    }
    base.update(config)
    return target("rabbitmq", base, password=password)


def test_the_rabbitmq_type_uses_the_amqp_test() -> None:
    assert load_catalog().get("rabbitmq").test == {"kind": "amqp"}


def test_a_valid_login_opens_the_vhost(broker: None) -> None:
    assert AmqpTest().check(mq(), 5.0) == "AMQP login ok as 'guest' on virtual host '/' (no TLS)"


def test_a_wrong_password_fails_authentication(broker: None) -> None:
    wrong = canary("amqp")
    message = failure(AmqpTest(), mq(password=wrong))
    assert message == (
        "authentication failed for user 'guest': the broker refused the login (ACCESS_REFUSED)"
    )
    assert wrong not in message


def test_an_unknown_vhost_is_named(broker: None) -> None:
    message = failure(AmqpTest(), mq(virtual_host="fc-no-such-vhost"))
    assert message == (
        "user 'guest' may not open virtual host 'fc-no-such-vhost' (or it does not exist)"
    )


def test_wrong_host_closed_port_and_timeout_have_their_own_messages(broker: None) -> None:
    planted = canary("amqp")
    assert_network_failures(AmqpTest(), lambda host, port: mq(host, port, planted), planted)
