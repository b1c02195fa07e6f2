"""SMTP connection test against real aiosmtpd servers started in the test, with AUTH.

Two servers on free loopback ports: one offers STARTTLS (a certificate for 127.0.0.1 made here)
and refuses AUTH before it; one has no TLS and offers only AUTH LOGIN, so both LOGIN and PLAIN
are exercised. Their authenticator accepts exactly one user name and password.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.connectors.failure_endpoints import (
    assert_network_failures,
    canary,
    failure,
    target,
)
from tests.connectors.live_servers import SmtpServers as Servers
from tests.connectors.live_servers import smtp_servers

from flowcred.connectors.base import TestTarget
from flowcred.connectors.smtp import SmtpTest

pytestmark = pytest.mark.filterwarnings(
    # aiosmtpd warns when AUTH is allowed without TLS: the plain server does that on purpose.
    "ignore:Requiring AUTH while not requiring TLS:UserWarning"
)

USER = "mailer@example.test"
PASSWORD = canary("smtp")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with smtp_servers(tmp_path_factory.mktemp("smtp"), USER, PASSWORD) as running:
        yield running


def mail(
    port: int, password: str = PASSWORD, host: str = "127.0.0.1", **config: object
) -> TestTarget:
    base: dict[str, object] = {"host": host, "port": port, "username": USER, "starttls": True}
    base.update(config)
    return target("smtp", base, password=password)


@pytest.fixture
def trusted(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> Servers:
    monkeypatch.setenv("SSL_CERT_FILE", str(servers.ca_file))
    return servers


def test_starttls_then_auth_plain_logs_in(trusted: Servers) -> None:
    message = SmtpTest().check(mail(trusted.tls_port), 5.0)
    assert message == (
        f"logged in to 127.0.0.1:{trusted.tls_port} as '{USER}' with AUTH PLAIN (STARTTLS)"
    )


def test_a_wrong_password_fails_authentication(trusted: Servers) -> None:
    wrong = canary("wrong")
    message = failure(SmtpTest(), mail(trusted.tls_port, wrong))
    assert message == f"authentication failed for user '{USER}': the server answered 535"
    assert wrong not in message and PASSWORD not in message


def test_an_untrusted_certificate_stops_the_test_before_auth(servers: Servers) -> None:
    message = failure(SmtpTest(), mail(servers.tls_port))
    assert message.startswith(f"the TLS certificate of 127.0.0.1:{servers.tls_port} is not trusted")


def test_auth_login_without_tls_when_starttls_is_off(servers: Servers) -> None:
    message = SmtpTest().check(mail(servers.plain_port, starttls=False), 5.0)
    assert message.endswith("with AUTH LOGIN (no TLS)")
    wrong = failure(SmtpTest(), mail(servers.plain_port, "nope", starttls=False))
    assert wrong.startswith("authentication failed for user")


def test_starttls_configured_but_not_offered_refuses_to_send_the_password(
    servers: Servers,
) -> None:
    message = failure(SmtpTest(), mail(servers.plain_port))
    assert message == (
        f"starttls is configured but 127.0.0.1:{servers.plain_port} does not offer STARTTLS"
    )


def test_wrong_host_closed_port_and_timeout_have_their_own_messages(servers: Servers) -> None:
    assert_network_failures(SmtpTest(), lambda host, port: mail(port, host=host), PASSWORD)
