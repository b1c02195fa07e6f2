"""Firebase Cloud Messaging: the service-account key -> token -> a ``validate_only`` send.

FCM has no "who am I" call. The cheapest documented proof is the HTTP v1 API's
``POST /v1/projects/{project_id}/messages:send`` with ``"validate_only": true``: FCM checks the
token, the project and the message and delivers nothing ("Flag for testing the request without
actually delivering the message"). The message goes to a topic, so no device token is needed.
The access token comes from the key file's ``token_uri`` (scope ``firebase.messaging``).

401 means the access token was refused; 403 that the account may not send for this project
(missing role, or the FCM API is disabled); 404 that the project does not exist.
"""

from __future__ import annotations

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.google_token import access_token, google_error, key_file
from flowcred.connectors.provider_api import (
    base_url,
    json_object,
    path_part,
    send,
    short,
    unexpected_status,
)

DEFAULT_BASE_URL = "https://fcm.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TEST_TOPIC = "flowcred-connection-test"


@register("fcm")
class FcmTest(ConnectionTest):
    live_tested = False  # contract-tested against a loopback token endpoint and messages:send

    def check(self, target: TestTarget, timeout: float) -> str:
        keys = key_file(target)
        project = keys.get("project_id")
        if not isinstance(project, str) or not project:
            raise ConnectionTestError("the service-account key file has no project_id")
        token = access_token(keys, (SCOPE,), timeout)
        url = f"{base_url(target, DEFAULT_BASE_URL)}/v1/projects/{path_part(project)}/messages:send"
        response = send(
            "POST",
            url,
            timeout=timeout,
            what="FCM",
            headers={"Authorization": f"Bearer {token}"},
            json_body={
                "validate_only": True,
                "message": {
                    "topic": TEST_TOPIC,
                    "notification": {"title": "flowcred", "body": "connection test"},
                },
            },
        )
        detail = google_error(json_object(response))
        suffix = f" ({detail})" if detail else ""
        if response.status_code == 401:
            raise ConnectionTestError("FCM refused the access token (HTTP 401)" + suffix)
        if response.status_code == 403:
            raise ConnectionTestError(
                "FCM refused to send for this project (HTTP 403): the service account lacks "
                "the role or the FCM API is disabled" + suffix
            )
        if response.status_code == 404:
            raise ConnectionTestError(
                f"FCM has no project '{short(project, 60)}' (HTTP 404)" + suffix
            )
        if response.status_code != 200:
            raise unexpected_status("FCM", response)
        return f"FCM accepted a validate-only message for project '{short(project, 60)}'"
