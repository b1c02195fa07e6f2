"""Small loopback HTTP servers the browser tests talk to besides flowcred.

* :func:`key_server` plays a third-party API for Test Connection: it answers 200 only when the
  ``X-API-Key`` header is one of ``accepted`` (a set the test changes, e.g. after a rotation),
  else 401. The key is compared from the header only, so the Test URL the form stores holds no
  secret (a ``?want=<key>`` URL would put the canary on the detail page).
* :func:`origin_server` is "another site" on another loopback port: it serves pages the test
  sets (``pages[path] = html``) and one script, ``/submit.js``, that submits the page's first
  form. Its pages have no Content-Security-Policy: the attack page is the test's own.

Both bind 127.0.0.1 on a free port and stop when the ``with`` block ends.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

SUBMIT_JS = b"document.forms[0].submit();\n"


@dataclass
class KeyServer:
    url: str
    accepted: set[str] = field(default_factory=set)
    #: How many requests presented an accepted key / any other key (never the keys themselves).
    hits: dict[str, int] = field(default_factory=lambda: {"accepted": 0, "refused": 0})


@dataclass
class OriginServer:
    url: str
    pages: dict[str, str] = field(default_factory=dict)


@contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _answer(
    handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes, kind: str
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Cache-Control", "no-store")
    handler.end_headers()
    handler.wfile.write(body)


@contextmanager
def key_server() -> Iterator[KeyServer]:
    state = KeyServer(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.headers.get("X-API-Key") in state.accepted
            state.hits["accepted" if ok else "refused"] += 1
            _answer(self, 200 if ok else 401, b"ok" if ok else b"no", "text/plain")

        def log_message(self, *args: object) -> None:
            pass

    with _serving(Handler) as url:
        state.url = url
        yield state


@contextmanager
def origin_server() -> Iterator[OriginServer]:
    state = OriginServer(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/submit.js":
                _answer(self, 200, SUBMIT_JS, "text/javascript")
            elif path in state.pages:
                _answer(self, 200, state.pages[path].encode(), "text/html; charset=utf-8")
            else:
                _answer(self, 404, b"not here", "text/plain")

        def log_message(self, *args: object) -> None:
            pass

    with _serving(Handler) as url:
        state.url = url
        yield state
