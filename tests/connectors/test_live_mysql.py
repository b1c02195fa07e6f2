"""MySQL / MariaDB connection test against the real MariaDB on 127.0.0.1:3306.

The set-up creates a user with a password (root has none) and drops it afterwards, so a wrong
password is a real server-side refusal. Both catalog types, ``mysql`` and ``mariadb``, use this
test kind.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from tests.conftest import require_service
from tests.connectors.failure_endpoints import assert_network_failures, canary, failure, target

from flowcred.catalog import load_catalog
from flowcred.connectors.base import TestTarget
from flowcred.connectors.mysql import MysqlTest

USER = f"fc_test_{secrets.token_hex(3)}"
PASSWORD = canary("mysql")


@pytest.fixture(scope="module")
def mysql_user() -> Iterator[str]:
    try:
        import pymysql

        root = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=3)
    except Exception as exc:
        require_service(f"MariaDB not reachable at 127.0.0.1:3306 ({type(exc).__name__})")
        raise
    with root, root.cursor() as cursor:
        cursor.execute(f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'")
        cursor.execute("CREATE DATABASE IF NOT EXISTS fc_connlive_ok")
        cursor.execute(f"GRANT SELECT ON fc_connlive_ok.* TO '{USER}'@'127.0.0.1'")
        try:
            yield USER
        finally:
            cursor.execute(f"DROP USER IF EXISTS '{USER}'@'127.0.0.1'")


def my(
    host: str = "127.0.0.1", port: int = 3306, password: str = PASSWORD, **config: object
) -> TestTarget:
    base: dict[str, object] = {
        "host": host,
        "port": port,
        "username": USER,
        "ssl_mode": "PREFERRED",
    }
    base.update(config)
    return target("mysql", base, password=password)


def test_both_catalog_types_use_the_mysql_test() -> None:
    catalog = load_catalog()
    assert catalog.get("mysql").test == {"kind": "mysql"}
    assert catalog.get("mariadb").test == {"kind": "mysql"}


def test_a_valid_login_runs_select_1(mysql_user: str) -> None:
    message = MysqlTest().check(my(database="fc_connlive_ok"), 5.0)
    assert "MariaDB" in message and f"as '{mysql_user}'" in message
    assert message.endswith("SELECT 1 ok")


def test_a_wrong_password_fails_authentication(mysql_user: str) -> None:
    wrong = canary("wrong")
    message = failure(MysqlTest(), my(password=wrong))
    assert message == f"authentication failed for user '{mysql_user}': access denied"
    assert wrong not in message and PASSWORD not in message


def test_a_database_the_user_may_not_open_is_named(mysql_user: str) -> None:
    message = failure(MysqlTest(), my(database="mysql"))
    assert message == f"user '{mysql_user}' may not open database 'mysql'"


def test_ssl_mode_required_refuses_a_server_without_tls(mysql_user: str) -> None:
    assert "(no TLS)" in MysqlTest().check(my(), 5.0)
    message = failure(MysqlTest(), my(ssl_mode="REQUIRED"))
    assert message == (
        "ssl_mode=REQUIRED requires TLS but the server at 127.0.0.1:3306 does not offer it"
    )


def test_wrong_host_closed_port_and_timeout_have_their_own_messages(mysql_user: str) -> None:
    assert_network_failures(MysqlTest(), lambda host, port: my(host, port), PASSWORD)
