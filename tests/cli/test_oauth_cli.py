"""``flowcred oauth authorize [--listen]`` and ``oauth status`` against a loopback provider.

The provider is a minimal token endpoint on 127.0.0.1 recording what it was sent; the exchange
seam POSTs to it (RFC 6749 §4.1.3). ``make_flow`` is replaced by one wired to that seam and a
recording sink (the token manager and GrantClient are not merged yet); the protocol itself --
the listener, the redirect, the token request -- runs over real sockets.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from typer.testing import CliRunner

from flowcred.broker import open_broker
from flowcred.cli import oauth as cli_oauth
from flowcred.cli.main import app
from flowcred.runtime.authorization import AuthorizationFlow
from flowcred.runtime.token_set import TokenSet

runner = CliRunner()
CLIENT_SECRET = "cli-canary-client-secret-" + "q" * 12
ACCESS_TOKEN = "cli-canary-access-token-" + "a" * 12
CODE = "cli-canary-code-" + "c" * 12


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def provider() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            auth = self.headers.get("Authorization", "")
            basic = base64.b64decode(auth[6:]).decode() if auth.startswith("Basic ") else None
            received.append({"form": form, "basic": basic})
            body = json.dumps(
                {"access_token": ACCESS_TOKEN, "expires_in": 600, "scope": "repo"}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def exchange_code(
    token_url: str,
    client: Any,
    code: str,
    *,
    redirect_uri: str,
    code_verifier: str,
    keep: tuple[str, ...] = (),
    default_lifetime: float | None = None,
) -> TokenSet:
    response = httpx.post(
        token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        },
        auth=(client.client_id, client.client_secret or ""),
        timeout=10,
    )
    response.raise_for_status()
    return TokenSet.from_response(response.json(), now=datetime.now(UTC))


@pytest.fixture
def wired(
    monkeypatch: pytest.MonkeyPatch, provider: tuple[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """A credential of the generic oauth2 type, and make_flow wired to the loopback provider."""
    base, received = provider
    with open_broker() as broker:
        record = broker.credentials.create(
            name="GitHub app",
            type="oauth2",
            config={
                "authorization_url": f"{base}/authorize",
                "token_url": f"{base}/token",
                "client_id": "cli-client",
                "scopes": ["repo"],
            },
            secret={"client_secret": CLIENT_SECRET},
        )
    urls: queue.Queue[str] = queue.Queue()
    sunk: list[tuple[int, str, TokenSet, Any]] = []

    def sink(credential_id: int, tenant: str, tokens: TokenSet, *, access: Any) -> None:
        sunk.append((credential_id, tenant, tokens, access))

    class RecordingFlow(AuthorizationFlow):
        def start(self, *args: Any, **kwargs: Any) -> str:
            url = super().start(*args, **kwargs)
            urls.put(url)
            return url

    def make_flow(broker: Any) -> AuthorizationFlow:
        return RecordingFlow(broker, exchange=exchange_code, on_tokens=sink)

    monkeypatch.setattr(cli_oauth, "make_flow", make_flow)
    return {"id": record.id, "urls": urls, "sunk": sunk, "received": received, "base": base}


def _run_in_thread(*args: str) -> tuple[threading.Thread, list[tuple[int, str, str]]]:
    out: list[tuple[int, str, str]] = []
    thread = threading.Thread(target=lambda: out.append(cli(*args)), daemon=True)
    thread.start()
    return thread, out


def test_authorize_prints_the_providers_url(wired: dict[str, Any]) -> None:
    code, out, err = cli("oauth", "authorize", str(wired["id"]))
    assert code == 0, err
    url = out.strip()
    assert url.startswith(f"{wired['base']}/authorize?")
    query = _query(url)
    assert query["redirect_uri"] == "http://127.0.0.1:8700/api/oauth/callback"
    assert query["code_challenge_method"] == "S256" and query["client_id"] == "cli-client"
    assert CLIENT_SECRET not in out + err


def test_authorize_listen_completes_through_the_loopback_listener(wired: dict[str, Any]) -> None:
    thread, out = _run_in_thread("oauth", "authorize", str(wired["id"]), "--listen", "--json")
    query = _query(wired["urls"].get(timeout=30))
    redirect = query["redirect_uri"]
    assert redirect.startswith("http://127.0.0.1:") and redirect.endswith("/callback")
    # The browser, after consent: the provider redirects it to the listener.
    page = httpx.get(redirect, params={"state": query["state"], "code": CODE}, timeout=30)
    assert page.status_code == 200 and "Authorized" in page.text
    thread.join(timeout=30)
    [(code, stdout, stderr)] = out
    assert code == 0, stderr
    result = json.loads(stdout)  # the URL went to stderr: stdout is the result alone
    assert result["credentialId"] == wired["id"] and result["status"] == "authorized"
    assert result["scopes"] == ["repo"]
    [sent] = wired["received"]
    assert sent["form"]["code"] == CODE and sent["form"]["redirect_uri"] == redirect
    assert create_s256_code_challenge(sent["form"]["code_verifier"]) == query["code_challenge"]
    assert sent["basic"] == f"cli-client:{CLIENT_SECRET}"
    [(cid, tenant, tokens, access)] = wired["sunk"]
    assert (cid, tenant) == (wired["id"], "default") and tokens.access_token == ACCESS_TOKEN
    assert access.actor.kind == "user"
    for canary in (CODE, sent["form"]["code_verifier"], ACCESS_TOKEN, CLIENT_SECRET):
        assert canary not in stdout + stderr


def test_authorize_listen_reports_a_provider_refusal(wired: dict[str, Any]) -> None:
    thread, out = _run_in_thread("oauth", "authorize", str(wired["id"]), "--listen")
    query = _query(wired["urls"].get(timeout=30))
    page = httpx.get(
        query["redirect_uri"],
        params={"state": query["state"], "error": "access_denied"},
        timeout=30,
    )
    assert page.status_code == 200 and "provider_error" in page.text
    thread.join(timeout=30)
    [(code, _stdout, stderr)] = out
    assert code == 1
    assert "the provider refused the authorization" in stderr
    assert wired["sunk"] == [] and wired["received"] == []


def test_authorize_listen_gives_up_after_the_timeout(wired: dict[str, Any]) -> None:
    code, _out, err = cli("oauth", "authorize", str(wired["id"]), "--listen", "--timeout", "1")
    assert code == 1
    assert "no redirect from the browser in time" in err
    assert wired["sunk"] == [] and wired["received"] == []


def test_status_of_a_credential_not_yet_authorised(wired: dict[str, Any]) -> None:
    code, out, err = cli("oauth", "status", str(wired["id"]))
    assert code == 0, err
    assert "not_authorized" in out


def test_status_after_tokens_shows_state_expiry_and_scopes_never_a_token(
    authz_server: Any,
) -> None:
    authz_server.register_client("m2m-cli", "m2m-cli-secret", grant_types=("client_credentials",))
    with open_broker() as broker:
        cid = broker.credentials.create(
            name="CLI m2m",
            type="oauth2_client_credentials",
            config={
                "token_url": authz_server.token_url,
                "client_id": "m2m-cli",
                "scopes": ["reports:read"],
            },
            secret={"client_secret": "m2m-cli-secret"},
        ).id
        token = broker.provider().resolve(cid).fields["access_token"].reveal()
    code, out, err = cli("oauth", "status", str(cid))
    assert code == 0, err
    assert "active" in out and "reports:read" in out
    code, out_json, _ = cli("oauth", "status", str(cid), "--json")
    assert code == 0 and '"state": "active"' in out_json
    for text in (out, out_json, err):
        assert token not in text and "m2m-cli-secret" not in text
