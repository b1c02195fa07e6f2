"""Turn a credential's fields into the headers, query parameters and cookies of a request.

:func:`place` runs on every uncached resolve, so it does plain dictionary work only: no regular
expressions, no pydantic, nothing that allocates more than the result. The rules come from the
type's :class:`~flowcred.catalog.schema.RequestPlacement`, read from its YAML file.

An API key's prefix is used verbatim, as Flowker does: ``prefix="Bearer "`` carries its own
space and ``prefix="Token"`` produces ``Tokenabc``. (The Lattice Credential Provider spec inserts
a space between prefix and key; flowcred does not.)
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowcred.catalog.field_formats import check_http_token
from flowcred.catalog.schema import CredentialType, RequestPlacement
from flowcred.errors import FieldProblem, InvalidCredential


@dataclass(frozen=True, slots=True, repr=False)
class Placement:
    """What a credential adds to an HTTP request, as plain strings.

    The runtime wraps the values in its ``Secret`` type before they travel further. ``repr``
    shows the names only, so a stray log of a placement cannot leak a secret.
    """

    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{part}={{{', '.join(f'{name!r}: [secure]' for name in values)}}}"
            for part, values in (
                ("headers", self.headers),
                ("query", self.query),
                ("cookies", self.cookies),
            )
        )
        return f"Placement({parts})"


def _lookup(
    name: str | None, config: Mapping[str, Any], secret: Mapping[str, Any], ctype: CredentialType
) -> Any:
    """Find a field's value in the secret, then the config, then the type's defaults."""
    if name is None:
        return None
    value = secret.get(name)
    if value is None:
        value = config.get(name)
        if value is None:
            value = ctype.defaults.get(name)
    return value


def _required(
    name: str | None, config: Mapping[str, Any], secret: Mapping[str, Any], ctype: CredentialType
) -> str:
    """Like :func:`_lookup`, but the value must be present; it is returned as a string.

    Raises :class:`~flowcred.errors.InvalidCredential` naming the field when it is missing.
    """
    value = _lookup(name, config, secret, ctype)
    if value is None or value == "":
        raise InvalidCredential(
            [FieldProblem(name or "secret", "is required to authenticate a request")],
            type_name=ctype.name,
        )
    return value if isinstance(value, str) else str(value)


def _optional(
    name: str | None,
    fallback: str,
    config: Mapping[str, Any],
    secret: Mapping[str, Any],
    ctype: CredentialType,
) -> str:
    value = _lookup(name, config, secret, ctype)
    if value is None:
        return fallback
    return value if isinstance(value, str) else str(value)


def _token_name(
    field_name: str | None,
    fallback: str,
    config: Mapping[str, Any],
    secret: Mapping[str, Any],
    ctype: CredentialType,
) -> str:
    """A header, query or cookie name, refused unless it is an RFC 9110 token.

    Input is checked when a credential is created or changed; this second check covers
    records stored before that rule, so such a value is never handed out as a header name.
    """
    name = _optional(field_name, fallback, config, secret, ctype)
    if check_http_token(name) is not None:
        raise InvalidCredential(
            [FieldProblem(field_name or "name", "must be an HTTP token (RFC 9110)")],
            type_name=ctype.name,
        )
    return name


def _place_nothing(
    plan: RequestPlacement,
    ctype: CredentialType,
    config: Mapping[str, Any],
    secret: Mapping[str, Any],
) -> Placement:
    return Placement()


def _place_api_key(
    plan: RequestPlacement,
    ctype: CredentialType,
    config: Mapping[str, Any],
    secret: Mapping[str, Any],
) -> Placement:
    key = _required(plan.secret_field, config, secret, ctype)
    name = _token_name(plan.name_field, plan.key_name, config, secret, ctype)
    location = _optional(plan.location_field, plan.location, config, secret, ctype)
    prefix = _optional(plan.prefix_field, plan.default_prefix, config, secret, ctype)
    # The prefix is concatenated verbatim; see the module docstring for why no space is added.
    value = prefix + key
    if location == "query":
        return Placement(query={name: value})
    if location == "cookie":
        return Placement(cookies={name: value})
    return Placement(headers={name: value})


def _place_bearer(
    plan: RequestPlacement,
    ctype: CredentialType,
    config: Mapping[str, Any],
    secret: Mapping[str, Any],
) -> Placement:
    token = _required(plan.secret_field, config, secret, ctype)
    header = _token_name(plan.header_field, plan.header_name, config, secret, ctype)
    prefix = _optional(plan.prefix_field, plan.default_prefix, config, secret, ctype)
    return Placement(headers={header: prefix + token})


def _place_basic(
    plan: RequestPlacement,
    ctype: CredentialType,
    config: Mapping[str, Any],
    secret: Mapping[str, Any],
) -> Placement:
    username = _optional(plan.username_field, "", config, secret, ctype)
    password = _optional(plan.password_field, "", config, secret, ctype)
    if not username and not password:
        # Some APIs take a key as the user name and an empty password, so only the absence of
        # both is an error.
        _required(plan.password_field, config, secret, ctype)
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return Placement(headers={"Authorization": "Basic " + token})


_PLACERS: dict[
    str,
    Callable[[RequestPlacement, CredentialType, Mapping[str, Any], Mapping[str, Any]], Placement],
] = {
    "none": _place_nothing,
    "fields": _place_nothing,
    "api_key": _place_api_key,
    "bearer": _place_bearer,
    "basic": _place_basic,
}


def place(ctype: CredentialType, config: Mapping[str, Any], secret: Mapping[str, Any]) -> Placement:
    """Apply ``ctype``'s request rule to a validated config and secret.

    Styles: ``none`` and ``fields`` place nothing; ``api_key`` puts ``prefix + key`` under the key
    name in a header, query parameter or cookie, per the location; ``bearer`` sets
    ``header: prefix + token`` (``Authorization: Bearer <token>`` by default); ``basic`` sets
    ``Authorization: Basic base64(username:password)``, where either part may be empty but not
    both. Each field is looked up in the secret,
    then the config, then the type's default, then the placement's constant.

    Raises :class:`~flowcred.errors.InvalidCredential` naming the field when the key, token or
    password is missing. Returns a new :class:`Placement` each call; callers may mutate it.
    """
    plan = ctype.request
    return _PLACERS[plan.style](plan, ctype, config, secret)
