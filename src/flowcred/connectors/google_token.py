"""A Google service-account key file -> one short-lived OAuth access token, for a test.

The key file is the credential; the test proves it by exchanging a signed JWT assertion
(RFC 7523, built by :func:`flowcred.runtime.jwt_bearer.service_account_assertion`) for an
access token at the file's ``token_uri`` and then making one cheap authenticated call with it
(FCM, BigQuery, Cloud Storage). The token is used once and dropped: a test does not feed the
token cache of the runtime, so it proves the key itself, not a token cached earlier.

Google's token endpoint answers a refused assertion with HTTP 400 or 401 and
``{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}``; the
description is Google's fixed text (it never echoes the key) and is shown.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flowcred.connectors.base import ConnectionTestError, TestTarget
from flowcred.connectors.provider_api import (
    check_secret_destination,
    json_object,
    send,
    short,
    unexpected_status,
)
from flowcred.errors import InvalidCredential
from flowcred.runtime.jwt_bearer import JWT_BEARER_GRANT, service_account_assertion


def key_file(target: TestTarget, field: str = "service_account_json") -> dict[str, Any]:
    """The parsed key file from the secret field, or a :class:`ConnectionTestError`."""
    text = target.reveal(field)
    if not text:
        raise ConnectionTestError(f"{field} is missing")
    try:
        parsed = json.loads(text)
    except ValueError:
        raise ConnectionTestError(f"{field} is not JSON") from None
    if not isinstance(parsed, dict):
        raise ConnectionTestError(f"{field} is not a JSON object")
    return parsed


def access_token(keys: dict[str, Any], scopes: tuple[str, ...], timeout: float) -> str:
    """Exchange a fresh assertion for an access token at ``keys["token_uri"]``."""
    try:
        token_uri, assertion = service_account_assertion(keys, scopes=scopes, now=time.time())
    except InvalidCredential as exc:
        names = ", ".join(problem.field for problem in exc.problems)
        raise ConnectionTestError(
            f"the service-account key file is not usable (check {names})"
        ) from None
    check_secret_destination(token_uri)
    response = send(
        "POST",
        token_uri,
        timeout=timeout,
        what="Google's token endpoint",
        form={"grant_type": JWT_BEARER_GRANT, "assertion": assertion},
    )
    body = json_object(response)
    if response.status_code in (400, 401, 403):
        error = short(body.get("error", "refused"), 40)
        description = short(body.get("error_description", ""), 120)
        raise ConnectionTestError(
            f"Google refused the service-account key: {error}"
            + (f" ({description})" if description else "")
        )
    if response.status_code != 200:
        raise unexpected_status("Google's token endpoint", response)
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise ConnectionTestError("Google's token endpoint answered without an access token")
    return token


def google_error(body: dict[str, Any]) -> str:
    """``status: message`` of a Google API error body (``{"error": {...}}``), for a message."""
    error = body.get("error")
    if not isinstance(error, dict):
        return ""
    status = short(error.get("status", ""), 40)
    message = short(error.get("message", ""), 160)
    return ": ".join(part for part in (status, message) if part)


def api_failure(what: str, response: Any) -> ConnectionTestError:
    """The error for a Google API's non-200 answer, using its documented status codes."""
    detail = google_error(json_object(response))
    suffix = f" ({detail})" if detail else ""
    if response.status_code == 401:
        return ConnectionTestError(f"{what} refused the access token (HTTP 401){suffix}")
    if response.status_code == 403:
        return ConnectionTestError(
            f"{what} denied the service account (HTTP 403): it lacks the role, or the API is "
            f"disabled for the project{suffix}"
        )
    if response.status_code == 404:
        return ConnectionTestError(f"{what} has no such project or resource (HTTP 404){suffix}")
    return unexpected_status(what, response)
