"""SQL Server: log in with python-tds (pure Python, no ODBC driver or system package) and run
``SELECT 1``.

A refused login is SQL Server error 18456 ("Login failed for user"), which pytds raises as
``LoginError`` or a ``DatabaseError`` carrying that number. ``encrypt`` asks for TLS, which
pytds does through pyOpenSSL with the system's CA bundle (certifi); ``trust_server_certificate``
turns the host name check off, for test servers only.
"""

from __future__ import annotations

from typing import Any

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import network_reason
from flowcred.connectors.optional_drivers import load_driver

LOGIN_FAILED = 18456


@register("mssql")
class MssqlTest(ConnectionTest):
    live_tested = False  # no SQL Server on the CI machines

    def check(self, target: TestTarget, timeout: float) -> str:
        pytds = load_driver("pytds", "python-tds")
        config = target.config
        options: dict[str, Any] = {
            "dsn": config.get("host"),
            "port": int(config.get("port") or 1433),
            "database": config.get("database") or None,
            "user": config.get("username"),
            "password": target.reveal("password") or "",
            "login_timeout": timeout,
            "timeout": timeout,
            "appname": "flowcred-connection-test",
            "autocommit": True,
        }
        if config.get("encrypt", True):
            certifi = load_driver("certifi", "certifi")
            load_driver("OpenSSL", "pyOpenSSL")
            options["cafile"] = certifi.where()
            options["validate_host"] = not bool(config.get("trust_server_certificate"))
        try:
            with pytds.connect(**options) as connection, connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchall()
        except pytds.LoginError:
            raise ConnectionTestError("SQL Server login failed") from None
        except pytds.Error as exc:
            if getattr(exc, "number", None) == LOGIN_FAILED:
                raise ConnectionTestError("SQL Server login failed") from None
            reason = network_reason(exc)
            raise ConnectionTestError(
                f"cannot reach SQL Server: {reason}" if reason else "SQL Server refused the test"
            ) from None
        except OSError as exc:
            raise ConnectionTestError(
                f"cannot reach SQL Server: {network_reason(exc) or 'network error'}"
            ) from None
        return "SQL Server accepted the login and ran SELECT 1"
