"""The four failures every network family shares, worded once.

Drivers report the same few problems in a dozen shapes (``socket.gaierror``, libpq's "could not
translate host name", pika's wrapped connector errors, botocore's ``EndpointConnectionError``).
A person needs to know which of four things went wrong, whatever the driver: the host name does
not resolve, nothing listens on the port, the server did not answer in time, or the login was
refused. Each family maps its driver's failures through :func:`network_failure` first and words
its own authentication failures with :func:`auth_failed`, so the messages read the same across
families and tests can assert on them:

- ``host not found: HOST``
- ``connection refused by HOST:PORT``
- ``timed out after N s talking to HOST:PORT``
- ``authentication failed for user 'NAME'`` (+ the server's reason where it holds no secret)

No message built here contains a secret: only the host, port, user name and timeout, which are
non-secret config.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from flowcred.connectors.base import ConnectionTestError

# Lower-case fragments drivers put in their messages when they wrap the OS error as text only.
_HOST_NOT_FOUND_TEXT = (
    "name or service not known",
    "could not translate host name",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated with hostname",
    "getaddrinfo failed",
    "unknown host",
)
_REFUSED_TEXT = ("connection refused", "errno 111", "actively refused")
_TIMEOUT_TEXT = ("timed out", "timeout expired", "timeout")


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


def network_failure(
    exc: BaseException, host: str, port: int, timeout: float
) -> ConnectionTestError | None:
    """The shared message for ``exc`` when it is one of the three network failures, else None
    (the family then words it itself). Typed exceptions in the chain win over message text."""
    chain = list(_chain(exc))
    for item in chain:
        if isinstance(item, socket.gaierror):
            return host_not_found(host)
        if isinstance(item, ConnectionRefusedError):
            return refused(host, port)
        if isinstance(item, TimeoutError):
            return timed_out(timeout, host, port)
    text = " ".join(str(item) for item in chain).lower()
    if any(fragment in text for fragment in _HOST_NOT_FOUND_TEXT):
        return host_not_found(host)
    if any(fragment in text for fragment in _REFUSED_TEXT):
        return refused(host, port)
    if any(fragment in text for fragment in _TIMEOUT_TEXT):
        return timed_out(timeout, host, port)
    return None


def config_port(value: object, default: int) -> int:
    """The ``port`` config as an int (the catalog fills the default; this covers a target built
    by hand)."""
    if value is None or value == "":
        return default
    return int(str(value))
