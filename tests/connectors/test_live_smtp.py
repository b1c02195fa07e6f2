"""SMTP connection test against real aiosmtpd servers started in the test, with AUTH.

Two servers on free loopback ports: one offers STARTTLS (a certificate for 127.0.0.1 made here)
and refuses AUTH before it; one has no TLS and offers only AUTH LOGIN, so both LOGIN and PLAIN
are exercised. Their authenticator accepts exactly one user name and password.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.connectors.failure_endpoints import (
    assert_network_failures,
    canary,
    failure,
    free_port,
    target,
)

from flowcred.connectors.base import TestTarget
from flowcred.connectors.smtp import SmtpTest

pytestmark = pytest.mark.filterwarnings(
    # aiosmtpd warns when AUTH is allowed without TLS: the plain server does that on purpose.
    "ignore:Requiring AUTH while not requiring TLS:UserWarning"
)

USER = "mailer@example.test"
PASSWORD = canary("smtp")


def _certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _authenticator(
    _server: Any, _session: Any, _envelope: Any, _mechanism: str, auth_data: Any
) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


class _Sink:
    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        return "250 OK"


@dataclass(frozen=True)
class Servers:
    tls_port: int
    plain_port: int
    ca_file: Path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    from aiosmtpd.controller import Controller

    cert, key = _certificate(tmp_path_factory.mktemp("smtp"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    tls = Controller(
        _Sink(),
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_authenticator,
        auth_require_tls=True,
        tls_context=context,
        require_starttls=True,
    )
    plain = Controller(
        _Sink(),
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_authenticator,
        auth_require_tls=False,
        auth_exclude_mechanism=["PLAIN"],
    )
    tls.start()
    plain.start()
    try:
        yield Servers(tls.port, plain.port, cert)
    finally:
        tls.stop()
        plain.stop()


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
