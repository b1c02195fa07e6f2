"""The live families end to end: through ``run_test`` and ``flowcred credentials test REF``.

Against the shared servers on this machine: Redis (an ACL user made here), RabbitMQ
(guest/guest on loopback), MariaDB (a user made here) and PostgreSQL (trust on loopback, so
its refusal is a role without LOGIN). Each credential is stored with the CLI, tested with the
CLI, and must pass with the right password and fail clearly, with status Error, with a wrong one.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from tests.cli._helpers import cli
from tests.conftest import PG_ADMIN_DSN, require_service
from tests.connectors.failure_endpoints import canary, target

from flowcred.connectors.runner import run_test

SUFFIX = secrets.token_hex(3)
PASSWORD = canary("e2e")


@dataclass(frozen=True)
class Case:
    type: str
    config: dict[str, str]
    good: str  # the password that works
    bad: str  # a credential that is refused
    refused: str  # the start of the refusal message
    bad_config: dict[str, str] | None = None  # config of the refused credential, if it differs


def _reachable(port: int, what: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), 2).close()
    except OSError as exc:
        require_service(f"{what} not reachable at 127.0.0.1:{port} ({type(exc).__name__})")


@pytest.fixture(scope="module")
def redis_case() -> Iterator[Case]:
    _reachable(6379, "Redis")
    import redis

    admin = redis.Redis(host="127.0.0.1", port=6379)
    user = f"fc_e2e_{SUFFIX}"
    admin.execute_command("ACL", "SETUSER", user, "on", f">{PASSWORD}", "+ping")
    try:
        yield Case(
            "redis",
            {"host": "127.0.0.1", "username": user},
            PASSWORD,
            canary("bad"),
            f"authentication failed for user '{user}'",
        )
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


@pytest.fixture(scope="module")
def mysql_case() -> Iterator[Case]:
    _reachable(3306, "MariaDB")
    import pymysql

    user = f"fc_e2e_{SUFFIX}"
    with pymysql.connect(host="127.0.0.1", user="root") as root, root.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'")
        try:
            yield Case(
                "mariadb",
                {"host": "127.0.0.1", "username": user},
                PASSWORD,
                canary("bad"),
                f"authentication failed for user '{user}': access denied",
            )
        finally:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


@pytest.fixture(scope="module")
def postgres_case() -> Iterator[Case]:
    _reachable(5432, "PostgreSQL")
    import psycopg

    role = f"fc_e2e_nologin_{SUFFIX}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} NOLOGIN")
        try:
            yield Case(
                "postgres",
                {"host": "127.0.0.1", "database": "postgres", "username": "postgres"},
                PASSWORD,  # trust ignores it: the login is what is proven
                PASSWORD,
                f"authentication failed for user '{role}'",
                {"host": "127.0.0.1", "database": "postgres", "username": role},
            )
        finally:
            admin.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.fixture(scope="module")
def amqp_case() -> Case:
    _reachable(5672, "RabbitMQ")
    return Case(
        "rabbitmq",
        {"host": "127.0.0.1", "username": "guest"},
        "guest",
        canary("bad"),
        # guest's password is its user name, so once stored the name is masked as a secret too.
        "authentication failed for user '***': the broker refused the login (ACCESS_REFUSED)",
    )


CASES = ["redis_case", "mysql_case", "postgres_case", "amqp_case"]


def _add(name: str, type_: str, config: dict[str, str], secret: str) -> None:
    sets = [arg for key, value in config.items() for arg in ("--set", f"{key}={value}")]
    code, _, err = cli(
        "credentials", "add", "--type", type_, "--name", name, *sets, "--secret-stdin", input=secret
    )
    assert code == 0, err


@pytest.mark.parametrize("case_name", CASES)
def test_credentials_test_passes_and_fails_clearly(
    case_name: str, request: pytest.FixtureRequest
) -> None:
    case: Case = request.getfixturevalue(case_name)
    _add("good", case.type, case.config, case.good)
    _add("bad", case.type, case.bad_config or case.config, case.bad)

    code, out, err = cli("credentials", "test", "good")
    assert code == 0, out + err
    code, out, err = cli("credentials", "test", "bad")
    assert code != 0
    assert case.refused in out + err
    assert case.bad not in out + err or case.bad == case.good

    listed = {c["handle"]: c["status"] for c in json.loads(cli("credentials", "list", "--json")[1])}
    assert listed == {"good": "active", "bad": "error"}


def test_run_test_reports_latency_and_scrubs(redis_case: Case) -> None:
    ok = run_test(target("redis", redis_case.config, password=redis_case.good), timeout=5.0)
    assert ok.ok and ok.message.startswith("PING answered as fc_e2e_")
    assert 0 < ok.latency_ms < 5000
    bad = run_test(target("redis", redis_case.config, password=redis_case.bad), timeout=5.0)
    assert not bad.ok and bad.message.startswith(redis_case.refused)
    assert redis_case.bad not in json.dumps(bad.to_dict())
