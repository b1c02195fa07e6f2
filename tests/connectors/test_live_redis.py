"""Redis connection test against the real server on 127.0.0.1:6379.

Its default user has no password, so the set-up creates an ACL user with a password (allowed to
PING and SELECT only db 0's commands it needs) and deletes it afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from tests.conftest import require_service
from tests.connectors.failure_endpoints import assert_network_failures, canary, failure, target

from flowcred.connectors.base import TestTarget
from flowcred.connectors.redis import RedisTest

USER = f"fc_test_{secrets.token_hex(3)}"
PASSWORD = canary("redis")


@pytest.fixture(scope="module")
def acl_user() -> Iterator[str]:
    import redis

    admin = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=3)
    try:
        admin.ping()
    except redis.RedisError as exc:
        require_service(f"Redis not reachable at 127.0.0.1:6379 ({type(exc).__name__})")
        raise
    # PING only: a SELECT of another database than 0 must be refused.
    admin.execute_command("ACL", "SETUSER", USER, "on", f">{PASSWORD}", "+ping")
    try:
        yield USER
    finally:
        admin.execute_command("ACL", "DELUSER", USER)
        admin.close()


def rd(
    host: str = "127.0.0.1", port: int = 6379, password: str = PASSWORD, **config: object
) -> TestTarget:
    base: dict[str, object] = {"host": host, "port": port, "username": USER, "db": 0}
    base.update(config)
    return target("redis", base, password=password)


def test_an_acl_user_with_its_password_gets_pong(acl_user: str) -> None:
    assert RedisTest().check(rd(), 5.0) == f"PING answered as {acl_user} on db 0 (no TLS)"


def test_a_wrong_password_fails_authentication(acl_user: str) -> None:
    wrong = canary("wrong")
    message = failure(RedisTest(), rd(password=wrong))
    assert message == (
        f"authentication failed for user '{acl_user}': "
        "invalid user name or password, or the user is disabled"
    )
    assert wrong not in message and PASSWORD not in message


def test_an_unknown_acl_user_fails_authentication(acl_user: str) -> None:
    message = failure(RedisTest(), rd(username="fc_nobody"))
    assert message.startswith("authentication failed for user 'fc_nobody'")


def test_a_database_the_user_may_not_select_is_refused(acl_user: str) -> None:
    message = failure(RedisTest(), rd(db=3))
    assert message == f"user '{acl_user}' may not use database 3 (or PING)"


def test_wrong_host_closed_port_and_timeout_have_their_own_messages(acl_user: str) -> None:
    assert_network_failures(RedisTest(), lambda host, port: rd(host, port), PASSWORD)
