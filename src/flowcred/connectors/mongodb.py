"""MongoDB: connect with pymongo and run ``ping`` against the admin database.

``ping`` needs an authenticated session when credentials are given, so a wrong password fails
here with server error 18 (AuthenticationFailed). pymongo keeps retrying server selection until
``serverSelectionTimeoutMS``, so that is set to the test's timeout, and the reason is taken
from the exception chain, never from pymongo's text, which can repeat the connection string.
"""

from __future__ import annotations

from typing import Any

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import TIMED_OUT, network_reason
from flowcred.connectors.optional_drivers import load_driver

AUTH_FAILED_CODES = {18, 13}  # AuthenticationFailed, Unauthorized


@register("mongodb")
class MongoDbTest(ConnectionTest):
    live_tested = False  # no MongoDB server on the CI machines

    def check(self, target: TestTarget, timeout: float) -> str:
        pymongo = load_driver("pymongo", "pymongo")
        errors = load_driver("pymongo.errors", "pymongo")
        try:
            client = _client(pymongo, target, timeout)
        except (errors.ConfigurationError, ValueError, TypeError):
            raise ConnectionTestError("the MongoDB connection settings are invalid") from None
        try:
            client.admin.command("ping")
        except errors.OperationFailure as exc:
            if exc.code in AUTH_FAILED_CODES:
                raise ConnectionTestError("MongoDB authentication failed") from None
            raise ConnectionTestError(
                f"MongoDB refused the ping (server error {exc.code})"
            ) from None
        except errors.ConfigurationError:
            raise ConnectionTestError("the MongoDB connection settings are invalid") from None
        except errors.PyMongoError as exc:
            reason = network_reason(exc) or TIMED_OUT
            raise ConnectionTestError(f"cannot reach MongoDB: {reason}") from None
        finally:
            client.close()
        return "MongoDB answered ping"


def _client(pymongo: Any, target: TestTarget, timeout: float) -> Any:
    """A MongoClient for the connection string or the separate fields, bounded by ``timeout``
    (it connects lazily: nothing is sent yet)."""
    millis = max(1, int(timeout * 1000))
    options: dict[str, Any] = {
        "serverSelectionTimeoutMS": millis,
        "connectTimeoutMS": millis,
        "socketTimeoutMS": millis,
        "appname": "flowcred-connection-test",
    }
    uri = target.reveal("connection_string")
    if uri:
        return pymongo.MongoClient(uri, **options)
    config = target.config
    if config.get("username"):
        options["username"] = config["username"]
        options["password"] = target.reveal("password") or ""
        options["authSource"] = config.get("auth_source") or "admin"
    if config.get("replica_set"):
        options["replicaSet"] = config["replica_set"]
    return pymongo.MongoClient(
        host=config.get("host"),
        port=int(config.get("port") or 27017),
        tls=bool(config.get("tls")),
        **options,
    )
