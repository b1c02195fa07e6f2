"""Apple Push Notification service: a provider token (ES256 JWT) proven against the gateway.

Token-based APNs authentication signs ``{"iss": teamId, "iat": now}`` with the ``.p8`` key,
header ``{"alg": "ES256", "kid": keyId}``, and sends it as ``authorization: bearer <jwt>``
on ``POST /3/device/<device token>`` with ``apns-topic: <bundleId>``. APNs has no
"who am I" call, so the test posts to a device token that cannot exist (64 zeros): APNs
checks the provider token and topic before the device token, so

* ``400 BadDeviceToken`` means the key, team and topic were accepted (nothing is delivered);
* ``403 InvalidProviderToken`` / ``ExpiredProviderToken`` / ``MissingProviderToken`` /
  ``UnrelatedKeyIdInToken`` means the key, key id or team id is wrong;
* ``400 TopicDisallowed`` / ``BadTopic`` / ``DeviceTokenNotForTopic`` means the bundle id is
  not allowed for this key.

Transport: real APNs requires HTTP/2, so ``http2`` (config, default true) asks httpx for it
(negotiated by ALPN over TLS; needs the ``h2`` package). Over plain ``http://`` - a loopback
contract-test server - httpx speaks HTTP/1.1 whatever the setting. ``api_base_url`` overrides
the gateway that ``environment`` picks.
"""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import ECKey

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.provider_api import (
    base_url,
    json_object,
    send,
    short,
    unexpected_status,
)
from flowcred.errors import InvalidCredential
from flowcred.runtime.jwt_bearer import load_private_key

GATEWAYS = {
    "production": "https://api.push.apple.com",
    "sandbox": "https://api.sandbox.push.apple.com",
}
PROBE_DEVICE_TOKEN = "0" * 64

_KEY_REFUSALS = {
    "InvalidProviderToken": "the key, key ID or team ID is wrong",
    "ExpiredProviderToken": "the token's iat is too old: check this machine's clock",
    "MissingProviderToken": "no provider token was accepted",
    "UnrelatedKeyIdInToken": "the key ID does not belong to this team",
    "Forbidden": "the key may not send",
}
_TOPIC_REFUSALS = {"TopicDisallowed", "BadTopic", "DeviceTokenNotForTopic", "MissingTopic"}


def provider_token(p8_key: str, team_id: str, key_id: str, now: float) -> str:
    """The ES256 provider JWT APNs documents (header ``kid``, claims ``iss`` and ``iat``)."""
    try:
        key = load_private_key(p8_key, key_id, field="p8Key")
    except InvalidCredential:
        raise ConnectionTestError("p8Key is not a usable EC private key") from None
    if not isinstance(key, ECKey):
        raise ConnectionTestError("p8Key must be an EC (P-256) key, as Apple issues them")
    return jwt.encode({"alg": "ES256", "kid": key_id}, {"iss": team_id, "iat": int(now)}, key)


@register("apns")
class ApnsTest(ConnectionTest):
    live_tested = False  # contract-tested against a loopback /3/device endpoint (HTTP/1.1)

    def check(self, target: TestTarget, timeout: float) -> str:
        environment = str(target.config.get("environment") or "production")
        default = GATEWAYS.get(environment, GATEWAYS["production"])
        token = provider_token(
            target.reveal("p8Key") or "",
            target.reveal("teamId") or "",
            target.reveal("keyId") or "",
            time.time(),
        )
        response = send(
            "POST",
            f"{base_url(target, default)}/3/device/{PROBE_DEVICE_TOKEN}",
            timeout=timeout,
            what="APNs",
            headers={
                "authorization": f"bearer {token}",
                "apns-topic": target.reveal("bundleId") or "",
                "apns-push-type": "alert",
                "apns-priority": "5",
                "apns-expiration": "0",
            },
            json_body={"aps": {"alert": "flowcred connection test"}},
            http2=bool(target.config.get("http2", True)),
        )
        reason = short(json_object(response).get("reason", ""), 40)
        if response.status_code == 400 and reason == "BadDeviceToken":
            return f"APNs ({environment}) accepted the provider token and topic"
        if response.status_code == 403 and reason:
            hint = _KEY_REFUSALS.get(reason, "the provider token was refused")
            raise ConnectionTestError(f"APNs refused the provider token: {reason} ({hint})")
        if response.status_code == 400 and reason in _TOPIC_REFUSALS:
            raise ConnectionTestError(
                f"APNs refused the bundle ID as topic: {reason} (the key may not send for it)"
            )
        if response.status_code == 200:
            # Only a gateway that does not check device tokens would deliver to 64 zeros.
            return f"APNs ({environment}) accepted the provider token"
        if reason:
            raise ConnectionTestError(f"APNs answered HTTP {response.status_code}: {reason}")
        raise unexpected_status("APNs", response)
