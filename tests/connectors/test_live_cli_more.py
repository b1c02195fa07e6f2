"""``flowcred credentials test REF`` end to end for NATS, MQTT, S3, SMTP, SFTP and FTP.

The companion of ``test_live_through_runner.py`` (Redis, MariaDB, PostgreSQL, RabbitMQ): issue
#11 is done when the CLI test passes against each live server and fails clearly with a wrong
password. The servers are the private ones of ``live_servers.py`` (the shared NATS and
Mosquitto allow anonymous logins, so they cannot refuse), each accepting one canary password.
Every credential is added with the CLI (a composite secret as JSON on stdin), tested with the
CLI, and checked: exit 0 and the family's success message with the right password; exit 1, the
family's refusal and status "error" with a wrong one; neither password in any output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from tests.cli._helpers import cli
from tests.connectors.failure_endpoints import canary
from tests.connectors.live_servers import (
    ftp_server,
    mosquitto,
    moto_s3,
    nats_servers,
    smtp_servers,
    ssh_server,
)

pytestmark = [
    # aiosmtpd warns when AUTH is allowed without TLS: the plain SMTP server does that on purpose.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
    # pyftpdlib still imports asyncore on Python 3.11 (the server side of the test only).
    pytest.mark.filterwarnings(
        "ignore:The asyn(core|chat) module is deprecated:DeprecationWarning"
    ),
]

BUCKET = "flowcred-cli-e2e"


@dataclass(frozen=True)
class Case:
    """One family's credential, as the CLI stores it, and what its test must print."""

    type: str
    config: dict[str, str]
    secret: Callable[[str], str]  # password -> the text piped to --secret-stdin
    good: str  # the password the server accepts
    ok: str  # the success message, exactly
    refused: str  # the refusal message for a wrong password, exactly
    env: dict[str, str] = field(default_factory=dict)  # environment the test needs


def _plain(password: str) -> str:
    return password


def _json_field(name: str) -> Callable[[str], str]:
    def secret(password: str) -> str:
        return json.dumps({name: password})

    return secret


@pytest.fixture(scope="module")
def nats_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    password = canary("cli-nats")
    folder = tmp_path_factory.mktemp("cli-nats")
    with nats_servers(folder, "alice", password, canary("cli-nats-token")) as servers:
        port = servers.users_port
        yield Case(
            "nats",
            {"servers": f"nats://127.0.0.1:{port}", "username": "alice"},
            _json_field("password"),
            password,
            # The server's version sits between these two parts; it is checked separately.
            f"at 127.0.0.1:{port} with user 'alice'; PING ok",
            "authentication failed for user 'alice': the server refused the password",
        )


@pytest.fixture(scope="module")
def mqtt_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    password = canary("cli-mqtt")
    with mosquitto(tmp_path_factory.mktemp("cli-mqtt"), "alice", password) as port:
        yield Case(
            "mqtt",
            {"host": "127.0.0.1", "port": str(port), "username": "alice"},
            _plain,
            password,
            f"CONNACK accepted as 'alice' by 127.0.0.1:{port} (no TLS)",
            "authentication failed for user 'alice': the broker answered CONNACK 'Not authorized'",
        )


@pytest.fixture(scope="module")
def s3_case() -> Iterator[Case]:
    # moto makes the secret access key itself; the wrong one is a canary.
    with moto_s3(BUCKET) as moto:
        yield Case(
            "aws_s3",
            {
                "endpoint_url": moto.url,
                "region": "us-east-1",
                "access_key_id": moto.key_id,
                "bucket": BUCKET,
            },
            _json_field("secret_access_key"),
            moto.secret,
            f"access key {moto.key_id} may use bucket '{BUCKET}' at 127.0.0.1 (HeadBucket ok)",
            "authentication failed: the secret access key does not match (SignatureDoesNotMatch)",
        )


@pytest.fixture(scope="module")
def smtp_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    user, password = "mailer@example.test", canary("cli-smtp")
    with smtp_servers(tmp_path_factory.mktemp("cli-smtp"), user, password) as servers:
        port = servers.tls_port
        yield Case(
            "smtp",
            {"host": "127.0.0.1", "port": str(port), "username": user, "starttls": "true"},
            _plain,
            password,
            f"logged in to 127.0.0.1:{port} as '{user}' with AUTH PLAIN (STARTTLS)",
            f"authentication failed for user '{user}': the server answered 535",
            # The STARTTLS certificate is self-signed: trust it the way an operator would.
            {"SSL_CERT_FILE": str(servers.ca_file)},
        )


@pytest.fixture(scope="module")
def sftp_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    password = canary("cli-sftp")
    root = tmp_path_factory.mktemp("cli-sftp")
    with ssh_server(root, "deploy", password, canary("cli-sftp-passphrase")) as server:
        yield Case(
            "sftp",
            {
                "host": "127.0.0.1",
                "port": str(server.port),
                "username": "deploy",
                "host_key": server.host_key,
            },
            _json_field("password"),
            password,
            f"SFTP login as 'deploy' by password ok at 127.0.0.1:{server.port} "
            "(home /; host key checked)",
            "authentication failed for user 'deploy': the server refused the password",
        )


@pytest.fixture(scope="module")
def ftp_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    password = canary("cli-ftp")
    with ftp_server(tmp_path_factory.mktemp("cli-ftp"), "uploader", password) as port:
        yield Case(
            "ftp",
            {"host": "127.0.0.1", "port": str(port), "username": "uploader", "tls": "false"},
            _plain,
            password,
            f"FTP login as 'uploader' ok at 127.0.0.1:{port} (in /; no TLS)",
            "authentication failed for user 'uploader': the server answered 530",
        )


CASES = ["nats_case", "mqtt_case", "s3_case", "smtp_case", "sftp_case", "ftp_case"]


def _add(name: str, case: Case, secret: str) -> str:
    sets = [arg for key, value in case.config.items() for arg in ("--set", f"{key}={value}")]
    code, out, err = cli(
        "credentials",
        "add",
        "--type",
        case.type,
        "--name",
        name,
        *sets,
        "--secret-stdin",
        input=secret,
    )
    assert code == 0, out + err
    return out + err


def _status(name: str) -> str:
    code, out, err = cli("credentials", "show", name, "--json")
    assert code == 0, out + err
    status: str = json.loads(out)["status"]
    return status


@pytest.mark.parametrize("case_name", CASES)
def test_credentials_test_passes_and_fails_clearly(
    case_name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    case: Case = request.getfixturevalue(case_name)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    wrong = canary("cli-wrong")
    outputs = [_add("good", case, case.secret(case.good)), _add("bad", case, case.secret(wrong))]

    code, out, err = cli("credentials", "test", "good")
    outputs.append(out + err)
    assert code == 0, out + err
    assert out.strip().startswith("good: ") and out.strip().endswith(case.ok), out
    if case.type == "nats":
        assert out.startswith("good: connected to NATS 2."), out
    assert _status("good") == "active"

    code, out, err = cli("credentials", "test", "bad")
    outputs.append(out + err)
    assert code == 1, out + err
    assert out.strip() == f"bad: {case.refused}", out + err
    assert _status("bad") == "error"

    for ref in ("good", "bad"):
        outputs.append("".join(cli("credentials", "show", ref, "--json")[1:]))
    outputs.append("".join(cli("credentials", "list", "--json")[1:]))
    outputs.append("".join(cli("credentials", "test", "--all", "--json")[1:]))
    for text in outputs:
        assert case.good not in text and wrong not in text
