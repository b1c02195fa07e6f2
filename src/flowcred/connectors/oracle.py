"""Oracle Database: connect with python-oracledb in thin mode (pure Python, no Instant Client)
and run ``SELECT 1 FROM DUAL``.

A refused login is ``ORA-01017``; an unknown service or SID is ``ORA-12514`` / ``DPY-6001``
from the listener; network failures are ``DPY-6005`` with the OS reason in the text.
"""

from __future__ import annotations

import threading
from typing import Any

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import TIMED_OUT, network_reason
from flowcred.connectors.optional_drivers import load_driver

_MEANINGS = {
    "ORA-01017": "Oracle login failed (invalid user name or password)",
    "ORA-28000": "the Oracle account is locked",
    "ORA-28001": "the Oracle password has expired",
    "ORA-12514": "the Oracle listener does not know this service name",
    "DPY-6001": "the Oracle listener does not know this service name",
    "ORA-12505": "the Oracle listener does not know this SID",
    "DPY-6003": "the Oracle listener does not know this SID",
}


@register("oracle")
class OracleTest(ConnectionTest):
    live_tested = False  # no Oracle Database on the CI machines

    def check(self, target: TestTarget, timeout: float) -> str:
        oracledb = load_driver("oracledb", "oracledb")
        config = target.config
        options: dict[str, Any] = {
            "user": config.get("username"),
            "password": target.reveal("password") or "",
            "host": config.get("host"),
            "port": int(config.get("port") or 1521),
            "tcp_connect_timeout": timeout,
            "retry_count": 0,
        }
        if config.get("service_name"):
            options["service_name"] = config["service_name"]
        else:
            options["sid"] = config.get("sid")
        outcome: list[BaseException | None] = []

        def attempt() -> None:
            try:
                with oracledb.connect(**options) as connection, connection.cursor() as cursor:
                    connection.call_timeout = max(1, int(timeout * 1000))
                    cursor.execute("SELECT 1 FROM DUAL")
                    cursor.fetchall()
                outcome.append(None)
            except BaseException as exc:  # handed to the caller's thread below
                outcome.append(exc)

        # tcp_connect_timeout bounds only the TCP connect: a listener that accepts and then says
        # nothing would hold the thin driver's handshake forever, so the attempt gets a deadline.
        worker = threading.Thread(target=attempt, name="flowcred-oracle-test", daemon=True)
        worker.start()
        worker.join(timeout)
        if not outcome:
            raise ConnectionTestError(f"cannot reach Oracle: {TIMED_OUT}")
        try:
            if outcome[0] is not None:
                raise outcome[0]
        except oracledb.Error as exc:
            error = exc.args[0] if exc.args else None
            code = str(getattr(error, "full_code", ""))
            if code in _MEANINGS:
                raise ConnectionTestError(_MEANINGS[code]) from None
            reason = network_reason(exc)
            if reason:
                raise ConnectionTestError(f"cannot reach Oracle: {reason}") from None
            raise ConnectionTestError(
                f"Oracle refused the test ({code or 'unknown error'})"
            ) from None
        except OSError as exc:
            reason = network_reason(exc) or "network error"
            raise ConnectionTestError(f"cannot reach Oracle: {reason}") from None
        return "Oracle accepted the login and ran SELECT 1 FROM DUAL"
