"""Elasticsearch: the official client, ``GET /`` (cluster info) with basic auth or an API key.

With security on, ``GET /`` needs an authenticated user, so 401 (``AuthenticationException``)
means the user, password or API key is wrong and 403 that the user lacks the ``monitor``
privilege. Retries are off (``max_retries=0``) so a dead node fails within the timeout.
"""

from __future__ import annotations

from typing import Any

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import TIMED_OUT, network_reason
from flowcred.connectors.optional_drivers import load_driver


@register("elasticsearch")
class ElasticsearchTest(ConnectionTest):
    live_tested = False  # no Elasticsearch cluster on the CI machines

    def check(self, target: TestTarget, timeout: float) -> str:
        es = load_driver("elasticsearch", "elasticsearch")
        urls = target.config.get("urls") or []
        hosts = [urls] if isinstance(urls, str) else list(urls)
        if not hosts:
            raise ConnectionTestError("urls is empty")
        options: dict[str, Any] = {
            "request_timeout": timeout,
            "max_retries": 0,
            "retry_on_timeout": False,
        }
        api_key = target.reveal("api_key")
        if api_key:
            options["api_key"] = api_key
        elif target.config.get("username"):
            options["basic_auth"] = (
                str(target.config["username"]),
                target.reveal("password") or "",
            )
        try:
            client = es.Elasticsearch(hosts, **options)
        except ValueError:
            raise ConnectionTestError("urls are not valid Elasticsearch node URLs") from None
        try:
            info = client.info()
        except es.AuthenticationException:
            raise ConnectionTestError("Elasticsearch rejected the credentials (HTTP 401)") from None
        except es.AuthorizationException:
            raise ConnectionTestError(
                "Elasticsearch refused the user (HTTP 403): it lacks the monitor privilege"
            ) from None
        except es.ConnectionTimeout:
            raise ConnectionTestError(f"cannot reach Elasticsearch: {TIMED_OUT}") from None
        except es.ConnectionError as exc:
            reason = network_reason(exc) or "connection failed"
            raise ConnectionTestError(f"cannot reach Elasticsearch: {reason}") from None
        except es.ApiError as exc:
            raise ConnectionTestError(
                f"Elasticsearch answered HTTP {getattr(exc, 'status_code', '?')}"
            ) from None
        finally:
            client.close()
        version = info.get("version", {}).get("number", "?")
        name = info.get("cluster_name", "?")
        return f"Elasticsearch cluster '{name}' (version {version}) accepted the credentials"
