"""SendGrid: ``GET /v3/scopes`` with the API key, the documented way to see what a key may do.

401 means SendGrid does not know the key (mistyped, deleted or revoked); 403 means it knows
the key but refuses it here (the key lacks the permission, or the account's IP access
management blocks this address). A success counts the key's scopes and says whether it may
send mail (``mail.send``), which is what the credential is for.
"""

from __future__ import annotations

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.provider_api import base_url, json_object, send, unexpected_status

DEFAULT_BASE_URL = "https://api.sendgrid.com"


@register("sendgrid")
class SendGridTest(ConnectionTest):
    live_tested = False  # contract-tested against a loopback /v3/scopes

    def check(self, target: TestTarget, timeout: float) -> str:
        key = target.reveal("api_key") or ""
        response = send(
            "GET",
            base_url(target, DEFAULT_BASE_URL) + "/v3/scopes",
            timeout=timeout,
            what="SendGrid",
            headers={"Authorization": f"Bearer {key}"},
        )
        if response.status_code == 401:
            raise ConnectionTestError(
                "SendGrid rejected the API key (HTTP 401): it is unknown, deleted or revoked"
            )
        if response.status_code == 403:
            raise ConnectionTestError(
                "SendGrid refused the API key (HTTP 403): it lacks the permission, or IP "
                "access management blocks this address"
            )
        if response.status_code != 200:
            raise unexpected_status("SendGrid", response)
        scopes = json_object(response).get("scopes")
        if not isinstance(scopes, list):
            raise ConnectionTestError("SendGrid answered without a scopes list")
        can_send = "mail.send" in scopes
        return f"API key accepted with {len(scopes)} scopes" + (
            "; it may send mail" if can_send else "; it may NOT send mail (no mail.send scope)"
        )
