"""PostgreSQL connection test against the real server on 127.0.0.1:5432.

That server trusts every loopback login (pg_hba: ``host all all 127.0.0.1/32 trust``), so it
never checks a password and a wrong one cannot fail there. Authentication failure is proven
with what trust still refuses: a role without LOGIN, and a role that does not exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from tests.conftest import PG_ADMIN_DSN, require_service
from tests.connectors.failure_endpoints import assert_network_failures, canary, failure, target

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
