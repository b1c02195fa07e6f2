"""SendGrid GET /v3/scopes: a contract test against a loopback server.

Documented contract (docs.sendgrid.com, "Retrieve a list of scopes for which this user has
access"): GET, ``Authorization: Bearer <API key>``; 200 ``{"scopes": [...]}``; 401
``{"errors": [{"field": null, "message": "authorization required"}]}`` for an unknown key;
403 ``{"errors": [{"message": "access forbidden"}]}`` when the key is known but refused.
"""

from __future__ import annotations

import pytest
from tests.connectors.provider_stub import (
    CANARY,
    TIMEOUT,
    Answer,
    Seen,
    failure,
    running_stubs,
    target,
)

from flowcred.connectors.sendgrid import SendGridTest


@pytest.fixture
def provider_stub():
    yield from running_stubs()


FULL = f"SG.full-{CANARY}"
NO_MAIL = f"SG.nomail-{CANARY}"
BLOCKED = f"SG.blocked-{CANARY}"


def scopes(seen: Seen) -> Answer:
    if seen.method != "GET" or seen.path != "/v3/scopes":
        return Answer(404, {"errors": [{"field": None, "message": "not found"}]})
    key = seen.headers.get("authorization", "").removeprefix("Bearer ")
    if key == BLOCKED:
        return Answer(403, {"errors": [{"field": None, "message": "access forbidden"}]})
    if key == FULL:
        return Answer(200, {"scopes": ["mail.send", "alerts.read", "scopes.read"]})
    if key == NO_MAIL:
        return Answer(200, {"scopes": ["alerts.read"]})
    return Answer(401, {"errors": [{"field": None, "message": "authorization required"}]})


def sendgrid(base: str, key: str):
    return target("sendgrid", {"api_base_url": base}, {"api_key": key})


def test_a_good_key_counts_its_scopes_and_says_it_may_send(provider_stub) -> None:
    stub = provider_stub(scopes)
    message = SendGridTest().check(sendgrid(stub.url, FULL), TIMEOUT)
    assert message == "API key accepted with 3 scopes; it may send mail"
    assert stub.seen[0].headers["authorization"] == f"Bearer {FULL}"


def test_a_key_without_mail_send_passes_with_a_warning(provider_stub) -> None:
    stub = provider_stub(scopes)
    message = SendGridTest().check(sendgrid(stub.url, NO_MAIL), TIMEOUT)
    assert "may NOT send mail" in message


def test_401_and_403_give_different_clear_failures(provider_stub) -> None:
    stub = provider_stub(scopes)
    unknown = failure(lambda: SendGridTest().check(sendgrid(stub.url, f"SG.x-{CANARY}"), TIMEOUT))
    refused = failure(lambda: SendGridTest().check(sendgrid(stub.url, BLOCKED), TIMEOUT))
    assert unknown.startswith("SendGrid rejected the API key (HTTP 401)")
    assert refused.startswith("SendGrid refused the API key (HTTP 403)")
    assert CANARY not in unknown + refused
