"""The ``oauth:`` block of a credential type: how flowcred obtains and refreshes its tokens.

Provider entries (``google.yaml``, ``microsoft.yaml``, ...) and the generic OAuth types carry one.
It is data, like the rest of a type: endpoint URL templates whose ``{field}`` placeholders are
filled from the credential's config (Microsoft's ``{tenant}``, Shopify's ``{shop}``), default
scopes, whether PKCE is used, the client authentication method, a refresh margin override, a
default lifetime for tokens sent without ``expires_in``, and which non-secret fields of the token
response to keep beside the access token.

A type whose ``oauth`` is set never hands out its stored secrets on resolve: the token manager
(``runtime/token_manager.py``) turns them into an access token, and only that leaves flowcred.

Endpoint resolution, in order: the template here (filled from config), then the config field of
the same name (``token_url`` / ``authorization_url``), then OIDC discovery from the ``issuer``
(template here or config field). :func:`fill` fails with an ``InvalidCredential`` naming the
missing field, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from flowcred.errors import FieldProblem, InvalidCredential

Grant = Literal["authorization_code", "client_credentials", "password", "jwt_bearer"]
ClientAuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]

_PLACEHOLDER_RE = re.compile(r"\{([a-z][a-z0-9_]*)\}")


class OAuthSpec(BaseModel):
    """How a type's tokens are obtained. See the module docstring for endpoint resolution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grant: Grant
    authorization_url: str | None = None
    token_url: str | None = None
    issuer: str | None = None
    revocation_url: str | None = None
    scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    pkce: bool = True
    auth_method: ClientAuthMethod = "client_secret_basic"
    refresh_margin_seconds: float | None = Field(default=None, ge=0)
    default_lifetime_seconds: float | None = Field(default=None, gt=0)
    keep: tuple[str, ...] = ()
    authorize_params: Mapping[str, str] = Field(default_factory=dict)
    rotates_refresh_tokens: bool = False
    docs_url: str | None = None

    def placeholders(self) -> set[str]:
        """The config fields the URL templates read."""
        found: set[str] = set()
        for template in (self.authorization_url, self.token_url, self.issuer, self.revocation_url):
            if template:
                found.update(_PLACEHOLDER_RE.findall(template))
        return found


def fill(template: str, config: Mapping[str, Any], *, what: str = "url") -> str:
    """``template`` with every ``{field}`` replaced by that config value, URL-quoted.

    A value may not carry ``/``, ``?``, ``#`` or ``@`` (``{shop}`` is a name, not a URL), so a
    config value cannot point the token request at another host. Raises ``InvalidCredential``
    naming each missing or unusable field.
    """
    problems: list[FieldProblem] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = config.get(name)
        if value is None or value == "":
            problems.append(FieldProblem(name, f"is required to build the {what}"))
            return ""
        text = str(value)
        if any(ch in text for ch in "/?#@\\ ") and not _is_url_field(name):
            problems.append(FieldProblem(name, "must be a plain name, not a URL or path"))
            return ""
        return text.rstrip("/") if _is_url_field(name) else quote(text, safe=".-_~")

    result = _PLACEHOLDER_RE.sub(replace, template)
    if problems:
        raise InvalidCredential(problems)
    return result


def _is_url_field(name: str) -> bool:
    """Fields that hold a whole base URL by design (Keycloak's realm URL, a self-hosted GitLab)."""
    return name.endswith("_url")
