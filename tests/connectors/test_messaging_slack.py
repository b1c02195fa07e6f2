"""Slack auth.test: a contract test against a loopback server implementing the documented call.

Documented contract (api.slack.com/methods/auth.test): POST, token in ``Authorization: Bearer``;
always HTTP 200; ``{"ok": true, "team": ..., "user": ...}`` or ``{"ok": false, "error": code}``
with ``not_authed`` (no token), ``invalid_auth`` (unknown token), ``token_revoked`` and others.
"""

from __future__ import annotations

import time

import pytest
from tests.connectors.provider_stub import (
    CANARY,
    TIMEOUT,
    Answer,
    Seen,
    closed_port,
    failure,
    running_stubs,
    target,
)

from flowcred.connectors.slack import SlackTest


@pytest.fixture
def provider_stub():
    yield from running_stubs()


GOOD = f"xoxb-good-{CANARY}"
REVOKED = f"xoxb-revoked-{CANARY}"


def auth_test(seen: Seen) -> Answer:
    if seen.method != "POST" or seen.path != "/api/auth.test":
        return Answer(404, {"ok": False, "error": "unknown_method"})
    header = seen.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        return Answer(200, {"ok": False, "error": "not_authed"})
    token = header.removeprefix("Bearer ")
    if token == REVOKED:
        return Answer(200, {"ok": False, "error": "token_revoked"})
    if token != GOOD:
        return Answer(200, {"ok": False, "error": "invalid_auth"})
    return Answer(
        200,
        {
            "ok": True,
            "url": "https://acme.slack.com/",
            "team": "Acme",
            "user": "flowbot",
            "team_id": "T0001",
            "user_id": "U0001",
            "bot_id": "B0001",
        },
    )


def slack(base: str, token: str):
    return target("slack", {"api_base_url": base + "/api"}, {"token": token})


def test_a_good_token_names_the_team_and_user(provider_stub) -> None:
    stub = provider_stub(auth_test)
    message = SlackTest().check(slack(stub.url, GOOD), TIMEOUT)
    assert message == "authenticated as flowbot in team Acme"
    assert [(s.method, s.path) for s in stub.seen] == [("POST", "/api/auth.test")]
    assert CANARY not in message


def test_a_wrong_token_fails_with_slacks_error_code(provider_stub) -> None:
    stub = provider_stub(auth_test)
    message = failure(lambda: SlackTest().check(slack(stub.url, f"xoxb-wrong-{CANARY}"), TIMEOUT))
    assert message == "Slack refused the token: invalid_auth (the token is not valid)"
    revoked = failure(lambda: SlackTest().check(slack(stub.url, REVOKED), TIMEOUT))
    assert "token_revoked" in revoked and CANARY not in revoked


def test_the_default_base_url_is_slacks_real_api() -> None:
    built = target("slack", {}, {"token": GOOD})
    assert built.config["api_base_url"] == "https://slack.com/api"


def test_a_closed_port_is_connection_refused_within_the_timeout() -> None:
    started = time.monotonic()
    message = failure(
        lambda: SlackTest().check(slack(f"http://127.0.0.1:{closed_port()}", GOOD), TIMEOUT)
    )
    assert message == "cannot reach Slack: connection refused"
    assert time.monotonic() - started < TIMEOUT
