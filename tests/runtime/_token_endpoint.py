"""A scripted loopback HTTP endpoint for grant tests.

Queue responses with :meth:`ScriptedEndpoint.queue` (status, JSON body, headers, delay); each
request pops the next one (an empty queue answers 500) and is recorded with its method, path,
form body and Authorization header. Static routes (discovery, JWKS) answer every GET to a path.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    form: dict[str, str]
    authorization: str | None


class ScriptedEndpoint:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.routes: dict[str, Reply] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                path = self.path.split("?")[0]
                with endpoint._lock:
                    endpoint.requests.append(
                        Seen(method, path, form, self.headers.get("Authorization"))
                    )
                    reply = endpoint.routes.get(path) if method == "GET" else None
                    if reply is None:
                        reply = endpoint.replies.popleft() if endpoint.replies else Reply(500)
                if reply.delay:
                    time.sleep(reply.delay)
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:
                self._answer("POST")

            def do_GET(self) -> None:
                self._answer("GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.token_url = f"{self.base}/token"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def queue(
        self,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        with self._lock:
            self.replies.append(Reply(status, body, headers or {}, delay))

    def route(self, path: str, body: Any, status: int = 200) -> None:
        with self._lock:
            self.routes[path] = Reply(status, body)

    def posts(self) -> list[Seen]:
        return [r for r in self.requests if r.method == "POST"]

    def gets(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == "GET" and r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[ScriptedEndpoint]:
    ep = ScriptedEndpoint()
    try:
        yield ep
    finally:
        ep.close()
