"""Fixtures of the webhook tests: the project's real-uvicorn ``serve`` fixture, and credentials
holding canary secrets that no response, header or log line may ever contain."""

from __future__ import annotations

from tests.api.conftest import serve  # noqa: F401  (the project's one uvicorn fixture)

from flowcred.credential_files.http import BasicAuth, HttpCredentials, McpCredentials
from flowcred.redaction import Secret

BEARER = "whk-canary-bearer-7Qx2LmZ9"
USER = "hook-user"
PASSWORD = "whk-canary-pass-Rt81Vw0p"
WORKER_BEARER = "whk-canary-worker-K3n5Pq"
MCP_KEYS = ("whk-canary-mcp-one-A1", "whk-canary-mcp-two-B2")
CANARIES = (BEARER, PASSWORD, WORKER_BEARER, *MCP_KEYS)

BEARER_ONLY = HttpCredentials(bearer_auth=Secret(BEARER))
BASIC_ONLY = HttpCredentials(basic_auth=BasicAuth(USER, Secret(PASSWORD)))
BOTH = HttpCredentials(bearer_auth=Secret(BEARER), basic_auth=BasicAuth(USER, Secret(PASSWORD)))
WORKER = HttpCredentials(bearer_auth=Secret(WORKER_BEARER))
MCP = McpCredentials(api_keys=tuple(Secret(k) for k in MCP_KEYS))


def basic(user: str, password: str) -> str:
    """An ``Authorization: Basic`` value, as a client builds it."""
    return BasicAuth(user, Secret(password)).header_value()


def assert_no_canary(*texts: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in text
