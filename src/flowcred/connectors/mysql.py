"""MySQL and MariaDB: log in with PyMySQL and run ``SELECT 1``.

One test serves both types (their wire protocol and error codes are the same). ``ssl_mode``
follows the MySQL client's ``--ssl-mode``: DISABLED never negotiates TLS; PREFERRED uses it
when the server offers it, without checking the certificate; REQUIRED insists on it;
VERIFY_CA also checks the chain and VERIFY_IDENTITY the host name too. PyMySQL silently stays
in the clear when the server lacks TLS, so REQUIRED and stricter are enforced here after the
handshake.
"""

from __future__ import annotations

import ssl
from typing import Any

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import auth_failed, config_port, network_failure

# MySQL server error codes a person can act on (see the server's error reference).
_ACCESS_DENIED = {1045, 1698, 1251, 1862, 4151}
_DATABASE_DENIED = 1044
_UNKNOWN_DATABASE = 1049
_SSL_NOT_OFFERED = 2026
_SSL_STRICT = {"REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"}


def _tls_context(mode: str) -> ssl.SSLContext | None:
    if mode == "DISABLED":
        return None
    context = ssl.create_default_context()
    if mode in ("PREFERRED", "REQUIRED"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mode == "VERIFY_CA":
        context.check_hostname = False
    return context


@register("mysql")
class MysqlTest(ConnectionTest):
    """``SELECT 1`` as the configured user; the default database is opened when given."""

    live_types = frozenset({"mariadb", "mysql"})

    def check(self, target: TestTarget, timeout: float) -> str:
        import pymysql

        host = str(target.config["host"])
        port = config_port(target.config.get("port"), 3306)
        user = str(target.config.get("username") or "")
        database = target.config.get("database") or None
        mode = str(target.config.get("ssl_mode") or "PREFERRED").upper()
        password = target.reveal("password") or ""
        context = _tls_context(mode)

        def connect(tls: ssl.SSLContext | None) -> Any:
            options: dict[str, Any] = {"ssl": tls} if tls is not None else {}
            return pymysql.connect(
                host=host,
                port=port,
                user=user,
                password=password,
                database=database,
                connect_timeout=timeout,
                read_timeout=timeout,
                write_timeout=timeout,
                **options,
            )

        try:
            try:
                conn = connect(context)
            except pymysql.err.OperationalError as exc:
                # PREFERRED means "TLS if offered": PyMySQL refuses instead, so retry in clear.
                if exc.args[:1] != (_SSL_NOT_OFFERED,) or mode != "PREFERRED":
                    raise
                conn = connect(None)
        except pymysql.err.MySQLError as exc:
            raise _describe(exc, host, port, timeout, user, database, mode) from None
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
            encrypted = isinstance(getattr(conn, "_sock", None), ssl.SSLSocket)
            version = conn.get_server_info()
        except pymysql.err.MySQLError as exc:
            raise _describe(exc, host, port, timeout, user, database, mode) from None
        finally:
            conn.close()
        if mode in _SSL_STRICT and not encrypted:
            raise ConnectionTestError(
                f"ssl_mode={mode} requires TLS but the server at {host}:{port} does not offer it"
            )
        server = version.removeprefix("5.5.5-")  # MariaDB's replication-compatibility prefix
        tls = "TLS" if encrypted else "no TLS"
        return f"connected to {server} as '{user}' ({tls}); SELECT 1 ok"


def _describe(
    exc: Exception,
    host: str,
    port: int,
    timeout: float,
    user: str,
    database: object,
    mode: str,
) -> ConnectionTestError:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code == _SSL_NOT_OFFERED:
        return ConnectionTestError(
            f"ssl_mode={mode} requires TLS but the server at {host}:{port} does not offer it"
        )
    if code in _ACCESS_DENIED:
        return auth_failed(user, "access denied")
    if code == _DATABASE_DENIED:
        return ConnectionTestError(f"user '{user}' may not open database '{database}'")
    if code == _UNKNOWN_DATABASE:
        return ConnectionTestError(f"database '{database}' does not exist")
    shared = network_failure(exc, host, port, timeout)
    if shared is not None:
        return shared
    if isinstance(exc.__context__, ssl.SSLError):
        return ConnectionTestError(f"TLS handshake with {host}:{port} failed")
    text = str(exc.args[1]) if len(exc.args) > 1 else type(exc).__name__
    return ConnectionTestError(f"MySQL connection failed ({code}): {text}")
