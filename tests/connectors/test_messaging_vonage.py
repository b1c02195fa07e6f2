"""Vonage get-balance: a contract test against a loopback server.

Documented contract (developer.vonage.com/en/api/account#getAccountBalance):
``GET /account/get-balance``, authenticated by HTTP Basic ``api_key:api_secret`` (the current
reference and ``curl -u`` snippet; the older ``?api_key=&api_secret=`` query form is accepted by
Vonage but puts the secret in the URL, so flowcred does not use it); 200
``{"value": 10.28, "autoReload": false}``; 401 for a wrong key or secret.
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

from flowcred.connectors.vonage import VonageTest


@pytest.fixture
def provider_stub():
    yield from running_stubs()


KEY = "abcd1234"
SECRET = f"secret-{CANARY}"
EMPTY_KEY = "empty999"


def balance(seen: Seen) -> Answer:
    header = seen.headers.get("authorization", "")
    pair = base64.b64decode(header.removeprefix("Basic ")).decode() if header else ""
    if seen.method != "GET" or seen.path != "/account/get-balance":
        return Answer(404, {"title": "Not Found"})
    if pair not in (f"{KEY}:{SECRET}", f"{EMPTY_KEY}:{SECRET}"):
        return Answer(
            401,
            {
                "type": "https://developer.nexmo.com/api-errors#unauthorized",
                "title": "Unauthorized",
                "detail": "You did not provide correct credentials.",
            },
        )
    value = 0.0 if pair.startswith(EMPTY_KEY) else 10.28
    return Answer(200, {"value": value, "autoReload": False})


def vonage(base: str, key: str, secret: str):
    return target("vonage", {"api_base_url": base}, {"apiKey": key, "apiSecret": secret})


def test_a_good_pair_reads_the_balance_without_secrets_in_the_url(provider_stub) -> None:
    stub = provider_stub(balance)
    message = VonageTest().check(vonage(stub.url, KEY, SECRET), TIMEOUT)
    assert message == "credentials accepted; balance 10.28 EUR"
    assert stub.seen[0].query == {}  # neither api_key nor api_secret in the query string


def test_a_wrong_secret_is_a_clear_failure(provider_stub) -> None:
    stub = provider_stub(balance)
    message = failure(lambda: VonageTest().check(vonage(stub.url, KEY, f"x-{CANARY}"), TIMEOUT))
    assert message == "Vonage rejected the API key or secret (HTTP 401)"
    assert CANARY not in message


def test_an_empty_balance_authenticates_but_warns(provider_stub) -> None:
    stub = provider_stub(balance)
    message = VonageTest().check(vonage(stub.url, EMPTY_KEY, SECRET), TIMEOUT)
    assert message == "credentials accepted, but the balance is 0.00 EUR: sending will fail"
