"""Forms generated from the catalog: one input per field of a credential type, and back.

The catalog's schema is the authority (server-side validation in the broker); the inputs only
carry hints (``required``, ``type=url``, ``inputmode``, enum selects) so people see most mistakes
before they submit. Rules:

* A secret field is a password input whose value is never filled in, not even after a failed
  submit: a secret typed into the browser goes to the server once and never comes back.
* Inputs are named ``field:<name>`` so a catalog field can never collide with the page's own
  inputs (``name``, ``environment``, ``csrf_token``); their ids are ``field-<name>`` and their
  error slots ``err-field-<name>``.
* An empty input means "not given" (the type's default applies, or the broker says it is
  required); strings are passed through and the catalog coerces them (``5432``, ``true``,
  ``a, b``), so the form and the REST API accept exactly the same values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from flowcred.catalog.schema import CredentialType, FieldSpec
from flowcred.errors import InvalidCredential

PREFIX = "field:"

#: The page's own inputs (not catalog fields), by error-slot key.
COMMON_FIELDS = ("name", "environment", "handle", "expires_at")


@dataclass(frozen=True)
class FieldView:
    """What the template needs to draw one input."""

    name: str
    input_name: str
    input_id: str
    label: str
    control: str  # input | password | textarea | select | boolean
    input_type: str  # text, url, number, email (for control == input)
    required: bool
    secret: bool
    value: str  # always "" for a secret field
    default: str
    options: tuple[str, ...]
    help: str
    error: str
    placeholder: str

    @property
    def error_id(self) -> str:
        return f"err-{self.input_id}"

    @property
    def help_id(self) -> str:
        return f"help-{self.input_id}"


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        import json

        return json.dumps(value, indent=2, sort_keys=True)
    return str(value)


def _control(spec: FieldSpec) -> tuple[str, str]:
    if spec.enum:
        return "select", "text"
    if spec.kind == "boolean":
        return "boolean", "text"
    if spec.secret:
        return ("textarea" if spec.kind in ("text", "json") else "password"), "text"
    if spec.kind in ("text", "json"):
        return "textarea", "text"
    if spec.kind == "integer":
        return "input", "number"
    if spec.format == "url":
        return "input", "url"
    if spec.format == "email":
        return "input", "email"
    return "input", "text"


def field_views(
    type_spec: CredentialType,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    secret: bool | None = None,
    secrets_optional: bool = False,
) -> list[FieldView]:
    """Inputs for ``type_spec``'s fields; ``secret=True``/``False`` keeps only secret / only
    non-secret fields. ``values`` fill non-secret inputs (a stored config or what was just
    submitted); secret inputs stay empty whatever ``values`` holds. ``secrets_optional`` drops
    the required mark on secret fields (an edit: blank keeps the stored secret)."""
    values = values or {}
    errors = errors or {}
    out = []
    for spec in type_spec.fields:
        if secret is not None and spec.secret != secret:
            continue
        control, input_type = _control(spec)
        is_secret = bool(spec.secret)
        out.append(
            FieldView(
                name=spec.name,
                input_name=PREFIX + spec.name,
                input_id=f"field-{spec.name}",
                label=spec.label,
                control=control,
                input_type=input_type,
                required=bool(spec.required) and not (is_secret and secrets_optional),
                secret=is_secret,
                value="" if is_secret else _shown(values.get(spec.name)),
                default=_shown(spec.default),
                options=tuple(str(o) for o in (spec.enum or ())),
                help=spec.help or "",
                error=errors.get(f"field-{spec.name}", ""),
                placeholder="" if is_secret else _shown(spec.default),
            )
        )
    return out


def submitted(
    type_spec: CredentialType, form: FormData, *, secret: bool | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """``(config, secret)`` from a submitted form: non-empty ``field:<name>`` inputs of the
    type's fields, split by the catalog's ``secret`` flag. Unknown inputs are ignored."""
    config: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for spec in type_spec.fields:
        if secret is not None and spec.secret != secret:
            continue
        raw = form.get(PREFIX + spec.name)
        if not isinstance(raw, str):
            continue
        value = raw if spec.kind in ("text", "json") else raw.strip()
        if value == "":
            continue
        (secrets if spec.secret else config)[spec.name] = value
    return config, secrets


def field_errors(exc: InvalidCredential, type_spec: CredentialType | None) -> dict[str, str]:
    """The broker's problems keyed by error slot: ``field-<name>`` for a catalog field, the
    common field's own name (``name``, ...) otherwise; the rest under ``_form``."""
    known = {f.name for f in type_spec.fields} if type_spec is not None else set()
    out: dict[str, list[str]] = {}
    for problem in exc.problems:
        name = problem.field
        if type_spec is not None and name not in known:
            canonical = type_spec.canonical_field_name(name)
            if canonical is not None:
                name = canonical
        if name in known:
            key = f"field-{name}"
        elif name in COMMON_FIELDS:
            key = name
        elif name == "expiresAt":
            key = "expires_at"
        else:
            key = "_form"
        text = problem.message if key != "_form" else f"{problem.field} {problem.message}"
        out.setdefault(key, []).append(text)
    return {k: "; ".join(v) for k, v in out.items()}
