"""RabbitMQ (AMQP 0-9-1): an AMQP login with pika, opening the configured virtual host.

The connection handshake (``Connection.Start``/``StartOk`` with PLAIN, then
``Connection.Open`` of the vhost) is the whole proof: the broker closes it with 403
ACCESS_REFUSED for a wrong login and 530 NOT_ALLOWED for a vhost the user may not open. One
attempt, no retry delay, and every pika timeout set to the test's, so a dead broker costs at
most the timeout.
"""

from __future__ import annotations

import logging
import ssl

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import auth_failed, config_port, network_failure

_TRUE = ("true", "1", "yes", "on")
_PIKA_LOG = logging.getLogger("pika")


def _quiet_pika() -> None:
    """pika logs every failed connect at ERROR with a traceback, several lines per test; the
    test's own result says it once. Only when nobody configured pika's logger."""
    if _PIKA_LOG.level == logging.NOTSET:
        _PIKA_LOG.setLevel(logging.CRITICAL)


@register("amqp")
class AmqpTest(ConnectionTest):
    """Log in and open the vhost, then close cleanly."""

    live_types = frozenset({"rabbitmq"})

    def check(self, target: TestTarget, timeout: float) -> str:
        import pika
        import pika.exceptions

        _quiet_pika()
        host = str(target.config["host"])
        port = config_port(target.config.get("port"), 5672)
        user = str(target.config.get("username") or "")
        vhost = str(target.config.get("virtual_host") or "/")
        tls = str(target.config.get("tls", False)).lower() in _TRUE
        parameters = pika.ConnectionParameters(
            host=host,
            port=port,
            virtual_host=vhost,
            credentials=pika.PlainCredentials(
                user, target.reveal("password") or "", erase_on_connect=True
            ),
            connection_attempts=1,
            retry_delay=0,
            socket_timeout=timeout,
            stack_timeout=timeout,
            blocked_connection_timeout=timeout,
            ssl_options=pika.SSLOptions(ssl.create_default_context(), host) if tls else None,
        )
        try:
            connection = pika.BlockingConnection(parameters)
        except pika.exceptions.ProbableAuthenticationError:
            raise auth_failed(user, "the broker refused the login (ACCESS_REFUSED)") from None
        except pika.exceptions.ProbableAccessDeniedError:
            raise ConnectionTestError(
                f"user '{user}' may not open virtual host '{vhost}' (or it does not exist)"
            ) from None
        except Exception as exc:  # pika raises its connector errors outside AMQPError too
            shared = network_failure(exc, host, port, timeout)
            if shared is not None:
                raise shared from None
            raise ConnectionTestError(f"AMQP connection failed: {type(exc).__name__}") from None
        try:
            connection.close()
        except pika.exceptions.AMQPError:
            pass  # the login already succeeded; a failed close changes nothing for the user
        return f"AMQP login ok as '{user}' on virtual host '{vhost}' ({'TLS' if tls else 'no TLS'})"
