"""The authorization-code front door over real sockets: flowcred served by uvicorn, a loopback
token endpoint playing the provider, httpx playing the browser.

Until the test authorization server (tests/oauth_support) lands, the provider here is a minimal
token endpoint that records what it was sent (code, code_verifier, redirect_uri, client
authentication) and answers a token JSON; the exchange seam is a plain RFC 6749 §4.1.3 POST to
it. The "browser" reads the authorization URL flowcred redirects to and calls the callback as
the provider would after consent.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import select

from flowcred.audit import Access
from flowcred.clock import ManualClock
from flowcred.runtime.authorization import AuthorizationFlow
from flowcred.runtime.token_set import TokenSet
from flowcred.store.oauth_states import OAuthStateStore
from flowcred.store.tables import oauth_states

CLIENT_SECRET = "canary-client-secret-" + "q" * 16
ACCESS_TOKEN = "canary-access-token-" + "a" * 16
REFRESH_TOKEN = "canary-refresh-token-" + "r" * 16
ID_TOKEN = "canary.idtoken." + "i" * 16
CODE = "canary-auth-code-" + "c" * 16


# -- the provider's token endpoint ----------------------------------------------------------


@dataclass
class TokenEndpoint:
    """Records each token request's form and client authentication."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


def _start_token_endpoint() -> tuple[ThreadingHTTPServer, TokenEndpoint]:
    endpoint = TokenEndpoint(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            auth = self.headers.get("Authorization", "")
            basic = base64.b64decode(auth[6:]).decode() if auth.startswith("Basic ") else None
            endpoint.requests.append({"path": self.path, "form": form, "basic": basic})
            body = json.dumps(
                {
                    "access_token": ACCESS_TOKEN,
                    "refresh_token": REFRESH_TOKEN,
                    "id_token": ID_TOKEN,
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": "openid profile",
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, endpoint


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
    """The exchange seam: RFC 6749 §4.1.3 with client_secret_basic, as GrantClient does."""
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
    return TokenSet.from_response(
        response.json(), now=datetime.now(UTC), keep=keep, default_lifetime=default_lifetime
    )


@dataclass
class Sink:
    calls: list[tuple[int, str, TokenSet, Access]] = field(default_factory=list)

    def __call__(
        self, credential_id: int, tenant: str, tokens: TokenSet, *, access: Access
    ) -> None:
        self.calls.append((credential_id, tenant, tokens, access))


@dataclass
class IdCheck:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, id_token: str, **kw: Any) -> dict[str, Any]:
        self.calls.append({"id_token": id_token, **kw})
        return {"sub": "user-1"}


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[TokenEndpoint]:
    server, endpoint = _start_token_endpoint()
    yield endpoint
    server.shutdown()
    server.server_close()


@dataclass
class Flow:
    env: Any
    base: str
    http: httpx.Client
    provider: TokenEndpoint
    sink: Sink
    id_check: IdCheck
    flow: AuthorizationFlow
    credential_id: int
    responses: list[httpx.Response] = field(default_factory=list)

    def authorize(self, role: str = "developer", tenant: str = "acme", **params: str) -> str:
        response = self.http.get(
            f"/api/oauth/{self.credential_id}/authorize",
            headers=self.env.headers(role, tenant),
            params=params,
        )
        self.responses.append(response)
        assert response.status_code == 302, response.text
        return response.headers["location"]

    def callback(self, **params: str) -> httpx.Response:
        response = self.http.get("/api/oauth/callback", params=params)  # no API key
        self.responses.append(response)
        return response


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def make_flow(
    env: Any,
    serve: Any,
    provider: TokenEndpoint,
    *,
    scopes: list[str] | None = None,
    clock: ManualClock | None = None,
) -> Flow:
    sink, id_check = Sink(), IdCheck()
    broker = env.broker
    states = None
    if clock is not None:
        states = OAuthStateStore(
            broker.engine,
            ring=lambda: broker._rings.current,
            ring_for=broker._rings.covering,
            clock=clock,
        )
    flow = AuthorizationFlow(
        broker,
        exchange=exchange_code,
        on_tokens=sink,
        validate_id_token=id_check,
        states=states,
    )
    env.app.state.oauth_flow = flow
    record = env.seed(
        "acme",
        type="oauth2",
        config={
            "authorization_url": f"{provider.url}/authorize",
            "token_url": f"{provider.url}/token",
            "client_id": "flowcred-client",
            "scopes": scopes if scopes is not None else ["openid", "profile"],
        },
        secret={"client_secret": CLIENT_SECRET},
    )
    base = serve(env.app)
    http = httpx.Client(base_url=base, follow_redirects=False, timeout=10)
    return Flow(env, base, http, provider, sink, id_check, flow, record.id)


@pytest.fixture
def flow(api_env: Any, serve: Any, provider: TokenEndpoint) -> Iterator[Flow]:
    made = make_flow(api_env, serve, provider)
    yield made
    made.http.close()


# -- tests ----------------------------------------------------------------------------------


def test_authorize_redirects_to_the_provider_with_state_s256_challenge_and_nonce(
    flow: Flow,
) -> None:
    location = flow.authorize()
    assert location.startswith(f"{flow.provider.url}/authorize?")
    query = _query(location)
    assert query["response_type"] == "code"
    assert query["client_id"] == "flowcred-client"
    assert query["redirect_uri"] == "http://127.0.0.1:8700/api/oauth/callback"
    assert query["scope"] == "openid profile"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43 and len(query["nonce"]) >= 43
    # Each authorization gets its own state, challenge and nonce.
    again = _query(flow.authorize())
    assert {again[k] for k in ("state", "code_challenge", "nonce")}.isdisjoint(
        {query[k] for k in ("state", "code_challenge", "nonce")}
    )


def test_no_nonce_without_openid(api_env: Any, serve: Any, provider: TokenEndpoint) -> None:
    made = make_flow(api_env, serve, provider, scopes=["repo"])
    try:
        query = _query(made.authorize())
        assert "nonce" not in query and query["scope"] == "repo"
        response = made.callback(state=query["state"], code=CODE)
        assert response.status_code == 200, response.text
        assert made.id_check.calls == []
    finally:
        made.http.close()


def test_authorize_can_answer_json(flow: Flow) -> None:
    for kwargs in ({"params": {"redirect": "false"}}, {"headers": {"Accept": "application/json"}}):
        headers = {**flow.env.headers("admin", "acme"), **kwargs.get("headers", {})}
        response = flow.http.get(
            f"/api/oauth/{flow.credential_id}/authorize",
            headers=headers,
            params=kwargs.get("params"),
        )
        assert response.status_code == 200
        assert response.json()["authorizationUrl"].startswith(f"{flow.provider.url}/authorize?")


def test_callback_exchanges_the_code_with_the_matching_verifier_and_calls_the_sink_once(
    flow: Flow,
) -> None:
    query = _query(flow.authorize())
    response = flow.callback(
        state=query["state"],
        code=CODE,
        scope="openid profile",
        session_state="abc",
        iss=flow.provider.url,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"credentialId": flow.credential_id, "status": "authorized"}

    [sent] = flow.provider.requests
    assert sent["path"] == "/token"
    assert sent["form"]["grant_type"] == "authorization_code"
    assert sent["form"]["code"] == CODE
    assert sent["form"]["redirect_uri"] == query["redirect_uri"]
    assert create_s256_code_challenge(sent["form"]["code_verifier"]) == query["code_challenge"]
    assert sent["basic"] == f"flowcred-client:{CLIENT_SECRET}"

    [(cid, tenant, tokens, access)] = flow.sink.calls
    assert (cid, tenant) == (flow.credential_id, "acme")
    assert tokens.access_token == ACCESS_TOKEN and tokens.refresh_token == REFRESH_TOKEN
    developer = flow.env.broker.api_keys.authenticate(flow.env.keys[("developer", "acme")])
    assert access.actor.kind == "api_key" and access.actor.id == developer.id

    [checked] = flow.id_check.calls
    assert checked["id_token"] == ID_TOKEN and checked["nonce"] == query["nonce"]
    assert checked["client_id"] == "flowcred-client"


def test_a_replayed_state_is_refused(flow: Flow) -> None:
    state = _query(flow.authorize())["state"]
    assert flow.callback(state=state, code=CODE).status_code == 200
    replay = flow.callback(state=state, code=CODE)
    assert replay.status_code == 400
    assert replay.json()["reason"] == "invalid_state"
    assert len(flow.sink.calls) == 1 and len(flow.provider.requests) == 1


def test_racing_callbacks_complete_once(flow: Flow) -> None:
    state = _query(flow.authorize())["state"]
    statuses: list[int] = []

    def call() -> None:
        with httpx.Client(base_url=flow.base, timeout=10) as client:
            statuses.append(
                client.get("/api/oauth/callback", params={"state": state, "code": CODE}).status_code
            )

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200] + [400] * 5
    assert len(flow.sink.calls) == 1 and len(flow.provider.requests) == 1


def test_unknown_and_foreign_states_are_refused(
    flow: Flow, make_api_env: Any, serve: Any, provider: TokenEndpoint
) -> None:
    unknown = flow.callback(state=secrets.token_urlsafe(32), code=CODE)
    assert unknown.status_code == 400 and unknown.json()["reason"] == "invalid_state"
    missing = flow.callback(code=CODE)
    assert missing.status_code == 400 and missing.json()["reason"] == "invalid_state"
    # A state issued by another flowcred store means nothing here.
    other = make_flow(make_api_env(), serve, provider)
    try:
        foreign_state = _query(other.authorize())["state"]
        foreign = flow.callback(state=foreign_state, code=CODE)
        assert foreign.status_code == 400 and foreign.json()["reason"] == "invalid_state"
    finally:
        other.http.close()
    assert flow.sink.calls == [] and flow.provider.requests == []


def test_an_expired_state_is_refused_and_pruned(
    api_env: Any, serve: Any, provider: TokenEndpoint
) -> None:
    clock = ManualClock(datetime.now(UTC))
    made = make_flow(api_env, serve, provider, clock=clock)
    try:
        state = _query(made.authorize())["state"]
        clock.advance(601)
        expired = made.callback(state=state, code=CODE)
        assert expired.status_code == 400 and expired.json()["reason"] == "invalid_state"
        assert made.sink.calls == [] and made.provider.requests == []
        assert made.flow.states.prune() == 1
        assert made.flow.states.pending_count() == 0
    finally:
        made.http.close()


def test_a_provider_error_is_refused_and_burns_the_state(flow: Flow) -> None:
    state = _query(flow.authorize())["state"]
    response = flow.callback(
        state=state, error="access_denied", error_description="The user said no"
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "provider_error"
    assert response.json()["oauthError"] == "access_denied"
    assert "said no" not in response.text
    assert flow.callback(state=state, code=CODE).json()["reason"] == "invalid_state"
    assert flow.sink.calls == [] and flow.provider.requests == []


@pytest.mark.parametrize("role", ["viewer", "worker"])
def test_authorize_refuses_roles_other_than_admin_and_developer(flow: Flow, role: str) -> None:
    response = flow.http.get(
        f"/api/oauth/{flow.credential_id}/authorize", headers=flow.env.headers(role, "acme")
    )
    assert response.status_code == 403
    assert flow.http.get(f"/api/oauth/{flow.credential_id}/authorize").status_code == 401


def test_authorize_hides_another_tenants_credential(flow: Flow) -> None:
    response = flow.http.get(
        f"/api/oauth/{flow.credential_id}/authorize", headers=flow.env.headers("admin", "globex")
    )
    assert response.status_code == 404


def test_callback_refuses_unknown_query_parameters(flow: Flow) -> None:
    state = _query(flow.authorize())["state"]
    response = flow.callback(state=state, code=CODE, api_key="x")
    assert response.status_code == 422
    # Refused before consuming: the real callback still works.
    assert flow.callback(state=state, code=CODE).status_code == 200


def test_success_redirects_to_the_done_url_when_set(
    make_api_env: Any, serve: Any, provider: TokenEndpoint
) -> None:
    made = make_flow(make_api_env(oauth_done_url="https://ui.example/done?x=1"), serve, provider)
    try:
        state = _query(made.authorize())["state"]
        response = made.callback(state=state, code=CODE)
        assert response.status_code == 302
        assert response.headers["location"] == (
            f"https://ui.example/done?x=1&credential={made.credential_id}&status=authorized"
        )
    finally:
        made.http.close()


def test_the_callback_is_served_over_http_when_https_is_required(
    make_api_env: Any, serve: Any, provider: TokenEndpoint
) -> None:
    made = make_flow(make_api_env(require_https=True), serve, provider)
    try:
        # authorize over plain HTTP is refused; the callback (no key, state-bound) is not.
        plain = made.http.get(
            f"/api/oauth/{made.credential_id}/authorize", headers=made.env.headers("admin")
        )
        assert plain.status_code == 403
        response = made.callback(state=secrets.token_urlsafe(32), code=CODE)
        assert response.status_code == 400 and response.json()["reason"] == "invalid_state"
    finally:
        made.http.close()


def test_no_code_verifier_state_or_token_leaks(
    flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    query = _query(flow.authorize())
    # While pending, the database holds neither the state nor the verifier nor the nonce.
    with flow.env.broker.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(oauth_states)).mappings()]
    assert len(rows) == 1
    stored = repr(rows)
    assert query["state"] not in stored and query["nonce"] not in stored
    assert flow.callback(state=query["state"], code=CODE).status_code == 200
    verifier = flow.provider.requests[0]["form"]["code_verifier"]
    assert query["code_challenge"] not in stored and verifier not in stored
    flow.callback(state=query["state"], code=CODE)  # a replay
    flow.callback(state=query["state"], error="access_denied")
    flow.callback(state="not-a-state", code=CODE)

    canaries = [CODE, verifier, query["state"], query["nonce"], ACCESS_TOKEN, REFRESH_TOKEN]
    canaries += [ID_TOKEN, CLIENT_SECRET]
    audit = io.StringIO()
    flow.env.broker.audit.export_jsonl(audit)
    haystacks = {
        "audit": audit.getvalue(),
        # flowcred's and the server's log lines (the test's own httpx client logs its URLs).
        "logs": "\n".join(
            r.getMessage() for r in caplog.records if r.name.startswith(("flowcred", "uvicorn"))
        ),
        "responses": "\n".join(
            r.text + json.dumps(dict(r.headers))
            for r in flow.responses
            if r.status_code != 302 or "/authorize?" not in r.headers.get("location", "")
        ),
    }
    for where, text in haystacks.items():
        for canary in canaries:
            assert canary not in text, f"a secret reached the {where}"
    events = [json.loads(line) for line in audit.getvalue().splitlines()]
    oauth = [e for e in events if e["eventType"] == "token"]
    started = [e for e in oauth if e["action"] == "authorization_started"]
    refused = [e for e in oauth if e["action"] == "authorized" and e["result"] != "success"]
    assert len(started) == 1 and started[0]["actor"]["kind"] == "api_key"
    assert [e["details"]["reason"] for e in refused] == ["invalid_state"] * 3
    assert refused[0]["details"]["initiated_by"]["kind"] == "api_key"


def test_without_a_wired_exchange_the_callback_refuses_cleanly(api_env: Any) -> None:
    # An app given a flow without an exchange (a custom wiring): start works, completion refuses.
    api_env.app.state.oauth_flow = AuthorizationFlow(api_env.broker, exchange=None, on_tokens=None)
    record = api_env.seed(
        "acme",
        type="oauth2",
        config={
            "authorization_url": "https://provider.example/authorize",
            "token_url": "https://provider.example/token",
            "client_id": "c",
        },
        secret={"client_secret": CLIENT_SECRET},
    )
    response = api_env.client.get(
        f"/api/oauth/{record.id}/authorize",
        headers=api_env.headers("admin"),
        follow_redirects=False,
    )
    assert response.status_code == 302
    state = _query(response.headers["location"])["state"]
    done = api_env.client.get("/api/oauth/callback", params={"state": state, "code": CODE})
    assert done.status_code == 400 and done.json()["reason"] == "not_configured"


def test_authorize_refuses_a_type_without_the_authorization_code_grant(api_env: Any) -> None:
    record = api_env.seed("acme")  # an api_key credential
    response = api_env.client.get(
        f"/api/oauth/{record.id}/authorize",
        headers=api_env.headers("admin"),
        follow_redirects=False,
    )
    assert response.status_code == 422
    assert "authorization-code" in response.text


def test_states_are_one_time_on_every_database(any_db_api_env: Any) -> None:
    env = any_db_api_env
    env.app.state.oauth_flow = AuthorizationFlow(env.broker, exchange=None, on_tokens=None)
    record = env.seed(
        "acme",
        type="oauth2",
        config={
            "authorization_url": "https://provider.example/authorize",
            "token_url": "https://provider.example/token",
            "client_id": "c",
        },
        secret={"client_secret": CLIENT_SECRET},
    )
    response = env.client.get(
        f"/api/oauth/{record.id}/authorize", headers=env.headers("admin"), follow_redirects=False
    )
    state = _query(response.headers["location"])["state"]
    first = env.client.get("/api/oauth/callback", params={"state": state, "code": CODE})
    assert first.json()["reason"] == "not_configured"  # consumed, then refused: no exchange
    again = env.client.get("/api/oauth/callback", params={"state": state, "code": CODE})
    assert again.status_code == 400 and again.json()["reason"] == "invalid_state"
    events = [e for e in env.broker.audit.iter_events() if e.event_type == "token"]
    assert [e.details.get("why") for e in events if e.result == "denied"] == ["replayed"]
