"""HttpCredentials and MCP credentials, the formats webhooks and HTTP tasks share.

flowgen's ``http_endpoint`` / ``http_request`` files are ``{"bearer_auth": "tok",
"basic_auth": {"username": "u", "password": "p"}}``, both optional (``{}`` means no auth);
``mcp_tool`` files are ``{"api_keys": ["k1", "k2"]}``, each accepted as a Bearer token.
Secret values are :class:`~flowcred.redaction.Secret`, so every repr shows ``[secure]``
(flowgen's own structs print them in debug output; these do not). ``path`` is the file the
credentials came from (empty when built in code); it is not part of equality.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from flowcred.credential_files.json_fields import JsonObject
from flowcred.credential_files.material import file_material
from flowcred.redaction import Secret
from flowcred.runtime.material import CredentialMaterial


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
    path: str = field(default="", compare=False)

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

    def to_material(self, handle: str | None = None) -> CredentialMaterial:
        """``Authorization`` header (bearer wins) plus the fields that are set."""
        value = self.authorization()
        basic = self.basic_auth
        return file_material(
            type_name="http",
            path=self.path,
            handle=handle,
            headers={"Authorization": value} if value is not None else None,
            fields={
                "bearer_auth": self.bearer_auth,
                "username": basic.username if basic else None,
                "password": basic.password if basic else None,
            },
        )


@dataclass(frozen=True, slots=True)
class McpCredentials:
    """An MCP tool's API keys; each is sent and accepted as a Bearer token. Empty: no auth."""

    api_keys: tuple[Secret, ...] = field(default_factory=tuple)
    path: str = field(default="", compare=False)

    @property
    def configured(self) -> bool:
        """Whether incoming requests must present one of the keys (an empty list means no)."""
        return bool(self.api_keys)

    def to_material(self, handle: str | None = None) -> CredentialMaterial:
        """Outgoing: the first key as ``Authorization: Bearer``; every key under ``api_keys``."""
        headers = None
        if self.api_keys:
            headers = {"Authorization": Secret("Bearer " + self.api_keys[0].reveal())}
        return file_material(
            type_name="mcp",
            path=self.path,
            handle=handle,
            headers=headers,
            fields={"api_keys": self.api_keys},
        )


def parse_http(obj: JsonObject) -> HttpCredentials:
    """``{"bearer_auth"?, "basic_auth"?: {"username", "password"}}``; ``{}`` means no auth."""
    basic = obj.optional_object("basic_auth")
    return HttpCredentials(
        bearer_auth=obj.optional_secret("bearer_auth"),
        basic_auth=(
            BasicAuth(basic.string("username"), basic.secret("password")) if basic else None
        ),
        path=obj.path,
    )


def parse_mcp(obj: JsonObject) -> McpCredentials:
    """``{"api_keys": ["k1", ...]}``; absent or empty means no auth."""
    return McpCredentials(api_keys=obj.secret_list("api_keys"), path=obj.path)
