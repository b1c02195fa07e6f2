"""MQTT: send CONNECT with the user name and password (paho-mqtt) and read the CONNACK.

The broker's CONNACK return code is the whole answer: 0 accepted; "Bad user name or password"
or "Not authorized" (codes 4/5 in MQTT 3.1.1, 134/135 in 5.0) a refused login. The client's
network loop is driven here in small steps until the CONNACK or the deadline, so the test never
leaves a background thread behind.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import auth_failed, config_port, network_failure, timed_out

_TRUE = ("true", "1", "yes", "on")
_REFUSED_LOGIN = {4, 5, 134, 135}


@register("mqtt")
class MqttTest(ConnectionTest):
    """CONNECT and wait for CONNACK, then DISCONNECT."""

    live_types = frozenset({"mqtt"})

    def check(self, target: TestTarget, timeout: float) -> str:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        host = str(target.config["host"])
        tls = str(target.config.get("tls", False)).lower() in _TRUE
        port = config_port(target.config.get("port"), 8883 if tls else 1883)
        user = str(target.config.get("username") or "") or None
        client_id = str(target.config.get("client_id") or "")
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        password = target.reveal("password")
        if user is not None or password:
            client.username_pw_set(user or "", password)
        if tls:
            client.tls_set_context(ssl.create_default_context())
        answer: dict[str, Any] = {}

        def on_connect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
            answer["reason"] = reason

        client.on_connect = on_connect
        client.connect_timeout = timeout
        deadline = time.monotonic() + timeout
        try:
            client.connect(host, port, keepalive=max(5, int(timeout) + 1))
            while "reason" not in answer and time.monotonic() < deadline:
                if client.loop(timeout=min(0.1, max(deadline - time.monotonic(), 0.01))) != 0:
                    break  # the broker closed the connection; the CONNACK may have come first
        except (OSError, ssl.SSLError) as exc:
            shared = network_failure(exc, host, port, timeout)
            raise shared or ConnectionTestError(
                f"MQTT connection failed: {type(exc).__name__}"
            ) from None
        finally:
            client.disconnect()  # written at once (no loop thread), which closes the socket
        reason = answer.get("reason")
        if reason is None:
            if time.monotonic() >= deadline:
                raise timed_out(timeout, host, port)
            raise ConnectionTestError(f"the broker at {host}:{port} closed before its CONNACK")
        code = int(getattr(reason, "value", reason))
        if code in _REFUSED_LOGIN:
            raise auth_failed(user, f"the broker answered CONNACK '{reason}'")
        if code != 0:
            raise ConnectionTestError(f"the broker refused the connection: CONNACK '{reason}'")
        who = f"as '{user}'" if user else "anonymously"
        return f"CONNACK accepted {who} by {host}:{port} ({'TLS' if tls else 'no TLS'})"
