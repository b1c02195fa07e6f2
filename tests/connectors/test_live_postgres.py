"""PostgreSQL connection test against real servers.

The shared server on 127.0.0.1:5432 trusts every loopback login (pg_hba: ``host all all
127.0.0.1/32 trust``), so it never checks a password and a wrong one cannot fail there; on it
authentication failure is proven with what trust still refuses: a role without LOGIN, and a
role that does not exist. For a real wrong-password refusal the set-up also starts a private
cluster (``initdb --auth=scram-sha-256``, ``pg_ctl start`` on a free loopback port, about a
second) and stops and deletes it afterwards.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
from tests.conftest import PG_ADMIN_DSN, require_service
from tests.connectors.failure_endpoints import (
    assert_network_failures,
    canary,
    failure,
    free_port,
    target,
)

from flowcred.connectors.base import TestTarget
from flowcred.connectors.postgres import PostgresTest

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def admin() -> Iterator[object]:
    try:
        import psycopg

        conn = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        require_service(f"PostgreSQL not reachable at 127.0.0.1:5432 ({type(exc).__name__})")
        raise
    with conn:
        yield conn


@pytest.fixture
def nologin_role(admin: object) -> Iterator[str]:
    import psycopg

    assert isinstance(admin, psycopg.Connection)
    name = f"fc_nologin_{secrets.token_hex(4)}"
    admin.execute(f"CREATE ROLE {name} NOLOGIN PASSWORD 'irrelevant'")
    try:
        yield name
    finally:
        admin.execute(f"DROP ROLE IF EXISTS {name}")


SCRAM_ADMIN = "fc_scram_admin"
SCRAM_PASSWORD = canary("pg-scram")


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def scram_port() -> Iterator[int]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:
        require_service("initdb not found (needed for a PostgreSQL cluster with passwords)")
        raise AssertionError("unreachable")
    pg_ctl = os.path.join(os.path.dirname(initdb), "pg_ctl")
    folder = tempfile.mkdtemp(prefix="fc-pg-scram-")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    password_file = os.path.join(folder, "pw")
    with open(password_file, "w") as handle:
        handle.write(SCRAM_PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(password_file, "postgres")
    data, port = os.path.join(folder, "data"), free_port()
    run = {"check": True, "capture_output": True, "timeout": 60}
    try:
        subprocess.run(
            _as_postgres(
                [
                    initdb,
                    "-D",
                    data,
                    "-U",
                    SCRAM_ADMIN,
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "-N",
                ]
            ),
            **run,
        )
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres([pg_ctl, "-D", data, "-o", options, "-w", "-l", f"{folder}/log", "start"]),
            **run,
        )
        yield port
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", data, "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)


def test_a_wrong_password_fails_authentication_on_a_scram_server(scram_port: int) -> None:
    wrong = canary("wrong")
    tgt = target(
        "postgres",
        {"host": "127.0.0.1", "port": scram_port, "database": "postgres", "username": SCRAM_ADMIN},
        password=wrong,
    )
    message = failure(PostgresTest(), tgt)
    assert (
        message == f"authentication failed for user '{SCRAM_ADMIN}': password authentication failed"
    )
    assert wrong not in message and SCRAM_PASSWORD not in message


def test_the_right_password_logs_in_on_a_scram_server(scram_port: int) -> None:
    tgt = target(
        "postgres",
        {"host": "127.0.0.1", "port": scram_port, "database": "postgres", "username": SCRAM_ADMIN},
        password=SCRAM_PASSWORD,
    )
    assert f"as '{SCRAM_ADMIN}'" in PostgresTest().check(tgt, 5.0)


def pg(host: str = "127.0.0.1", port: int = 5432, **config: object) -> TestTarget:
    base: dict[str, object] = {
        "host": host,
        "port": port,
        "database": "postgres",
        "username": "postgres",
        "ssl_mode": "prefer",
    }
    base.update(config)
    return target("postgres", base, password=PLANTED)


PLANTED = canary("pg")


def test_a_valid_login_runs_select_1(admin: object) -> None:
    message = PostgresTest().check(pg(), 5.0)
    assert message.startswith("connected to PostgreSQL ")
    assert "as 'postgres'" in message and "SELECT 1 ok" in message


def test_a_role_without_login_fails_authentication(nologin_role: str) -> None:
    message = failure(PostgresTest(), pg(username=nologin_role))
    assert message == (
        f"authentication failed for user '{nologin_role}': the role is not permitted to log in"
    )
    assert PLANTED not in message


def test_an_unknown_role_fails_authentication(admin: object) -> None:
    message = failure(PostgresTest(), pg(username="fc_no_such_role"))
    assert message == "authentication failed for user 'fc_no_such_role': the role does not exist"


def test_an_unknown_database_is_named(admin: object) -> None:
    message = failure(PostgresTest(), pg(database="fc_no_such_db"))
    assert message == "database 'fc_no_such_db' does not exist"


def test_ssl_mode_require_refuses_a_server_without_tls(admin: object) -> None:
    # The local server runs with ssl=off: prefer connects in the clear, require must not.
    assert "(no TLS)" in PostgresTest().check(pg(ssl_mode="prefer"), 5.0)
    message = failure(PostgresTest(), pg(ssl_mode="require"))
    assert message == (
        "ssl_mode=require requires TLS but the server at 127.0.0.1:5432 does not support it"
    )


def test_wrong_host_closed_port_and_timeout_have_their_own_messages(admin: object) -> None:
    assert_network_failures(PostgresTest(), lambda host, port: pg(host, port), PLANTED)
