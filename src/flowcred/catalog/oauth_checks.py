"""Load-time checks of a type's ``oauth:`` block against the type's own fields.

Split from :mod:`flowcred.catalog.schema` to keep it short. Each check raises ``ValueError`` (which
pydantic wraps, so the registry reports the file) naming the field or template at fault; a broken
OAuth declaration then fails start-up instead of the first token request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flowcred.catalog.field_spec import FieldSpec
from flowcred.catalog.oauth_spec import OAuthSpec

# ``keep`` names a key of the token response, or a dotted path into it (Slack's ``team.id``).
_KEEP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ANY_BRACE_RE = re.compile(r"[{}]")
_PLACEHOLDER_RE = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def check_oauth(spec: OAuthSpec, fields: Mapping[str, FieldSpec]) -> None:
    """Raise ``ValueError`` when ``spec`` does not fit the type whose fields are ``fields``.

    The contract: every ``{placeholder}`` of a URL template names a config (non-secret) field,
    and that field is ``destination`` (it decides where the client secret goes); an
    authorization-code grant has an authorization endpoint (template, or a config field
    ``authorization_url``) and ``client_id``; a type with ``oauth`` has a secret
    ``client_secret``, except a ``jwt_bearer`` type (which signs with ``service_account_json``)
    and a public client (``auth_method: none``, which must use PKCE); every ``keep`` entry is an
    identifier or a dotted path of identifiers.
    """
    templates = {
        "authorization_url": spec.authorization_url,
        "token_url": spec.token_url,
        "issuer": spec.issuer,
        "revocation_url": spec.revocation_url,
    }
    for what, template in templates.items():
        if template is None:
            continue
        stripped = _PLACEHOLDER_RE.sub("", template)
        if _ANY_BRACE_RE.search(stripped):
            raise ValueError(f"oauth.{what}: a placeholder must be {{lower_snake_case}}")
        if not template.startswith(("https://", "{")):
            raise ValueError(f"oauth.{what} must be an https URL template")
        for name in _PLACEHOLDER_RE.findall(template):
            field = fields.get(name)
            if field is None:
                raise ValueError(f"oauth.{what} reads {{{name}}}, which is not a field")
            if field.secret:
                raise ValueError(f"oauth.{what} reads {{{name}}}, which is a secret field")
            if not field.destination:
                raise ValueError(
                    f"oauth.{what} reads {{{name}}}: that field decides where the secret is "
                    "sent, so it must be marked destination"
                )
    _check_grant(spec, fields)
    for entry in spec.keep:
        if not _KEEP_RE.match(entry):
            raise ValueError(f"oauth.keep entry {entry!r} must be an identifier or dotted path")


def _check_grant(spec: OAuthSpec, fields: Mapping[str, FieldSpec]) -> None:
    def config_field(name: str) -> bool:
        field = fields.get(name)
        return field is not None and not field.secret

    def secret_field(name: str) -> bool:
        field = fields.get(name)
        return field is not None and field.secret

    if spec.grant == "jwt_bearer":
        if not secret_field("service_account_json"):
            raise ValueError("oauth grant jwt_bearer needs a secret field service_account_json")
        return
    if not config_field("client_id"):
        raise ValueError(f"oauth grant {spec.grant} needs a config field client_id")
    if spec.auth_method == "none":
        if not spec.pkce:
            raise ValueError("oauth auth_method none (a public client) needs pkce: true")
    elif not secret_field("client_secret"):
        raise ValueError("a type with oauth needs a secret field client_secret")
    if spec.grant == "authorization_code" and not (
        spec.authorization_url or config_field("authorization_url")
    ):
        raise ValueError(
            "oauth grant authorization_code needs authorization_url "
            "(a template or a config field authorization_url)"
        )
    if not (spec.token_url or spec.issuer or config_field("token_url") or config_field("issuer")):
        raise ValueError("oauth needs a token endpoint: token_url or issuer (template or field)")


def public_oauth(spec: OAuthSpec) -> dict[str, Any]:
    """What a user may see of an ``oauth`` block: grant, URL templates, scopes, PKCE, method.

    Templates are shown unfilled (``https://login.microsoftonline.com/{tenant}/...``); an OAuth
    block holds no secret, but this names each key explicitly so a future field is not shown
    by accident.
    """
    return {
        "grant": spec.grant,
        "authorizationUrl": spec.authorization_url,
        "tokenUrl": spec.token_url,
        "issuer": spec.issuer,
        "revocationUrl": spec.revocation_url,
        "scopes": list(spec.scopes),
        "scopeSeparator": spec.scope_separator,
        "pkce": spec.pkce,
        "authMethod": spec.auth_method,
        "keep": list(spec.keep),
        "authorizeParams": dict(spec.authorize_params),
        "rotatesRefreshTokens": spec.rotates_refresh_tokens,
        "defaultLifetimeSeconds": spec.default_lifetime_seconds,
        "docsUrl": spec.docs_url,
        "placeholders": sorted(spec.placeholders()),
    }
