"""Slack: ``POST auth.test`` with the bot token, Slack's documented "who am I" call.

Slack answers HTTP 200 for a refused token too, with ``{"ok": false, "error": "invalid_auth"}``;
the error code is Slack's own vocabulary (``invalid_auth``, ``not_authed``, ``token_revoked``,
``account_inactive``, ...) and is shown as is, because it is what Slack's documentation and
support use. A success names the team and the user the token acts as.
"""

from __future__ import annotations

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.provider_api import (
    base_url,
    json_object,
    send,
    short,
    unexpected_status,
)

DEFAULT_BASE_URL = "https://slack.com/api"

_HINTS = {
    "invalid_auth": "the token is not valid",
    "not_authed": "no token was accepted",
    "token_revoked": "the token was revoked",
    "token_expired": "the token has expired",
    "account_inactive": "the user or bot was deactivated",
}


@register("slack")
class SlackTest(ConnectionTest):
    live_tested = False  # contract-tested against a loopback auth.test

    def check(self, target: TestTarget, timeout: float) -> str:
        token = target.reveal("token") or ""
        url = base_url(target, DEFAULT_BASE_URL) + "/auth.test"
        response = send(
            "POST",
            url,
            timeout=timeout,
            what="Slack",
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code != 200:
            raise unexpected_status("Slack", response)
        body = json_object(response)
        if body.get("ok") is True:
            team = short(body.get("team", "?"))
            user = short(body.get("user", "?"))
            return f"authenticated as {user} in team {team}"
        code = short(body.get("error", "unknown_error"), 60)
        hint = _HINTS.get(code)
        raise ConnectionTestError(
            f"Slack refused the token: {code}" + (f" ({hint})" if hint else "")
        )
