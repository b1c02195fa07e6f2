"""The network failures every family shares, found once and worded once.

Drivers report the same few problems in a dozen shapes (``socket.gaierror``, libpq's "could not
translate host name", pika's wrapped connector errors, botocore's ``EndpointConnectionError``,
pymongo's ``ServerSelectionTimeoutError``, oracledb's ``DPY-6005``), and some of their messages
repeat the connection string, which may hold a password. So a family never shows a driver's
text for these: :func:`network_reason` names one of a few fixed phrases ("connection refused",
"host not found", "TLS handshake failed", "timed out", "network unreachable"), found from the
exception chain first (causes, contexts and the exceptions drivers carry in ``args`` or an
attribute) and from well-known words in the text second, and :func:`network_failure` words the
three that need a host and port the same way for every family, so tests can assert on them:

- ``host not found: HOST``
- ``connection refused by HOST:PORT``
- ``timed out after N s talking to HOST:PORT``
- ``authentication failed for user 'NAME'`` (:func:`auth_failed`; + the server's reason where
  it holds no secret)

No message built here contains a secret: only the host, port, user name and timeout, which are
non-secret config.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

from flowcred.connectors.base import ConnectionTestError

REFUSED = "connection refused"
TIMED_OUT = "timed out"
HOST_NOT_FOUND = "host not found"
TLS_FAILED = "TLS handshake failed"
UNREACHABLE = "network unreachable"

# Lower-case words in drivers' messages, in the order they are tried: "timed out" before
# "refused", because a driver that retried a refused port until its deadline reports both.
_TEXT_CLUES: tuple[tuple[str, str], ...] = (
    ("connection refused", REFUSED),
    ("actively refused", REFUSED),
    ("errno 111", REFUSED),
    ("econnrefused", REFUSED),
    ("name or service not known", HOST_NOT_FOUND),
    ("nodename nor servname", HOST_NOT_FOUND),
    ("temporary failure in name resolution", HOST_NOT_FOUND),
    ("getaddrinfo failed", HOST_NOT_FOUND),
    ("no address associated", HOST_NOT_FOUND),
    ("certificate verify failed", TLS_FAILED),
    ("ssl:", TLS_FAILED),
    ("[ssl", TLS_FAILED),
    ("wrong version number", TLS_FAILED),
    ("tls handshake", TLS_FAILED),
    ("timed out", TIMED_OUT),
    ("timeout", TIMED_OUT),
    ("network is unreachable", UNREACHABLE),
)


def seconds(timeout: float) -> str:
    """``0.5`` -> ``"0.5 s"``, ``10.0`` -> ``"10 s"``."""
    return f"{timeout:g} s"


def host_not_found(host: str) -> ConnectionTestError:
    return ConnectionTestError(f"host not found: {host}")


def refused(host: str, port: int) -> ConnectionTestError:
    return ConnectionTestError(f"connection refused by {host}:{port}")


def timed_out(timeout: float, host: str, port: int) -> ConnectionTestError:
    return ConnectionTestError(f"timed out after {seconds(timeout)} talking to {host}:{port}")


def auth_failed(username: str | None, reason: str = "") -> ConnectionTestError:
    """``reason`` must be the server's wording or a fixed phrase, never driver text that may
    echo a credential."""
    who = f" for user '{username}'" if username else ""
    tail = f": {reason}" if reason else ""
    return ConnectionTestError(f"authentication failed{who}{tail}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and the exceptions it carries in ``args``, ``kwargs``
    or an ``exception``/``error``/``reason`` attribute (pika, botocore and urllib3 wrap the OS
    error there), each at most once."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 32:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [a for a in current.args if isinstance(a, BaseException)]
        for attribute in ("exception", "error", "reason"):  # pika, botocore, urllib3
            inner = getattr(current, attribute, None)
            if isinstance(inner, BaseException):
                nested.append(inner)
        kwargs = getattr(current, "kwargs", None)
        if isinstance(kwargs, dict):
            nested += [v for v in kwargs.values() if isinstance(v, BaseException)]
        for more in (current.__cause__, current.__context__, *nested):
            if more is not None:
                todo.append(more)


def _by_type(exc: BaseException) -> str | None:
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED
    if isinstance(exc, socket.gaierror):
        return HOST_NOT_FOUND
    if isinstance(exc, TimeoutError | socket.timeout):
        return TIMED_OUT
    if isinstance(exc, ssl.SSLError):
        return TLS_FAILED
    return None


def network_reason(exc: BaseException) -> str | None:
    """One fixed phrase for a network failure anywhere in ``exc``'s chain, else ``None``."""
    chain = list(_chain(exc))
    found = {_by_type(link) for link in chain}
    # A refusal anywhere in the chain is the cause, even when a driver then reports its own
    # deadline (pytds raises TimeoutError from the ConnectionRefusedError).
    for reason in (REFUSED, HOST_NOT_FOUND, TLS_FAILED, TIMED_OUT):
        if reason in found:
            return reason
    text = " ".join(str(link) for link in chain).lower()
    if "refused" in text and ("timed out" in text or "timeout" in text):
        # A driver that retried a refused port until its deadline: the refusal is the cause.
        return REFUSED
    for clue, reason in _TEXT_CLUES:
        if clue in text:
            return reason
    return None


def network_failure(
    exc: BaseException, host: str, port: int, timeout: float
) -> ConnectionTestError | None:
    """The shared message for ``exc`` when it is a refused port, an unknown host or a timeout,
    else None (the family then words it itself: a TLS failure, a refused login)."""
    reason = network_reason(exc)
    if reason == HOST_NOT_FOUND:
        return host_not_found(host)
    if reason == REFUSED:
        return refused(host, port)
    if reason == TIMED_OUT:
        return timed_out(timeout, host, port)
    return None


def probe(host: str, port: int, timeout: float) -> str | None:
    """Why a TCP connection to ``host:port`` fails, or ``None`` when it opens.

    For drivers that only say "could not bootstrap" (kafka-python): one plain connect tells a
    refused port from a silent one and from an unknown host.
    """
    try:
        with socket.create_connection((host, port), timeout=max(0.1, timeout)):
            return None
    except OSError as exc:
        return network_reason(exc) or "cannot connect"


def split_host_port(entry: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``, or a bare host) -> ``(host, port)``."""
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else default_port
    host, sep, port = entry.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return entry, default_port


def config_port(value: object, default: int) -> int:
    """The ``port`` config as an int (the catalog fills the default; this covers a target built
    by hand)."""
    if value is None or value == "":
        return default
    return int(str(value))
