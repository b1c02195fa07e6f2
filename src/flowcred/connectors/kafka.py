"""Kafka: bootstrap a kafka-python admin client (SASL when configured) and describe the cluster.

Bootstrapping fetches cluster metadata, so it proves the brokers are reachable and, with a SASL
protocol, that the login is accepted. kafka-python reports an unreachable cluster only as
"Unable to bootstrap", so on that failure one plain TCP connect to the first broker says
whether the port refused, stayed silent or the host is unknown.
"""

from __future__ import annotations

from typing import Any

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import TIMED_OUT, probe, split_host_port
from flowcred.connectors.optional_drivers import load_driver

DEFAULT_PORT = 9092


def _servers(target: TestTarget) -> list[str]:
    value = target.config.get("bootstrap_servers") or []
    items = value.split(",") if isinstance(value, str) else list(value)
    servers = [str(item).strip() for item in items if str(item).strip()]
    if not servers:
        raise ConnectionTestError("bootstrap_servers is empty")
    return servers


@register("kafka")
class KafkaTest(ConnectionTest):
    live_tested = False  # no Kafka broker on the CI machines

    def check(self, target: TestTarget, timeout: float) -> str:
        admin_module = load_driver("kafka.admin", "kafka-python")
        errors = load_driver("kafka.errors", "kafka-python")
        servers = _servers(target)
        millis = max(100, int(timeout * 1000))
        protocol = str(target.config.get("security_protocol") or "PLAINTEXT")
        options: dict[str, Any] = {
            "bootstrap_servers": servers,
            "client_id": "flowcred-connection-test",
            "security_protocol": protocol,
            "request_timeout_ms": millis,
            "bootstrap_timeout_ms": millis,
            "reconnect_backoff_max_ms": 500,
        }
        if protocol.startswith("SASL"):
            options["sasl_mechanism"] = str(target.config.get("sasl_mechanism") or "PLAIN")
            options["sasl_plain_username"] = str(target.config.get("username") or "")
            options["sasl_plain_password"] = target.reveal("password") or ""
        try:
            admin = admin_module.KafkaAdminClient(**options)
        except errors.KafkaError as exc:
            raise self._failure(exc, servers[0], timeout) from None
        except (AssertionError, ValueError, TypeError):
            # kafka-python checks some settings with assert (a SASL mechanism without a user).
            raise ConnectionTestError("the Kafka connection settings are invalid") from None
        try:
            cluster = admin.describe_cluster()
        except errors.KafkaError as exc:
            raise self._failure(exc, servers[0], timeout) from None
        finally:
            admin.close()
        brokers = cluster.get("brokers", []) if isinstance(cluster, dict) else []
        return f"Kafka cluster answered with {len(brokers)} broker(s)"

    @staticmethod
    def _failure(exc: BaseException, first: str, timeout: float) -> ConnectionTestError:
        name = type(exc).__name__
        if "Authentication" in name or "Sasl" in name:
            return ConnectionTestError("Kafka SASL authentication failed")
        if "Configuration" in name:
            return ConnectionTestError("the Kafka connection settings are invalid")
        host, port = split_host_port(first, DEFAULT_PORT)
        reason = probe(host, port, min(timeout, 2.0)) or TIMED_OUT
        return ConnectionTestError(f"cannot reach the Kafka brokers: {reason}")
