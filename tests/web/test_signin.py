"""Signing in and out of the web UI, and the headers every page carries."""

from __future__ import annotations

import re
from typing import Any

from tests.web.conftest import UiEnv, csrf_of, login_token

from flowcred.audit import AuditFilter
from flowcred.web.auth import SESSION_COOKIE


def _events(env: UiEnv, action: str) -> list[Any]:
    return env.broker.audit.list(AuditFilter(event_type="api_key", action=action))


def test_signing_in_opens_a_session_with_a_strict_httponly_cookie(ui_env: UiEnv) -> None:
    client = ui_env.api.new_client()
    with client:
        form = client.get("/ui/login")
        assert form.status_code == 200 and 'type="password"' in form.text
        raw = ui_env.api.keys[("admin", "*")]
        done = client.post(
            "/ui/login",
            data={"api_key": raw, "login_token": login_token(form.text)},
            follow_redirects=False,
        )
        assert done.status_code == 303 and done.headers["location"] == "/ui/credentials"
        cookie = done.headers["set-cookie"]
        assert cookie.startswith(SESSION_COOKIE + "=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert raw not in cookie
        page = client.get("/ui/credentials")
        assert page.status_code == 200 and "Auth Configs" in page.text
        assert raw not in page.text
    signed_in = _events(ui_env, "signed_in")
    assert signed_in and signed_in[-1].actor.name == "admin-platform"


def test_a_wrong_key_is_refused_audited_and_never_shown(ui_env: UiEnv) -> None:
    with ui_env.api.new_client() as client:
        form = client.get("/ui/login")
        wrong = "fck_aaaaaaaaaaaa_" + "Q" * 43
        answer = client.post(
            "/ui/login", data={"api_key": wrong, "login_token": login_token(form.text)}
        )
        assert answer.status_code == 401
        assert "not accepted" in answer.text and wrong not in answer.text
        assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    failed = _events(ui_env, "authentication_failed")
    assert failed and failed[-1].details["via"] == "ui"
    assert wrong not in str(failed[-1].to_dict())


def test_a_worker_key_cannot_sign_in(ui_env: UiEnv) -> None:
    with ui_env.api.new_client() as client:
        form = client.get("/ui/login")
        worker = ui_env.api.keys[("worker", "*")]
        answer = client.post(
            "/ui/login", data={"api_key": worker, "login_token": login_token(form.text)}
        )
        assert answer.status_code == 403 and "Worker keys" in answer.text
        assert client.get("/ui/credentials", follow_redirects=False).status_code == 303


def test_the_login_form_needs_its_own_token_and_this_origin(ui_env: UiEnv) -> None:
    with ui_env.api.new_client() as client:
        form = client.get("/ui/login")
        raw = ui_env.api.keys[("admin", "*")]
        no_token = client.post("/ui/login", data={"api_key": raw}, follow_redirects=False)
        assert no_token.status_code == 403
        foreign = client.post(
            "/ui/login",
            data={"api_key": raw, "login_token": login_token(form.text)},
            headers={"Origin": "http://evil.example"},
            follow_redirects=False,
        )
        assert foreign.status_code == 403
        assert client.get("/ui/credentials", follow_redirects=False).status_code == 303


def test_next_only_leads_to_pages_of_the_ui(ui_env: UiEnv) -> None:
    with ui_env.api.new_client() as client:
        for target, expected in (
            ("/ui/types", "/ui/types"),
            ("https://evil.example/", "/ui/credentials"),
            ("//evil.example/ui/", "/ui/credentials"),
            ("/api/credentials", "/ui/credentials"),
        ):
            form = client.get("/ui/login")
            done = client.post(
                "/ui/login",
                data={
                    "api_key": ui_env.api.keys[("viewer", "*")],
                    "login_token": login_token(form.text),
                    "next": target,
                },
                follow_redirects=False,
            )
            assert done.headers["location"] == expected, target
            client.cookies.clear()


def test_a_page_without_a_session_goes_to_sign_in_and_back(ui_env: UiEnv) -> None:
    with ui_env.api.new_client() as client:
        away = client.get("/ui/credentials?status=active", follow_redirects=False)
        assert away.status_code == 303
        assert away.headers["location"] == "/ui/login?next=%2Fui%2Fcredentials%3Fstatus%3Dactive"
        assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"


def test_sign_out_needs_the_csrf_token_and_ends_the_session_on_the_server(
    ui_env: UiEnv,
) -> None:
    client = ui_env.sign_in("developer", "acme")
    cookie = client.cookies.get(SESSION_COOKIE)
    refused = client.post("/ui/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/ui/credentials").status_code == 200
    done = client.post("/ui/logout", data={"csrf_token": csrf_of(client)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/ui/login?signed_out=1"
    # The browser could have kept the cookie: the server no longer knows it.
    with ui_env.api.new_client() as replay:
        replay.cookies.set(SESSION_COOKIE, cookie, path="/ui")
        assert replay.get("/ui/credentials", follow_redirects=False).status_code == 303
    assert _events(ui_env, "signed_out")
    denied = [e for e in _events(ui_env, "access_denied") if e.details.get("reason") == "csrf"]
    assert denied and denied[-1].actor.name == "developer-acme"


def test_revoking_the_key_ends_its_sessions(ui_env: UiEnv) -> None:
    key, raw = ui_env.broker.api_keys.create(role="viewer", tenant="acme", name="short-lived")
    ui_env.api.keys[("viewer", "short")] = raw
    client = ui_env.sign_in("viewer", "short")
    assert client.get("/ui/credentials").status_code == 200
    ui_env.broker.api_keys.revoke(key.id)
    assert client.get("/ui/credentials", follow_redirects=False).status_code == 303


def test_every_ui_response_forbids_caching_and_inline_script(ui_env: UiEnv) -> None:
    client = ui_env.sign_in()
    for path in ("/ui/login", "/ui/credentials"):
        answer = client.get(path)
        csp = answer.headers["content-security-policy"]
        assert answer.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert not re.search(r"<script(?![^>]*\bsrc=)", answer.text), "inline script"
        assert not re.search(r"\sstyle=", answer.text), "inline style"
        assert "http://" not in answer.text.replace("http://testserver", "")
    static = client.get("/ui/static/app.js")
    assert static.status_code == 200 and "localStorage.setItem" not in static.text
    # The REST API keeps its own headers.
    assert "content-security-policy" not in client.get("/health").headers


def test_the_oauth_callback_sends_a_browser_to_the_ui(ui_env: UiEnv) -> None:
    with ui_env.api.new_client() as client:
        answer = client.get(
            "/api/oauth/callback?state=unknown&code=x",
            headers={"Accept": "text/html,application/xhtml+xml"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/oauth/done?status=refused&reason=invalid_state"
        page = client.get(answer.headers["location"])
        assert page.status_code == 400 and "Authorization failed" in page.text
        # A script still gets the JSON answer.
        scripted = client.get("/api/oauth/callback?state=unknown&code=x")
        assert scripted.status_code == 400 and scripted.json()["reason"] == "invalid_state"
