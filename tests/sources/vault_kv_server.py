"""A loopback HTTP server answering the HashiCorp Vault endpoints the vault source uses.

No Vault server can be installed on these machines, so the vault source is tested against this
implementation of the documented API (https://developer.hashicorp.com/vault/api-docs):

* ``GET /v1/{mount}/data/{path}`` (KV v2 read, ``X-Vault-Token`` header): 200 with
  ``{"data": {"data": {...}, "metadata": {...}}}``; 404 ``{"errors": []}`` for no such secret;
  403 ``{"errors": ["permission denied"]}`` for a missing, unknown or revoked token, or a token
  whose policy does not cover the path;
* ``POST /v1/auth/approle/login`` with ``{"role_id", "secret_id"}``: 200 with
  ``{"auth": {"client_token": ...}}``; 400 ``{"errors": ["invalid role or secret ID"]}``.

Every request is counted in ``requests`` (method, path) so tests can assert what was asked.
"""

from __future__ import annotations

import json
import secrets
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeVault:
    def __init__(self, mount: str = "secret") -> None:
        self.mount = mount
        self.kv: dict[str, dict[str, Any]] = {}
        self.root_token = "hvs." + secrets.token_urlsafe(18)
        self.tokens: dict[str, str | None] = {self.root_token: None}  # token -> path prefix
        self.approles: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeVault:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def put(self, path: str, data: dict[str, Any]) -> None:
        self.kv.setdefault(path.strip("/"), {}).update(data)

    def token_for(self, prefix: str) -> str:
        """A token whose policy reads only paths under ``prefix``."""
        token = "hvs." + secrets.token_urlsafe(18)
        self.tokens[token] = prefix
        return token

    def add_approle(self) -> tuple[str, str]:
        role_id, secret_id = secrets.token_hex(8), secrets.token_hex(16)
        self.approles[role_id] = secret_id
        return role_id, secret_id

    def revoke_all(self) -> None:
        """Every token issued so far stops working (an AppRole token expiring)."""
        self.tokens = {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                vault.requests.append(("GET", self.path))
                prefix = f"/v1/{vault.mount}/data/"
                if not self.path.startswith(prefix):
                    return self._answer(404, {"errors": []})
                path = self.path[len(prefix) :].split("?", 1)[0].strip("/")
                token = self.headers.get("X-Vault-Token")
                if token not in vault.tokens:
                    return self._answer(403, {"errors": ["permission denied"]})
                allowed = vault.tokens[token]
                if allowed is not None and not path.startswith(allowed):
                    return self._answer(403, {"errors": ["permission denied"]})
                data = vault.kv.get(path)
                if data is None:
                    return self._answer(404, {"errors": []})
                now = datetime.now(UTC).isoformat()
                return self._answer(
                    200,
                    {
                        "request_id": secrets.token_hex(8),
                        "lease_id": "",
                        "renewable": False,
                        "lease_duration": 0,
                        "data": {
                            "data": data,
                            "metadata": {
                                "created_time": now,
                                "custom_metadata": None,
                                "deletion_time": "",
                                "destroyed": False,
                                "version": 1,
                            },
                        },
                        "wrap_info": None,
                        "warnings": None,
                        "auth": None,
                    },
                )

            def do_POST(self) -> None:
                vault.requests.append(("POST", self.path))
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    return self._answer(400, {"errors": ["failed to parse JSON input"]})
                if self.path != "/v1/auth/approle/login":
                    return self._answer(404, {"errors": []})
                role_id, secret_id = body.get("role_id"), body.get("secret_id")
                if not role_id or vault.approles.get(role_id) != secret_id:
                    return self._answer(400, {"errors": ["invalid role or secret ID"]})
                token = "hvs." + secrets.token_urlsafe(18)
                vault.tokens[token] = None
                return self._answer(
                    200,
                    {
                        "auth": {
                            "client_token": token,
                            "accessor": secrets.token_hex(8),
                            "policies": ["default"],
                            "token_policies": ["default"],
                            "lease_duration": 3600,
                            "renewable": True,
                        }
                    },
                )

        return Handler
