"""HttpCredentials and MCP credentials, the formats webhooks and HTTP tasks share.

flowgen's ``http_endpoint`` / ``http_request`` files are ``{"bearer_auth": "tok",
"basic_auth": {"username": "u", "password": "p"}}``, both optional (``{}`` means no auth);
``mcp_tool`` files are ``{"api_keys": ["k1", "k2"]}``, each accepted as a Bearer token.
Secret values are :class:`~flowcred.redaction.Secret`, so every repr shows ``[secure]``
(flowgen's own structs print them in debug output; these do not).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from flowcred.redaction import Secret


@dataclass(frozen=True, slots=True)
class BasicAuth:
    username: str
    password: Secret

    def header_value(self) -> str:
        """``Basic base64(username:password)``; the caller treats the result as a secret."""
        raw = f"{self.username}:{self.password.reveal()}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True)
class HttpCredentials:
    """An HTTP task's credentials. Outgoing, bearer wins over basic; neither means no header."""

    bearer_auth: Secret | None = None
    basic_auth: BasicAuth | None = None

    @property
    def configured(self) -> bool:
        """Whether any check applies to incoming requests (``{}`` means none)."""
        return self.bearer_auth is not None or self.basic_auth is not None

    def authorization(self) -> Secret | None:
        """The outgoing ``Authorization`` value: Bearer if set, else Basic, else ``None``."""
        if self.bearer_auth is not None:
            return Secret("Bearer " + self.bearer_auth.reveal())
        if self.basic_auth is not None:
            return Secret(self.basic_auth.header_value())
        return None


@dataclass(frozen=True, slots=True)
class McpCredentials:
    """An MCP tool's API keys; each is sent and accepted as a Bearer token. Empty: no auth."""

    api_keys: tuple[Secret, ...] = field(default_factory=tuple)
