"""PostgreSQL: log in with psycopg and run ``SELECT 1``.

The cheapest proof a login works is a completed startup plus one round trip; ``SELECT 1`` needs
no privilege on any table. ``ssl_mode`` goes to libpq as ``sslmode`` unchanged, so ``require``
against a server without TLS fails the test instead of silently connecting in the clear.
libpq reports failures as text only (no SQLSTATE on a failed connect), so the server's FATAL
line is matched to a fixed message; libpq never echoes the password in it.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import auth_failed, config_port, network_failure, timed_out

if TYPE_CHECKING:
    import psycopg

_AUTH_PHRASES = {
    "password authentication failed": "password authentication failed",
    "is not permitted to log in": "the role is not permitted to log in",
    "does not exist": "the role does not exist",
    "no pg_hba.conf entry": "no pg_hba.conf entry allows this host, user and database",
    "no password supplied": "the server asked for a password and none was given",
}


@register("postgres")
class PostgresTest(ConnectionTest):
    """``SELECT 1`` as the configured user on the configured database."""

    live_types = frozenset({"postgres"})

    def check(self, target: TestTarget, timeout: float) -> str:
        import psycopg

        host = str(target.config["host"])
        port = config_port(target.config.get("port"), 5432)
        user = str(target.config.get("username") or "")
        database = str(target.config.get("database") or "")
        ssl_mode = str(target.config.get("ssl_mode") or "prefer")
        try:
            with psycopg.connect(
                host=host,
                port=port,
                dbname=database,
                user=user,
                password=target.reveal("password") or "",
                sslmode=ssl_mode,
                # libpq takes whole seconds (and treats 1 as 2); the runner's deadline is exact.
                connect_timeout=max(1, math.ceil(timeout)),
                application_name="flowcred-connection-test",
            ) as conn:
                conn.execute("SELECT 1").fetchone()
                version = conn.info.server_version
                tls = "TLS" if conn.pgconn.ssl_in_use else "no TLS"
        except psycopg.Error as exc:
            raise _describe(exc, host, port, timeout, user, database, ssl_mode) from None
        major, minor = divmod(version, 10000)
        return f"connected to PostgreSQL {major}.{minor} as '{user}' ({tls}); SELECT 1 ok"


def _describe(
    exc: psycopg.Error,
    host: str,
    port: int,
    timeout: float,
    user: str,
    database: str,
    ssl_mode: str,
) -> ConnectionTestError:
    text = str(exc)
    lowered = text.lower()
    if "timeout expired" in lowered:
        return timed_out(timeout, host, port)
    if "server does not support ssl" in lowered:
        return ConnectionTestError(
            f"ssl_mode={ssl_mode} requires TLS but the server at {host}:{port} does not support it"
        )
    if "fatal:" in lowered:
        fatal = text[lowered.index("fatal:") + len("fatal:") :].strip()
        if re.search(r'database ".*" does not exist', fatal):
            return ConnectionTestError(f"database '{database}' does not exist")
        for phrase, reason in _AUTH_PHRASES.items():
            if phrase in fatal.lower():
                return auth_failed(user, reason)
        return ConnectionTestError(f"PostgreSQL refused the connection: {fatal.splitlines()[0]}")
    shared = network_failure(exc, host, port, timeout)
    if shared is not None:
        return shared
    first = text.splitlines()[0] if text else type(exc).__name__
    return ConnectionTestError(f"PostgreSQL connection failed: {first}")
