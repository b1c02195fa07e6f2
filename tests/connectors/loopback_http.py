"""A loopback HTTP server for the connection-test tests: it checks a credential the way a real
API does (a header, a query parameter, a cookie, a bearer token, basic auth) and can redirect
or hang.

Paths:
* ``/header?name=N&want=V``, ``/query?...``, ``/cookie?...``: 200 when header / query
  parameter / cookie ``N`` equals ``V``, else 401;
* ``/bearer?want=T``: 200 for ``Authorization: Bearer T``; ``/basic?user=U&want=P`` likewise;
* ``/redirect?to=URL``: 302 to ``URL``; ``/hang``: answers after 30 s (or on shutdown);
* ``/echo``: 401 with the request's headers and query in the body (a server echoing input).

Every request is recorded in ``seen`` (path, query, headers) for assertions.
"""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Loopback:
    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@contextmanager
def loopback_server() -> Iterator[Loopback]:
    state = Loopback(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            headers = dict(self.headers.items())
            state.seen.append({"path": parts.path, "query": query, "headers": headers})
            want = query.get("want")
            name = query.get("name", "X-API-Key")
            ok = False
            if parts.path == "/header":
                ok = self.headers.get(name) == want
            elif parts.path == "/query":
                ok = query.get(name) == want
            elif parts.path == "/cookie":
                cookies = SimpleCookie(self.headers.get("Cookie", ""))
                ok = name in cookies and cookies[name].value == want
            elif parts.path == "/bearer":
                ok = self.headers.get("Authorization") == f"Bearer {want}"
            elif parts.path == "/basic":
                pair = f"{query.get('user')}:{want}".encode()
                ok = self.headers.get("Authorization") == "Basic " + base64.b64encode(pair).decode(
                    "ascii"
                )
            elif parts.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", query["to"])
                self.end_headers()
                return
            elif parts.path == "/hang":
                state.release.wait(30)
            elif parts.path == "/echo":
                body = f"bad credential: {headers} {parts.query}".encode()
                self.send_response(401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            ok = ok and want is not None  # a check with nothing to compare never passes
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok" if ok else b"no")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
