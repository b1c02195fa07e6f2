"""Turn a driver's network exception into the short words a person acts on.

Drivers wrap the operating system's error in their own types and messages (pymongo's
``ServerSelectionTimeoutError``, pytds' ``LoginError``, oracledb's ``DPY-6005``, httpx's
``ConnectError``), and some of those messages repeat the connection string, which may hold a
password. So a test never shows a driver's text: it asks :func:`network_reason` for one of a
few fixed phrases ("connection refused", "timed out", "host not found", "TLS handshake
failed"), found from the exception chain first and from well-known words in the text second,
and builds its own message from that. ``None`` means "not a network failure": the caller
decides what else it is (usually an authentication failure).
"""

from __future__ import annotations

import socket
import ssl

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

_MAX_CHAIN = 16  # a bounded walk: exception chains can be cyclic in the presence of bugs


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < _MAX_CHAIN:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


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
    chain = _chain(exc)
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
