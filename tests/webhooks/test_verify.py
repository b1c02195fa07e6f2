"""flowcred.webhooks.verify: flowgen's incoming-webhook rules, compared in constant time."""

from __future__ import annotations

import logging

import pytest
from starlette.datastructures import Headers
from tests.webhooks.conftest import (
    BASIC_ONLY,
    BEARER,
    BEARER_ONLY,
    BOTH,
    MCP,
    MCP_KEYS,
    PASSWORD,
    USER,
    WORKER,
    WORKER_BEARER,
    assert_no_canary,
    basic,
)

from flowcred.credential_files.http import HttpCredentials, McpCredentials
from flowcred.errors import WebhookUnauthorized
from flowcred.webhook_asgi import WebhookAuth, WebhookEndpoint
from flowcred.webhooks import effective_credentials, verify


def refused(headers: object, credentials: object) -> WebhookUnauthorized:
    with pytest.raises(WebhookUnauthorized) as info:
        verify(headers, credentials)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize("credentials", [None, {}, HttpCredentials(), McpCredentials()])
def test_no_credentials_configured_lets_every_request_pass(credentials: object) -> None:
    assert verify({}, credentials) is None  # type: ignore[arg-type]
    assert verify({"Authorization": "Bearer anything"}, credentials) is None  # type: ignore[arg-type]


def test_right_bearer_and_right_basic_pass() -> None:
    verify({"Authorization": f"Bearer {BEARER}"}, BEARER_ONLY)
    verify({"authorization": basic(USER, PASSWORD)}, BASIC_ONLY)
    verify(Headers({"AUTHORIZATION": f"bearer {BEARER}"}), BOTH)  # schemes are case-insensitive
    verify([(b"authorization", basic(USER, PASSWORD).encode())], BOTH)  # raw ASGI headers


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {BEARER}x"},
        {"Authorization": f"Bearer {BEARER[:-1]}"},
        {"Authorization": f"Token {BEARER}"},
        {"Authorization": BEARER},
        {"X-Api-Key": BEARER},
    ],
)
def test_missing_or_wrong_bearer_is_refused_the_same_way(headers: dict[str, str]) -> None:
    error = refused(headers, BEARER_ONLY)
    assert str(error) == "unauthorized"
    assert error.challenge == 'Bearer realm="flowcred"'


def test_a_bearer_header_is_never_checked_against_basic_and_vice_versa() -> None:
    # A Bearer token equal to the basic password, or to base64(user:pass), does not pass.
    assert refused({"Authorization": f"Bearer {PASSWORD}"}, BASIC_ONLY).challenge == (
        'Basic realm="flowcred"'
    )
    encoded = basic(USER, PASSWORD).split(" ", 1)[1]
    refused({"Authorization": f"Bearer {encoded}"}, BASIC_ONLY)
    refused({"Authorization": basic(USER, BEARER)}, BEARER_ONLY)


@pytest.mark.parametrize(
    "value",
    [
        basic(USER, "wrong"),
        basic("someone-else", PASSWORD),
        basic(USER, PASSWORD + "x"),
        "Basic !!!not-base64!!!",
        "Basic ",
    ],
)
def test_wrong_basic_credentials_are_refused(value: str) -> None:
    refused({"Authorization": value}, BOTH)


def test_two_authorization_headers_are_refused_even_if_one_is_right() -> None:
    refused(
        [(b"authorization", f"Bearer {BEARER}".encode()), (b"authorization", b"Bearer x")], BOTH
    )


def test_mcp_accepts_each_api_key_as_a_bearer_token_and_nothing_else() -> None:
    for key in MCP_KEYS:
        verify({"Authorization": f"Bearer {key}"}, MCP)
    refused({"Authorization": "Bearer not-a-key"}, MCP)
    refused({"Authorization": basic(USER, MCP_KEYS[0])}, MCP)


def test_the_challenge_names_the_configured_schemes_only() -> None:
    assert refused({}, BOTH).challenge == 'Bearer realm="flowcred", Basic realm="flowcred"'
    assert refused({}, MCP).challenge == 'Bearer realm="flowcred"'


def test_endpoint_credentials_replace_the_worker_default_whole() -> None:
    assert effective_credentials(None, WORKER) is WORKER
    assert effective_credentials(BASIC_ONLY, WORKER) is BASIC_ONLY
    # No field merge: the endpoint's basic-only file does not inherit the worker's bearer.
    refused({"Authorization": f"Bearer {WORKER_BEARER}"}, effective_credentials(BASIC_ONLY, WORKER))
    # An endpoint file of {} replaces the default with "no check".
    verify({}, effective_credentials(HttpCredentials(), WORKER))


def test_unknown_credential_kinds_are_a_type_error_not_a_silent_allow() -> None:
    with pytest.raises(TypeError):
        verify({}, {"bearer_auth": BEARER})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        verify({}, BEARER)  # type: ignore[arg-type]


def test_refusals_log_the_reason_but_never_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="flowcred")
    for value in (f"Bearer {PASSWORD}", basic(USER, BEARER), f"Bearer {BEARER}x"):
        refused({"Authorization": value}, BOTH)
    assert "refused" in caplog.text
    assert_no_canary(caplog.text)


def test_configured_objects_print_no_secret() -> None:
    shown = repr(WebhookEndpoint(BOTH)) + repr(WebhookAuth(MCP).credentials) + repr(WORKER)
    assert "[secure]" in shown
    assert_no_canary(shown)
