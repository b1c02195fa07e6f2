"""Item 3 over REST: a developer key (which may not resolve) cannot send a secret elsewhere.

The attacker's server is a loopback HTTP server that records every request it receives. Refusals
are 403 (an AccessDenied: the key is known, its role lacks the right to redirect a secret), name
the fields and never their values, and change nothing.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

CREDS = "/api/credentials"


@pytest.fixture
def attacker() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A loopback HTTP server recording the headers of every request; answers 200."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/steal", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _patch(env: Any, cid: int, body: dict[str, Any], role: str = "developer") -> Any:
    return env.client.patch(f"{CREDS}/{cid}", json=body, headers=env.headers(role, "acme"))


def test_developer_cannot_patch_test_url_and_test_to_receive_the_secret(
    api_env: Any, attacker: tuple[str, list[dict[str, str]]]
) -> None:
    url, seen = attacker
    cred = api_env.seed(secret={"api_key": "sk_live_victim_secret_1"})
    refused = _patch(api_env, cred.id, {"config": {"test_url": url}})
    assert refused.status_code == 403, refused.text
    assert "config.test_url" in refused.text
    assert "127.0.0.1" not in refused.text and "sk_live" not in refused.text
    assert "test_url" not in api_env.broker.credentials.get(cred.id).config
    tested = api_env.client.post(
        f"{CREDS}/{cred.id}/test", headers=api_env.headers("developer", "acme")
    )
    assert tested.status_code == 422  # still no test_url: nothing is sent anywhere
    assert seen == []


def test_developer_may_patch_test_url_when_it_sends_the_secret_again(
    api_env: Any, attacker: tuple[str, list[dict[str, str]]]
) -> None:
    url, seen = attacker
    cred = api_env.seed(secret={"api_key": "sk_live_victim_secret_2"})
    allowed = _patch(
        api_env, cred.id, {"config": {"test_url": url}, "secretValue": "developer-own-key-1"}
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["config"]["test_url"] == url
    tested = api_env.client.post(
        f"{CREDS}/{cred.id}/test", headers=api_env.headers("developer", "acme")
    )
    assert tested.status_code == 200, tested.text
    assert [h.get("X-API-Key") for h in seen] == ["developer-own-key-1"]
    versions = api_env.client.get(
        f"{CREDS}/{cred.id}/versions", headers=api_env.headers("developer", "acme")
    ).json()
    assert [v["version"] for v in versions] == [2, 1]


def test_developer_cannot_move_a_database_host(api_env: Any) -> None:
    cred = api_env.seed(
        type="postgres",
        config={"host": "db.internal", "database": "app", "username": "svc"},
        secret={"password": "pg-password-1"},
    )
    refused = _patch(api_env, cred.id, {"config": {"host": "127.0.0.1", "port": 15432}})
    assert refused.status_code == 403, refused.text
    assert "config.host" in refused.text and "config.port" in refused.text
    record = api_env.broker.credentials.get(cred.id)
    assert record.config["host"] == "db.internal" and record.config["port"] == 5432
    # Changing something else in the same request does not happen either.
    refused = _patch(api_env, cred.id, {"name": "renamed", "config": {"host": "127.0.0.1"}})
    assert refused.status_code == 403
    assert api_env.broker.credentials.get(cred.id).name != "renamed"
    ok = _patch(
        api_env,
        cred.id,
        {"config": {"host": "db2.internal"}, "secret": {"password": "pg-password-2"}},
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("type_name", "config", "secret"),
    [
        (
            "oauth2_client_credentials",
            {"token_url": "https://auth.example.com/token", "client_id": "app"},
            {"client_secret": "client-secret-1"},
        ),
        (
            "oauth2",
            {
                "authorization_url": "https://auth.example.com/authorize",
                "token_url": "https://auth.example.com/token",
                "client_id": "app",
            },
            {"client_secret": "client-secret-2"},
        ),
    ],
)
def test_developer_cannot_move_an_oauth_token_url(
    api_env: Any, type_name: str, config: dict[str, Any], secret: dict[str, Any]
) -> None:
    cred = api_env.seed(type=type_name, config=config, secret=secret)
    refused = _patch(api_env, cred.id, {"config": {"token_url": "http://127.0.0.1:9/token"}})
    assert refused.status_code == 403, refused.text
    assert "config.token_url" in refused.text
    record = api_env.broker.credentials.get(cred.id)
    assert record.config["token_url"] == "https://auth.example.com/token"
    # A platform admin may resolve, so it may move the token URL without the secret.
    admin = api_env.client.patch(
        f"{CREDS}/{cred.id}",
        json={"config": {"token_url": "https://auth2.example.com/token"}},
        headers=api_env.admin(),
    )
    assert admin.status_code == 200, admin.text
    assert api_env.broker.credentials.get(cred.id).current_version == 1


def test_tenant_admin_may_move_a_host_without_the_secret(api_env: Any) -> None:
    cred = api_env.seed(
        type="postgres",
        config={"host": "db.internal", "database": "app", "username": "svc"},
        secret={"password": "pg-password-3"},
    )
    ok = _patch(api_env, cred.id, {"config": {"host": "db3.internal"}}, role="admin")
    assert ok.status_code == 200, ok.text
    assert ok.json()["config"]["host"] == "db3.internal"
