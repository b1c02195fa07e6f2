"""MQTT connection test against real Mosquitto brokers.

The shared Mosquitto on 127.0.0.1:1883 allows anonymous clients, so it accepts any login and
cannot show a refusal. The set-up starts a private ``mosquitto`` on a free loopback port with
``allow_anonymous false`` and a password file made by ``mosquitto_passwd``, and stops it after.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import require_service
from tests.connectors.failure_endpoints import (
    assert_network_failures,
    canary,
    failure,
    free_port,
    target,
    wait_for_port,
)

from flowcred.connectors.base import TestTarget
from flowcred.connectors.mqtt import MqttTest

PASSWORD = canary("mqtt")


@pytest.fixture(scope="module")
def broker_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        require_service("mosquitto / mosquitto_passwd binaries not found")
    folder: Path = tmp_path_factory.mktemp("mosquitto")
    passwords = folder / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "alice", PASSWORD],
        check=True,
        capture_output=True,
        timeout=10,
    )
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwords}\npersistence false\n"
        # Started as root, mosquitto drops to its own user, who cannot read pytest's tmp dir.
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    process = subprocess.Popen(
        ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=5)


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
