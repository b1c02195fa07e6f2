"""FTP connection test against a real pyftpdlib server started in the test.

The server (free loopback port, its own thread) knows one user with a password and a temporary
home directory; failed logins answer at once (its anti-brute-force delay is set to 0).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.connectors.failure_endpoints import assert_network_failures, canary, failure, target
from tests.connectors.live_servers import ftp_server

from flowcred.connectors.base import TestTarget
from flowcred.connectors.ftp import FtpTest

pytestmark = pytest.mark.filterwarnings(
    # pyftpdlib still imports asyncore on Python 3.11 (the server side of the test only).
    "ignore:The asyn(core|chat) module is deprecated:DeprecationWarning"
)

USER = "uploader"
PASSWORD = canary("ftp")


@pytest.fixture(scope="module")
def ftp_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with ftp_server(tmp_path_factory.mktemp("ftp-home"), USER, PASSWORD) as port:
        yield port


def ftp(
    port: int, password: str = PASSWORD, host: str = "127.0.0.1", **config: object
) -> TestTarget:
    base: dict[str, object] = {"host": host, "port": port, "username": USER, "tls": False}
    base.update(config)
    return target("ftp", base, password=password)


def test_a_valid_login_prints_the_working_directory(ftp_port: int) -> None:
    message = FtpTest().check(ftp(ftp_port), 5.0)
    assert message == f"FTP login as '{USER}' ok at 127.0.0.1:{ftp_port} (in /; no TLS)"


def test_a_wrong_password_fails_authentication(ftp_port: int) -> None:
    wrong = canary("wrong")
    message = failure(FtpTest(), ftp(ftp_port, wrong))
    assert message == f"authentication failed for user '{USER}': the server answered 530"
    assert wrong not in message and PASSWORD not in message


def test_tls_configured_but_not_offered_never_sends_the_password(ftp_port: int) -> None:
    message = failure(FtpTest(), ftp(ftp_port, tls=True))
    assert message == f"tls is configured but 127.0.0.1:{ftp_port} does not offer AUTH TLS"


def test_wrong_host_closed_port_and_timeout_have_their_own_messages(ftp_port: int) -> None:
    assert_network_failures(FtpTest(), lambda host, port: ftp(port, host=host), PASSWORD)
