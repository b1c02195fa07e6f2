"""SFTP connection test against a real asyncssh SSH/SFTP server started in the test.

The server (on a free loopback port, on its own event loop thread) accepts one user by password
or by one authorised public key, and serves SFTP chrooted to a temporary directory.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.connectors.failure_endpoints import assert_network_failures, canary, failure, target
from tests.connectors.live_servers import SshServer, ssh_server

from flowcred.connectors.base import TestTarget
from flowcred.connectors.sftp import SftpTest

USER = "deploy"
PASSWORD = canary("sftp")
PASSPHRASE = canary("passphrase")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with ssh_server(tmp_path_factory.mktemp("sftp-root"), USER, PASSWORD, PASSPHRASE) as running:
        yield running


def ssh(port: int, host: str = "127.0.0.1", host_key: str = "", **secret: str) -> TestTarget:
    config: dict[str, object] = {"host": host, "port": port, "username": USER}
    if host_key:
        config["host_key"] = host_key
    return target("sftp", config, **secret)


def test_password_login_opens_sftp(server: SshServer) -> None:
    message = SftpTest().check(ssh(server.port, password=PASSWORD), 5.0)
    assert message == (
        f"SFTP login as '{USER}' by password ok at 127.0.0.1:{server.port} "
        "(home /; host key not checked)"
    )


def test_key_login_with_the_host_key_checked(server: SshServer) -> None:
    tgt = ssh(server.port, host_key=server.host_key, private_key=server.client_key)
    message = SftpTest().check(tgt, 5.0)
    assert f"by key ok at 127.0.0.1:{server.port}" in message
    assert message.endswith("host key checked)")


def test_an_encrypted_key_with_its_passphrase_logs_in(server: SshServer) -> None:
    tgt = ssh(server.port, private_key=server.encrypted_key, private_key_passphrase=PASSPHRASE)
    assert "by key ok" in SftpTest().check(tgt, 5.0)


def test_a_wrong_passphrase_is_reported_before_connecting(server: SshServer) -> None:
    wrong = canary("wrong")
    tgt = ssh(server.port, private_key=server.encrypted_key, private_key_passphrase=wrong)
    message = failure(SftpTest(), tgt)
    assert message.startswith("the private key cannot be read")
    assert wrong not in message and PASSPHRASE not in message


def test_a_wrong_password_fails_authentication(server: SshServer) -> None:
    wrong = canary("wrong")
    message = failure(SftpTest(), ssh(server.port, password=wrong))
    assert message == f"authentication failed for user '{USER}': the server refused the password"
    assert wrong not in message and PASSWORD not in message


def test_an_unknown_key_fails_authentication(server: SshServer) -> None:
    message = failure(SftpTest(), ssh(server.port, private_key=server.stranger_key))
    assert message == f"authentication failed for user '{USER}': the server refused the key"


def test_a_different_host_key_is_refused(server: SshServer) -> None:
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    message = failure(SftpTest(), ssh(server.port, host_key=other, password=PASSWORD))
    assert message == (
        f"the host key of 127.0.0.1:{server.port} does not match the configured host_key"
    )


def test_wrong_host_closed_port_and_timeout_have_their_own_messages(server: SshServer) -> None:
    assert_network_failures(
        SftpTest(), lambda host, port: ssh(port, host=host, password=PASSWORD), PASSWORD
    )
