"""Endpoints that fail in the three network ways, and the checks every live family shares.

- :func:`closed_port`: a loopback port nothing listens on (connection refused).
- :func:`silent_server`: a loopback port whose kernel completes the TCP handshake (the socket
  listens) but nobody ever reads or writes, so every driver waits for its greeting and times out.
- ``UNRESOLVABLE``: a name under ``.invalid`` (RFC 6761), which never resolves.

:func:`assert_network_failures` runs a family's test against all three and checks the shared
messages, and that the canary secret appears in none of them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget
from flowcred.redaction import Secret

UNRESOLVABLE = "no-such-host.invalid"


def canary(label: str) -> str:
    """A unique secret-looking value a test plants and then looks for in every message."""
    return f"canary-{label}-{secrets.token_hex(8)}"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def free_port() -> int:
    """A port free right now, for servers that cannot bind port 0 themselves."""
    return closed_port()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def target(type_: str, config: dict[str, object], **secret: str) -> TestTarget:
    return TestTarget(
        type=type_, config=config, secret={name: Secret(value) for name, value in secret.items()}
    )


def failure(test: ConnectionTest, tgt: TestTarget, timeout: float = 5.0) -> str:
    """The message of the test's expected failure."""
    with pytest.raises(ConnectionTestError) as caught:
        test.check(tgt, timeout)
    return str(caught.value)


def wait_for_port(port: int, deadline_s: float = 10.0) -> None:
    """Block until something accepts on 127.0.0.1:port (a subprocess server has started)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {deadline_s} s")


def assert_network_failures(
    test: ConnectionTest,
    make_target: Callable[[str, int], TestTarget],
    planted: str,
    timeout: float = 1.0,
) -> None:
    """Wrong host, closed port and a silent server each give their own message, in bounded
    time, and none carries the planted secret."""
    messages: list[str] = []

    message = failure(test, make_target(UNRESOLVABLE, 5000))
    assert message == f"host not found: {UNRESOLVABLE}", message
    messages.append(message)

    port = closed_port()
    message = failure(test, make_target("127.0.0.1", port))
    assert message == f"connection refused by 127.0.0.1:{port}", message
    messages.append(message)

    with silent_server() as port:
        started = time.monotonic()
        message = failure(test, make_target("127.0.0.1", port), timeout)
        took = time.monotonic() - started
    assert message == f"timed out after {timeout:g} s talking to 127.0.0.1:{port}", message
    assert took < timeout + 2.5, f"the test took {took:.1f} s for a {timeout} s timeout"
    messages.append(message)

    for message in messages:
        assert planted not in message


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"
