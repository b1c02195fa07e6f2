"""Twilio: fetch the account resource, ``GET /2010-04-01/Accounts/{AccountSid}.json``, with
HTTP Basic authentication ``AccountSid:AuthToken``, as Twilio's REST reference documents.

The SID is part of the URL and is a secret field in the catalog, so no message here contains
the URL (and the runner scrubs it besides). 401 is Twilio's error 20003 ("Authenticate"):
wrong SID or token. An account that authenticates but is ``suspended`` or ``closed`` fails the
test too: it cannot send.
"""

from __future__ import annotations

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.provider_api import (
    base_url,
    json_object,
    path_part,
    send,
    short,
    unexpected_status,
)

DEFAULT_BASE_URL = "https://api.twilio.com"


@register("twilio")
class TwilioTest(ConnectionTest):
    live_tested = False  # contract-tested against a loopback account fetch

    def check(self, target: TestTarget, timeout: float) -> str:
        sid = target.reveal("accountSid") or ""
        token = target.reveal("authToken") or ""
        url = f"{base_url(target, DEFAULT_BASE_URL)}/2010-04-01/Accounts/{path_part(sid)}.json"
        response = send("GET", url, timeout=timeout, what="Twilio", auth=(sid, token))
        body = json_object(response)
        if response.status_code == 401:
            raise ConnectionTestError(
                "Twilio rejected the Account SID or auth token (HTTP 401, Twilio error "
                f"{short(body.get('code', 20003), 10)})"
            )
        if response.status_code == 404:
            raise ConnectionTestError("Twilio has no account with this Account SID (HTTP 404)")
        if response.status_code != 200:
            raise unexpected_status("Twilio", response)
        status = short(body.get("status", "unknown"), 30)
        if status != "active":
            raise ConnectionTestError(f"Twilio account is {status}, not active")
        name = short(body.get("friendly_name", "?"))
        return f"account '{name}' is active"
