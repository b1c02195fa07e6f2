"""FCM: a contract test of the key -> token -> ``validate_only`` send against loopback servers.

Documented contract (firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send):
``POST /v1/projects/{project_id}/messages:send`` with ``Authorization: Bearer <token>`` for
scope ``https://www.googleapis.com/auth/firebase.messaging``; body ``{"validate_only": bool,
"message": {...one of token / topic / condition...}}``; 200 ``{"name": "projects/.../messages/
fake_message_id"}`` for a validate-only send; 401 UNAUTHENTICATED; 403 PERMISSION_DENIED.
The token comes from the key file's token_uri (see google_key_stub).
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
from tests.connectors.google_key_stub import GoogleAccount, google_error, rsa_key
from tests.connectors.provider_stub import (
    CANARY,
    TIMEOUT,
    Answer,
    Seen,
    failure,
    running_stubs,
    target,
)

from flowcred.connectors.fcm import SCOPE, FcmTest
from flowcred.errors import DestinationRefused


@pytest.fixture
def provider_stub():
    yield from running_stubs()


def fcm_server(account: GoogleAccount, allowed_project: str):
    token_uri: list[str] = []

    def respond(seen: Seen) -> Answer:
        if seen.path == "/token":
            return account.token_endpoint(seen, token_uri[0])
        scope = account.scope_of(seen)
        if scope is None:
            return google_error(401, "UNAUTHENTICATED", "Request had invalid credentials.")
        if SCOPE not in scope.split():
            return google_error(403, "PERMISSION_DENIED", "Insufficient scope.")
        project = seen.path.removeprefix("/v1/projects/").removesuffix("/messages:send")
        if seen.method != "POST" or not seen.path.endswith("/messages:send"):
            return google_error(404, "NOT_FOUND", "Not found.")
        if project != allowed_project:
            return google_error(403, "PERMISSION_DENIED", "SenderId mismatch")
        body = seen.json()
        message = body.get("message", {})
        if body.get("validate_only") is not True or not (
            message.get("topic") or message.get("token") or message.get("condition")
        ):
            return google_error(400, "INVALID_ARGUMENT", "Invalid message.")
        return Answer(200, {"name": f"projects/{project}/messages/fake_message_id"})

    return respond, token_uri


def start(provider_stub, account: GoogleAccount, allowed_project: str = "acme-push"):
    respond, token_uri = fcm_server(account, allowed_project)
    stub = provider_stub(respond)
    token_uri.append(stub.url + "/token")
    return stub


def fcm(stub, key_file: str):
    return target("fcm", {"api_base_url": stub.url}, {"service_account_json": key_file})


def test_a_good_key_passes_a_validate_only_send(provider_stub) -> None:
    account = GoogleAccount(client_email=f"pusher-{CANARY}@acme-push.iam.gserviceaccount.com")
    stub = start(provider_stub, account)
    message = FcmTest().check(fcm(stub, account.key_file(stub.url + "/token")), TIMEOUT)
    assert message == "FCM accepted a validate-only message for project 'acme-push'"
    assert [s.path for s in stub.seen] == ["/token", "/v1/projects/acme-push/messages:send"]
    assert stub.seen[1].json()["validate_only"] is True
    assert CANARY not in message


def test_a_key_google_does_not_know_fails_at_the_token_endpoint(provider_stub) -> None:
    account = GoogleAccount()
    stub = start(provider_stub, account)
    other_key = rsa_key("unknown-to-google")
    message = failure(
        lambda: FcmTest().check(
            fcm(stub, account.key_file(stub.url + "/token", other_key)), TIMEOUT
        )
    )
    assert message == (
        "Google refused the service-account key: invalid_grant (Invalid JWT Signature.)"
    )
    assert [s.path for s in stub.seen] == ["/token"]
    assert "PRIVATE KEY" not in message


def test_a_project_the_account_may_not_send_for_is_403(provider_stub) -> None:
    account = GoogleAccount()
    stub = start(provider_stub, account, allowed_project="someone-else")
    message = failure(
        lambda: FcmTest().check(fcm(stub, account.key_file(stub.url + "/token")), TIMEOUT)
    )
    assert message.startswith("FCM refused to send for this project (HTTP 403)")
    assert "PERMISSION_DENIED: SenderId mismatch" in message


def test_the_key_files_token_uri_is_held_to_the_runners_destination_policy(
    provider_stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token_uri is in the secret, out of sight of the runner's config check: the family
    asks the running test's policy itself (here a stand-in runner that refuses everything)."""
    refused: list[str] = []

    class RefuseAll:
        def check_url(self, url: str) -> None:
            refused.append(url)
            raise DestinationRefused("169.254.169.254", "a link-local address")

    monkeypatch.setitem(
        sys.modules, "flowcred.connectors.runner", SimpleNamespace(current_policy=RefuseAll)
    )
    account = GoogleAccount()
    stub = start(provider_stub, account)
    token_uri = stub.url + "/token"
    with pytest.raises(DestinationRefused):
        FcmTest().check(fcm(stub, account.key_file(token_uri)), TIMEOUT)
    assert refused == [token_uri] and stub.seen == []
