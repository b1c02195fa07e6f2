"""Vonage: ``GET /account/get-balance``, the Account API's balance call.

Vonage documents two ways to authenticate it: ``api_key`` and ``api_secret`` as query
parameters (the older form) and HTTP Basic ``api_key:api_secret`` (the current reference and
code snippets, ``curl -u``). This test uses Basic authentication, so the secret never sits in
a URL, where proxies and access logs would keep it. 401 means the key or secret is wrong. The
balance is shown on success: an account with no credit authenticates but cannot send.
"""

from __future__ import annotations

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.provider_api import base_url, json_object, send, unexpected_status

DEFAULT_BASE_URL = "https://rest.nexmo.com"


@register("vonage")
class VonageTest(ConnectionTest):
    live_tested = False  # contract-tested against a loopback get-balance

    def check(self, target: TestTarget, timeout: float) -> str:
        key = target.reveal("apiKey") or ""
        secret = target.reveal("apiSecret") or ""
        response = send(
            "GET",
            base_url(target, DEFAULT_BASE_URL) + "/account/get-balance",
            timeout=timeout,
            what="Vonage",
            auth=(key, secret),
        )
        if response.status_code == 401:
            raise ConnectionTestError("Vonage rejected the API key or secret (HTTP 401)")
        if response.status_code != 200:
            raise unexpected_status("Vonage", response)
        value = json_object(response).get("value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConnectionTestError("Vonage answered without a balance")
        if value <= 0:
            return f"credentials accepted, but the balance is {value:.2f} EUR: sending will fail"
        return f"credentials accepted; balance {value:.2f} EUR"
