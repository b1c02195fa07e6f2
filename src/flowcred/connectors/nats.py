"""NATS: connect with nats-py (user/password, token or NKey seed) and flush a PING.

The server answers the client's ``CONNECT`` with ``-ERR 'Authorization Violation'`` when the
credential is wrong; a ``PING``/``PONG`` round trip after ``CONNECT`` proves it was accepted.
Each configured server URL is checked against the destination policy and tried in turn,
once, until one accepts: nats-py's own pool would
retry (and with ``max_reconnect_attempts=0`` it spins forever on a refused port), so it gets a
pool of one and reconnecting is off. The whole test runs on a private event loop in the
caller's thread, bounded by the timeout.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any
from urllib.parse import urlsplit

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import auth_failed, network_failure, timed_out
from flowcred.connectors.runner import current_policy

_DEFAULT_PORT = 4222


def _servers(value: object) -> list[str]:
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list | tuple):
        items = [str(item) for item in value]
    else:
        items = []
    servers = [item.strip() for item in items if item.strip()]
    if not servers:
        raise ConnectionTestError("no NATS server URL is configured")
    return servers


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or url, parts.port or _DEFAULT_PORT


@register("nats")
class NatsTest(ConnectionTest):
    """``CONNECT`` with the configured credential, then ``flush()`` (PING/PONG)."""

    live_types = frozenset({"nats"})

    def check(self, target: TestTarget, timeout: float) -> str:
        servers = _servers(target.config.get("servers"))
        auth: dict[str, Any] = {}
        seed, token, password = (target.reveal(n) for n in ("nkey_seed", "token", "password"))
        user = str(target.config.get("username") or "") or None
        if seed:
            auth["nkeys_seed_str"] = seed
            method = "NKey"
        elif token:
            auth["token"] = token
            method = "token"
        else:
            auth["user"], auth["password"] = user, password
            method = f"user '{user}'"
        deadline = time.monotonic() + timeout
        unresolved = _check_destinations(servers)
        first_failure: ConnectionTestError | None = None
        for url in servers:
            left = deadline - time.monotonic()
            host, port = _host_port(url)
            if left <= 0:
                first_failure = first_failure or timed_out(timeout, host, port)
                break
            if url in unresolved:
                first_failure = first_failure or unresolved[url]
                continue
            reported: list[Exception] = []
            try:
                version = asyncio.run(_connect_once(url, auth, left, reported))
            except Exception as exc:  # nats-py raises OSError, asyncio and its own errors
                # After a refused connect nats-py raises NoServersError; the cause was reported.
                cause = reported[0] if reported else exc
                failure = _describe(cause, host, port, timeout, user, method)
                first_failure = first_failure or failure
                continue
            return f"connected to NATS {version} at {host}:{port} with {method}; PING ok"
        assert first_failure is not None
        raise first_failure


def _check_destinations(servers: list[str]) -> dict[str, ConnectionTestError]:
    """Check every URL against the destination policy before connecting to any: the runner's
    own check reads only string fields, so a list must not bypass the SSRF guard. A refused
    destination raises (DestinationRefused ends the test); a name that does not resolve is
    returned as that URL's failure, so the next URL can still be tried."""
    policy = current_policy()
    unresolved: dict[str, ConnectionTestError] = {}
    for url in servers:
        try:
            policy.check_host(*_host_port(url))
        except ConnectionTestError as failure:
            unresolved[url] = failure
    return unresolved


async def _connect_once(
    url: str, auth: dict[str, Any], timeout: float, reported: list[Exception]
) -> str:
    import nats

    async def swallow(error: Exception) -> None:
        """nats-py reports each failed attempt here (instead of logging it); kept for the
        message, since what it finally raises can be a bare NoServersError."""
        reported.append(error)

    client = await asyncio.wait_for(
        nats.connect(
            servers=[url],
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            connect_timeout=timeout,
            error_cb=swallow,
            **auth,
        ),
        timeout,
    )
    try:
        # flush() takes whole seconds; wait_for keeps the exact bound.
        await asyncio.wait_for(client.flush(timeout=max(1, math.ceil(timeout))), timeout)
        info = getattr(client, "_server_info", {}) or {}
        return str(info.get("version", "server"))
    finally:
        await client.close()


def _describe(
    exc: Exception, host: str, port: int, timeout: float, user: str | None, method: str
) -> ConnectionTestError:
    import nats.errors

    if (
        isinstance(exc, nats.errors.AuthorizationError)
        or "authorization violation" in str(exc).lower()
    ):
        who = user if method.startswith("user") else None
        return auth_failed(who, f"the server refused the {'password' if who else method}")
    if isinstance(exc, asyncio.TimeoutError | nats.errors.TimeoutError):
        return timed_out(timeout, host, port)
    shared = network_failure(exc, host, port, timeout)
    if shared is not None:
        return shared
    if isinstance(exc, nats.errors.NoServersError):
        return ConnectionTestError(f"no NATS server answered at {host}:{port}")
    return ConnectionTestError(f"NATS connection failed: {type(exc).__name__}")
