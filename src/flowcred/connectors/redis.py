"""Redis: ``AUTH`` (with the ACL user when given) and ``PING``.

redis-py sends ``AUTH [username] password`` and ``SELECT db`` on connect, so a ``PING`` that
answers proves the login, the user's right to run commands and the database number. Its default
retry policy would repeat a failed connect three times with back-off, tripling a timeout; the
test connects once. Note that a server whose default user has ``nopass`` accepts any password:
that is the server's choice, and the test reports it as a success.
"""

from __future__ import annotations

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import auth_failed, config_port, network_failure

_TRUE = ("true", "1", "yes", "on")


@register("redis")
class RedisTest(ConnectionTest):
    """``PING`` after ``AUTH`` and ``SELECT``."""

    live_types = frozenset({"redis"})

    def check(self, target: TestTarget, timeout: float) -> str:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        host = str(target.config["host"])
        port = config_port(target.config.get("port"), 6379)
        username = str(target.config.get("username") or "") or None
        db = int(str(target.config.get("db") or 0))
        tls = str(target.config.get("tls", False)).lower() in _TRUE
        client = redis.Redis(
            host=host,
            port=port,
            username=username,
            password=target.reveal("password") or None,
            db=db,
            ssl=tls,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            answered = client.ping()
        except redis.AuthenticationError as exc:
            raise auth_failed(username or "default", _auth_reason(exc)) from None
        except redis.exceptions.NoPermissionError:
            raise ConnectionTestError(
                f"user '{username or 'default'}' may not use database {db} (or PING)"
            ) from None
        except redis.RedisError as exc:
            shared = network_failure(exc, host, port, timeout)
            if shared is not None:
                raise shared from None
            raise ConnectionTestError(f"Redis connection failed: {type(exc).__name__}") from None
        finally:
            client.close()
        if answered is not True:
            raise ConnectionTestError("Redis did not answer PING with PONG")
        who = username or "the default user"
        return f"PING answered as {who} on db {db} ({'TLS' if tls else 'no TLS'})"


def _auth_reason(exc: Exception) -> str:
    text = str(exc).lower()
    if "invalid username-password pair" in text or "invalid password" in text:
        return "invalid user name or password, or the user is disabled"
    if "authentication required" in text or "noauth" in text:
        return "the server requires a password"
    return "the server refused the login"
