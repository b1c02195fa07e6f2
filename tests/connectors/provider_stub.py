"""A loopback HTTP server that plays one provider's verification endpoint, for contract tests.

Each messaging test gives :class:`ProviderStub` a ``respond`` function that implements the
documented request checks of the endpoint (method, path, auth header, body) and returns the
documented answer for what it got: the connection test under test then meets the same
contract the real provider documents, on 127.0.0.1. These are contract tests, not live tests:
they prove flowcred speaks the documented protocol, not that the provider still does.

:func:`target` builds a :class:`TestTarget` through the shipped catalog, so the catalog YAML
(fields, defaults, ``api_base_url``) is exercised too.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from flowcred.catalog import default_catalog
from flowcred.connectors.base import ConnectionTestError, TestTarget
from flowcred.redaction import Secret

CANARY = "CANARY-7f3e9a1c-do-not-print"
TIMEOUT = 3.0


@dataclass
class Seen:
    """One request as the stub received it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


Responder = Callable[[Seen], Answer]


class ProviderStub:
    """A threaded HTTP/1.1 server on 127.0.0.1 answering with ``respond``; ``seen`` records
    every request."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.seen: list[Seen] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                stub.seen.append(seen)
                answer = stub.respond(seen)
                payload = b"" if answer.body is None else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ProviderStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def running_stubs() -> Iterator[Callable[[Responder], ProviderStub]]:
    """Body of a test module's ``provider_stub`` fixture: start stubs on demand, stop them all
    at the end of the test (``yield from running_stubs()``)."""
    started: list[ProviderStub] = []

    def start(respond: Responder) -> ProviderStub:
        stub = ProviderStub(respond).__enter__()
        started.append(stub)
        return stub

    yield start
    for stub in started:
        stub.__exit__(None, None, None)


def target(type_name: str, config: Mapping[str, Any], secret: Mapping[str, Any]) -> TestTarget:
    """A TestTarget for ``type_name`` validated (and defaulted) by the shipped catalog."""
    ctype = default_catalog().get(type_name)
    clean_config, clean_secret = ctype.validate(config, secret)
    wrapped = {
        name: Secret(value if isinstance(value, str) else json.dumps(value))
        for name, value in clean_secret.items()
    }
    return TestTarget(type=ctype.name, config=clean_config, secret=wrapped)


def failure(check: Callable[[], str]) -> str:
    """The message of the ConnectionTestError ``check`` must raise."""
    with pytest.raises(ConnectionTestError) as caught:
        check()
    return str(caught.value)


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
