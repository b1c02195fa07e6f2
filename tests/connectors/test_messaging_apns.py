"""APNs: a contract test of the provider-token (ES256 JWT) check against a loopback gateway.

Documented contract (developer.apple.com, "Establishing a token-based connection to APNs" and
"Handling notification responses from APNs"): ``POST /3/device/<device token>`` with
``authorization: bearer <JWT>`` (header ``alg: ES256``, ``kid``: key ID; claims ``iss``: team ID,
``iat``: issue time, refused once older than an hour) and ``apns-topic``: the bundle ID.
403 ``{"reason": "InvalidProviderToken"}`` / ``"ExpiredProviderToken"`` for a bad token, 400
``{"reason": "TopicDisallowed"}`` for a topic the key may not use, 400
``{"reason": "BadDeviceToken"}`` for a device token that does not exist.

Transport: real APNs speaks only HTTP/2 (over TLS, negotiated by ALPN); this loopback gateway is
plain HTTP/1.1, which httpx uses for ``http://`` whatever ``http2`` says. So this proves the
token, headers and response handling, not the HTTP/2 framing.
"""

from __future__ import annotations

import functools
import time

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from tests.connectors.provider_stub import (
    CANARY,
    TIMEOUT,
    Answer,
    Seen,
    failure,
    running_stubs,
    target,
)

from flowcred.connectors.apns import PROBE_DEVICE_TOKEN, ApnsTest


@pytest.fixture
def provider_stub():
    yield from running_stubs()


TEAM = "TEAM123456"
KEY_ID = "KEY7654321"
BUNDLE = "com.acme.alerts"


@functools.cache
def ec_key(name: str) -> ECKey:
    return ECKey.generate_key("P-256")


def gateway(seen: Seen) -> Answer:
    if seen.method != "POST" or not seen.path.startswith("/3/device/"):
        return Answer(405, {"reason": "MethodNotAllowed"})
    header = seen.headers.get("authorization", "")
    if not header.startswith("bearer "):
        return Answer(403, {"reason": "MissingProviderToken"})
    try:
        token = jwt.decode(header.removeprefix("bearer "), ec_key("apple"), algorithms=["ES256"])
    except (JoseError, ValueError):
        return Answer(403, {"reason": "InvalidProviderToken"})
    if token.header.get("kid") != KEY_ID or token.claims.get("iss") != TEAM:
        return Answer(403, {"reason": "InvalidProviderToken"})
    if time.time() - token.claims["iat"] > 3600:
        return Answer(403, {"reason": "ExpiredProviderToken"})
    if seen.headers.get("apns-topic") != BUNDLE:
        return Answer(400, {"reason": "TopicDisallowed"})
    return Answer(400, {"reason": "BadDeviceToken"})


def apns(stub, key: ECKey, team: str = TEAM, bundle: str = BUNDLE, **config):
    return target(
        "apns",
        {"api_base_url": stub.url, "environment": "sandbox", **config},
        {
            "p8Key": key.as_pem(private=True).decode(),
            "teamId": team,
            "keyId": KEY_ID,
            "bundleId": bundle,
        },
    )


def test_a_good_key_is_accepted_by_the_bad_device_token_probe(provider_stub) -> None:
    stub = provider_stub(gateway)
    message = ApnsTest().check(apns(stub, ec_key("apple")), TIMEOUT)
    assert message == "APNs (sandbox) accepted the provider token and topic"
    assert stub.seen[0].path == f"/3/device/{PROBE_DEVICE_TOKEN}"
    assert stub.seen[0].headers["apns-topic"] == BUNDLE


def test_the_http2_setting_still_works_against_an_http1_loopback_gateway(provider_stub) -> None:
    stub = provider_stub(gateway)
    for http2 in (True, False):
        assert "accepted" in ApnsTest().check(apns(stub, ec_key("apple"), http2=http2), TIMEOUT)


def test_a_key_apple_does_not_know_is_invalid_provider_token(provider_stub) -> None:
    stub = provider_stub(gateway)
    message = failure(lambda: ApnsTest().check(apns(stub, ec_key("stranger")), TIMEOUT))
    assert message == (
        "APNs refused the provider token: InvalidProviderToken "
        "(the key, key ID or team ID is wrong)"
    )
    wrong_team = failure(
        lambda: ApnsTest().check(apns(stub, ec_key("apple"), team=CANARY), TIMEOUT)
    )
    assert "InvalidProviderToken" in wrong_team and CANARY not in wrong_team


def test_a_bundle_id_the_key_may_not_use_is_topic_disallowed(provider_stub) -> None:
    stub = provider_stub(gateway)
    message = failure(
        lambda: ApnsTest().check(apns(stub, ec_key("apple"), bundle=f"com.{CANARY}"), TIMEOUT)
    )
    assert message.startswith("APNs refused the bundle ID as topic: TopicDisallowed")
    assert CANARY not in message


def test_the_default_gateway_follows_the_environment() -> None:
    built = target(
        "apns",
        {},
        {
            "p8Key": ec_key("apple").as_pem(private=True).decode(),
            "teamId": TEAM,
            "keyId": KEY_ID,
            "bundleId": BUNDLE,
        },
    )
    assert built.config["environment"] == "production" and built.config["http2"] is True
