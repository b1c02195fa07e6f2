"""Twilio account fetch: a contract test against a loopback server.

Documented contract (twilio.com/docs/iam/api/account#fetch-an-account-resource):
``GET /2010-04-01/Accounts/{AccountSid}.json`` with HTTP Basic ``AccountSid:AuthToken``;
200 with the account (``sid``, ``friendly_name``, ``status``: active / suspended / closed);
401 ``{"code": 20003, "message": "Authenticate", "status": 401}`` for a wrong SID or token.
"""

from __future__ import annotations

import base64

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

from flowcred.connectors.twilio import TwilioTest


@pytest.fixture
def provider_stub():
    yield from running_stubs()


SID = "AC" + "0123456789abcdef" * 2
SUSPENDED_SID = "AC" + "fedcba9876543210" * 2
TOKEN = f"token-{CANARY}"


def account(seen: Seen) -> Answer:
    header = seen.headers.get("authorization", "")
    user, _, password = (
        base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        if header.startswith("Basic ")
        else ("", "", "")
    )
    expected = f"/2010-04-01/Accounts/{user}.json"
    if seen.method != "GET" or seen.path != expected or password != TOKEN:
        return Answer(
            401,
            {
                "code": 20003,
                "message": "Authenticate",
                "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401,
            },
        )
    status = "suspended" if user == SUSPENDED_SID else "active"
    return Answer(200, {"sid": user, "friendly_name": "Acme alerts", "status": status})


def twilio(base: str, sid: str, token: str):
    return target("twilio", {"api_base_url": base}, {"accountSid": sid, "authToken": token})


def test_a_good_pair_fetches_the_active_account(provider_stub) -> None:
    stub = provider_stub(account)
    message = TwilioTest().check(twilio(stub.url, SID, TOKEN), TIMEOUT)
    assert message == "account 'Acme alerts' is active"
    assert stub.seen[0].path == f"/2010-04-01/Accounts/{SID}.json"


def test_a_wrong_token_is_error_20003_without_the_sid_or_token(provider_stub) -> None:
    stub = provider_stub(account)
    message = failure(lambda: TwilioTest().check(twilio(stub.url, SID, f"bad-{CANARY}"), TIMEOUT))
    assert message == (
        "Twilio rejected the Account SID or auth token (HTTP 401, Twilio error 20003)"
    )
    assert SID not in message and CANARY not in message


def test_a_suspended_account_fails_the_test(provider_stub) -> None:
    stub = provider_stub(account)
    message = failure(lambda: TwilioTest().check(twilio(stub.url, SUSPENDED_SID, TOKEN), TIMEOUT))
    assert message == "Twilio account is suspended, not active"
