"""The authorization-code grant end to end, over real sockets: flowcred served by uvicorn, the
loopback authorization server, and httpx playing the browser. Then the credential's tokens
refresh by themselves (rotating refresh tokens) across several expiries, a refused grant makes
it Expired after one attempt, and a re-authorisation makes it Active again.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from tests.oauth_support.server import AuthzServer

from flowcred.audit.log import AuditFilter

CLIENT_SECRET = "web-client-secret-canary-5d1e"


def _authorize(http: httpx.Client, env: Any, cid: int) -> httpx.Response:
    """Developer starts the grant; the 'browser' follows the provider and comes back."""
    start = http.get(f"/api/oauth/{cid}/authorize", headers=env.headers("developer", "acme"))
    assert start.status_code == 302, start.text
    at_provider = httpx.get(start.headers["location"], follow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    back = at_provider.headers["location"]
    assert back.startswith(str(http.base_url).rstrip("/") + "/api/oauth/callback?")
    return httpx.get(back, timeout=10)  # the browser brings no API key


def test_authorization_code_grant_end_to_end_then_refreshes_by_itself(
    api_env: Any, serve: Any, authz_server: AuthzServer
) -> None:
    base = serve(api_env.app)
    callback = f"{base}/api/oauth/callback"
    api_env.broker.oauth_flow.redirect_uri = callback
    authz_server.register_client("flowcred-web", CLIENT_SECRET, redirect_uris=(callback,))
    authz_server.refresh_mode = "strict"
    # Tokens valid for 62 s with the 60 s margin: each is due 2 s after it was issued.
    authz_server.access_token_lifetime = 62
    cred = api_env.seed(
        "acme",
        type="oauth2",
        name="Acme CRM",
        config={
            "authorization_url": authz_server.authorize_url,
            "token_url": authz_server.token_url,
            "client_id": "flowcred-web",
            "scopes": ["crm.read", "offline_access"],
        },
        secret={"client_secret": CLIENT_SECRET},
    )
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as http:
        worker = api_env.headers("worker", "acme")
        before = http.post(f"/api/credentials/{cred.id}/resolve", headers=worker, json={})
        assert before.status_code == 409 and before.json()["reauthorize"] is True
        assert "oauth authorize" in before.json()["detail"]

        done = _authorize(http, api_env, cred.id)
        assert done.status_code == 200, done.text
        assert done.json() == {"credentialId": cred.id, "status": "authorized"}
        assert authz_server.count("authorization_code") == 1

        seen = []
        for _ in range(3):
            answer = http.post(f"/api/credentials/{cred.id}/resolve", headers=worker, json={})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            token = body["fields"]["access_token"]
            assert body["headers"] == {"Authorization": f"Bearer {token}"}
            assert authz_server.is_valid(token)
            assert "client_secret" not in body["fields"]
            assert "refresh_token" not in str(body)
            seen.append(token)
            time.sleep(2.2)  # past the margin: the next resolve refreshes first
        assert len(set(seen)) == 3
        # Strict rotation: each refresh used the newest refresh token (a reuse would have
        # revoked the family and failed the next refresh).
        assert authz_server.count("refresh_token") == 2

        # The provider refuses the grant: Expired after exactly one attempt, no retry loop.
        authz_server.inject_fault("invalid_grant", count=5)
        refused = http.post(f"/api/credentials/{cred.id}/resolve", headers=worker, json={})
        assert refused.status_code == 409
        assert refused.json()["oauthError"] == "invalid_grant"
        assert refused.json()["reauthorize"] is True
        again = http.post(f"/api/credentials/{cred.id}/resolve", headers=worker, json={})
        assert again.status_code == 409
        assert authz_server.count("refresh_token") == 3
        status = api_env.broker.tokens.status(cred.id, "acme")
        assert status.state == "expired" and status.last_error == "invalid_grant"

        # Re-authorising makes it Active again.
        authz_server.clear_faults()
        assert _authorize(http, api_env, cred.id).status_code == 200
        fresh = http.post(f"/api/credentials/{cred.id}/resolve", headers=worker, json={})
        assert fresh.status_code == 200
        assert authz_server.is_valid(fresh.json()["fields"]["access_token"])
        assert api_env.broker.tokens.status(cred.id, "acme").state == "active"

    actions = [
        e.action for e in api_env.broker.audit.list(AuditFilter(event_type="token"), limit=1000)
    ]
    assert actions.count("authorized") >= 2 and "refreshed" in actions
    assert "refresh_failed" in actions


def test_a_code_from_another_authorization_fails_its_pkce_check(
    api_env: Any, serve: Any, authz_server: AuthzServer
) -> None:
    """A code intercepted from one authorization and replayed with another state: the
    provider refuses it (the PKCE verifier of that state does not match), nothing is stored."""
    base = serve(api_env.app)
    callback = f"{base}/api/oauth/callback"
    api_env.broker.oauth_flow.redirect_uri = callback
    authz_server.register_client("flowcred-web", CLIENT_SECRET, redirect_uris=(callback,))
    cred = api_env.seed(
        "acme",
        type="oauth2",
        config={
            "authorization_url": authz_server.authorize_url,
            "token_url": authz_server.token_url,
            "client_id": "flowcred-web",
        },
        secret={"client_secret": CLIENT_SECRET},
    )
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as http:
        urls = []
        for _ in range(2):
            start = http.get(
                f"/api/oauth/{cred.id}/authorize", headers=api_env.headers("developer", "acme")
            )
            at_provider = httpx.get(start.headers["location"], follow_redirects=False)
            urls.append(httpx.URL(at_provider.headers["location"]))
        first, second = urls
        swapped = http.get(
            "/api/oauth/callback",
            params={"state": second.params["state"], "code": first.params["code"]},
        )
        assert swapped.status_code == 400
        assert swapped.json()["reason"] == "exchange_failed"
        assert first.params["code"] not in swapped.text
        assert api_env.broker.tokens.status(cred.id, "acme").state == "not_authorized"
        # A redirect URI the provider does not know is refused at the provider.
        api_env.broker.oauth_flow.redirect_uri = f"{base}/elsewhere"
        start = http.get(
            f"/api/oauth/{cred.id}/authorize", headers=api_env.headers("developer", "acme")
        )
        assert httpx.get(start.headers["location"], follow_redirects=False).status_code == 400


def test_an_openid_authorization_checks_the_id_token_against_the_issuers_keys(
    api_env: Any, serve: Any, authz_server: AuthzServer
) -> None:
    base = serve(api_env.app)
    callback = f"{base}/api/oauth/callback"
    api_env.broker.oauth_flow.redirect_uri = callback
    authz_server.register_client("oidc-web", CLIENT_SECRET, redirect_uris=(callback,))
    cred = api_env.seed(
        "acme",
        type="oauth2",
        config={
            "authorization_url": authz_server.authorize_url,
            "token_url": authz_server.token_url,
            "issuer": authz_server.issuer,
            "client_id": "oidc-web",
            "scopes": ["openid", "profile"],
        },
        secret={"client_secret": CLIENT_SECRET},
    )
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as http:
        start = http.get(
            f"/api/oauth/{cred.id}/authorize", headers=api_env.headers("developer", "acme")
        )
        assert "nonce" in httpx.URL(start.headers["location"]).params
        done = _authorize(http, api_env, cred.id)
        assert done.status_code == 200, done.text
        # An ID token issued for another client is refused, and nothing is stored.
        authz_server.id_token_claims = {"aud": "some-other-client"}
        refused = _authorize(http, api_env, cred.id)
        assert refused.status_code == 400
        assert refused.json()["reason"] == "id_token_invalid"
