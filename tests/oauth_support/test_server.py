"""The test authorization server behaves like a real one over HTTP (other tests trust it)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from tests.oauth_support.server import JWT_BEARER, AuthzServer

REDIRECT = "http://127.0.0.1:9/callback"
REPO = Path(__file__).resolve().parents[2]


def authorize(server: AuthzServer, client_id: str, challenge: str | None, **extra: str) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT}
    params["state"] = "st-1"
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    params |= extra
    resp = httpx.get(server.authorize_url, params=params)
    assert resp.status_code == 302
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


def exchange(server: AuthzServer, code: str, verifier: str | None) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        data["code_verifier"] = verifier
    return httpx.post(server.token_url, data=data, auth=("web", "s3cret"))


def refresh(server: AuthzServer, token: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token}
    return httpx.post(server.token_url, data=data, auth=("web", "s3cret"))


def code_tokens(server: AuthzServer) -> dict[str, Any]:
    verifier = secrets.token_urlsafe(40)
    code = authorize(server, "web", create_s256_code_challenge(verifier))
    resp = exchange(server, code, verifier)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


@pytest.fixture
def web(authz_server: AuthzServer) -> AuthzServer:
    authz_server.register_client("web", "s3cret", redirect_uris=[REDIRECT])
    return authz_server


def test_code_flow_with_pkce_issues_usable_tokens(web: AuthzServer) -> None:
    body = code_tokens(web)
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert "refresh_token" in body
    ok = httpx.get(web.resource_url, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert ok.status_code == 200 and ok.json()["sub"] == "alice"
    bad = httpx.get(web.resource_url, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"].startswith("Bearer")
    assert web.is_valid(body["access_token"]) and not web.is_valid("nope")


def test_pkce_missing_or_wrong_verifier_refused(web: AuthzServer) -> None:
    verifier = secrets.token_urlsafe(40)
    code = authorize(web, "web", create_s256_code_challenge(verifier))
    missing = exchange(web, code, None)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_grant"
    code = authorize(web, "web", create_s256_code_challenge(verifier))
    wrong = exchange(web, code, secrets.token_urlsafe(40))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # no challenge at all, or plain: refused at the authorization endpoint
    resp = httpx.get(
        web.authorize_url,
        params={"response_type": "code", "client_id": "web", "redirect_uri": REDIRECT},
    )
    assert parse_qs(urlsplit(resp.headers["location"]).query)["error"] == ["invalid_request"]


def test_redirect_uri_mismatch_refused_without_redirect(web: AuthzServer) -> None:
    resp = httpx.get(
        web.authorize_url,
        params={
            "response_type": "code",
            "client_id": "web",
            "redirect_uri": REDIRECT + "x",
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
        },
    )
    assert resp.status_code == 400 and "location" not in resp.headers


def test_strict_reuse_revokes_family(web: AuthzServer) -> None:
    first = code_tokens(web)
    second = refresh(web, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    reuse = refresh(web, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # the whole family is gone: the newest refresh and access tokens too
    assert refresh(web, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert not web.is_valid(second["access_token"])


def test_grace_interval_accepts_old_token_only_within_it(web: AuthzServer) -> None:
    web.refresh_mode, web.grace_seconds = "grace", 30
    first = code_tokens(web)
    second = refresh(web, first["refresh_token"]).json()
    again = refresh(web, first["refresh_token"])
    assert again.status_code == 200
    assert again.json()["access_token"] == second["access_token"]
    assert again.json()["refresh_token"] == second["refresh_token"]
    web.advance(31)
    late = refresh(web, first["refresh_token"])
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_static_mode_keeps_refresh_token(web: AuthzServer) -> None:
    web.refresh_mode = "static"
    first = code_tokens(web)
    for _ in range(2):
        body = refresh(web, first["refresh_token"]).json()
        assert "refresh_token" not in body and web.is_valid(body["access_token"])


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("5xx", 502, "server_error"),
        ("429", 429, "slow_down"),
        ("invalid_grant", 400, "invalid_grant"),
        ("invalid_client", 401, "invalid_client"),
    ],
)
def test_faults_answer_next_n_requests(
    authz_server: AuthzServer, kind: str, status: int, error: str
) -> None:
    authz_server.register_client("svc", "pw")
    authz_server.inject_fault(kind, 2, status=502, retry_after=7)  # type: ignore[arg-type]
    data = {"grant_type": "client_credentials"}
    for _ in range(2):
        resp = httpx.post(authz_server.token_url, data=data, auth=("svc", "pw"))
        assert resp.status_code == status and resp.json()["error"] == error
        if kind == "429":
            assert resp.headers["retry-after"] == "7"
    assert httpx.post(authz_server.token_url, data=data, auth=("svc", "pw")).status_code == 200
    assert authz_server.counts() == {"total": 3, "client_credentials": 3}


def test_hang_fault_times_out_the_client(authz_server: AuthzServer) -> None:
    authz_server.register_client("svc", "pw")
    authz_server.inject_fault("hang", seconds=3)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            authz_server.token_url,
            data={"grant_type": "client_credentials"},
            auth=("svc", "pw"),
            timeout=0.3,
        )


def test_fixed_delay_slows_every_request(authz_server: AuthzServer) -> None:
    authz_server.register_client("svc", "pw")
    authz_server.delay = 1.0
    data = {"grant_type": "client_credentials"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(authz_server.token_url, data=data, auth=("svc", "pw"), timeout=0.2)
    authz_server.delay = 0.0
    assert httpx.post(authz_server.token_url, data=data, auth=("svc", "pw")).status_code == 200


def test_counts_per_grant_and_reset(authz_server: AuthzServer) -> None:
    authz_server.register_client("svc", "pw", auth_method="client_secret_post")
    data = {"grant_type": "client_credentials", "client_id": "svc", "client_secret": "pw"}
    assert httpx.post(authz_server.token_url, data=data).status_code == 200
    pw = {"grant_type": "password", "username": "alice", "password": "wonderland"}
    assert httpx.post(authz_server.token_url, data={**data, **pw}).status_code == 200
    assert authz_server.count("password") == 1 and authz_server.count() == 2
    assert httpx.get(authz_server.base_url + "/_counts").json()["client_credentials"] == 1
    authz_server.reset_counts()
    assert authz_server.counts() == {"total": 0}


def test_lifetime_scope_and_extra_fields(authz_server: AuthzServer) -> None:
    authz_server.register_client("svc", "pw")
    authz_server.access_token_lifetime = None
    authz_server.include_scope = False
    authz_server.extra_fields = {"instance_url": "https://x.example", "team": {"id": "T1"}}
    data = {"grant_type": "client_credentials", "scope": "a b"}
    body = httpx.post(authz_server.token_url, data=data, auth=("svc", "pw")).json()
    assert "expires_in" not in body and "scope" not in body
    assert body["team"] == {"id": "T1"} and body["instance_url"] == "https://x.example"


def _assertion(key: RSAKey, iss: str, aud: str, **extra: object) -> str:
    now = int(time.time())
    claims = {"iss": iss, "sub": iss, "aud": aud, "iat": now, "exp": now + 60, **extra}
    return jwt.encode({"alg": "RS256"}, claims, key)


def test_jwt_bearer_service_account(authz_server: AuthzServer) -> None:
    sa = authz_server.register_service_account()
    assert sa["token_uri"] == authz_server.token_url and sa["type"] == "service_account"
    good = RSAKey.import_key(sa["private_key"].encode())
    data = {"grant_type": JWT_BEARER, "scope": "https://x/scope"}
    ok = httpx.post(
        sa["token_uri"],
        data={**data, "assertion": _assertion(good, sa["client_email"], sa["token_uri"])},
    )
    assert ok.status_code == 200 and ok.json()["scope"] == "https://x/scope"
    other = RSAKey.generate_key(2048)
    bad = httpx.post(
        sa["token_uri"],
        data={**data, "assertion": _assertion(other, sa["client_email"], sa["token_uri"])},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    expired = _assertion(good, sa["client_email"], sa["token_uri"], exp=int(time.time()) - 5)
    assert httpx.post(sa["token_uri"], data={**data, "assertion": expired}).status_code == 400


def test_private_key_jwt_client_auth(authz_server: AuthzServer) -> None:
    key = RSAKey.generate_key(2048)
    authz_server.register_client("pkj", public_key=key.as_pem(private=False).decode())
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    url = authz_server.token_url
    ok = httpx.post(url, data={**form, "client_assertion": _assertion(key, "pkj", url)})
    assert ok.status_code == 200
    other = RSAKey.generate_key(2048)
    bad = httpx.post(url, data={**form, "client_assertion": _assertion(other, "pkj", url)})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


def test_id_token_and_discovery(web: AuthzServer) -> None:
    verifier = secrets.token_urlsafe(40)
    code = authorize(web, "web", create_s256_code_challenge(verifier), scope="openid", nonce="n-1")
    body = exchange(web, code, verifier).json()
    conf = httpx.get(web.discovery_url).json()
    keys = KeySet.import_key_set(httpx.get(conf["jwks_uri"]).json())
    claims = jwt.decode(body["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == conf["issuer"] == web.issuer
    assert claims["aud"] == "web" and claims["nonce"] == "n-1"


def test_oidc_provider_fixture_serves_discovery_and_jwks(oidc_provider: str) -> None:
    conf = httpx.get(oidc_provider + "/.well-known/openid-configuration").json()
    assert conf["issuer"] == oidc_provider
    assert httpx.get(conf["jwks_uri"]).json()["keys"]


def test_serve_subprocess_counts_and_faults() -> None:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.oauth_support.serve", "--port", "0", "--client", "c:s"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        httpx.post(base + "/_faults", json={"kind": "5xx", "count": 1})
        data = {"grant_type": "client_credentials"}
        assert httpx.post(base + "/token", data=data, auth=("c", "s")).status_code == 503
        assert httpx.post(base + "/token", data=data, auth=("c", "s")).status_code == 200
        assert httpx.get(base + "/_counts").json() == {"total": 2, "client_credentials": 2}
    finally:
        proc.terminate()
        proc.wait(10)
