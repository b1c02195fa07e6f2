"""The shape of a credential type: its fields, how it applies to a request, how input is checked.

A :class:`CredentialType` is data, read from one YAML file in ``catalog/data/``. It knows which
of its fields are secret, how to turn loosely typed input (JSON bodies, ``--set k=v`` strings
from the command line) into typed values, and how to convert between the structured secret and
the single ``secretValue`` string that the Flow Studio API stores.

Every validation error is an :class:`~flowcred.errors.InvalidCredential` that lists every
problem at once. Problems name fields and say what is wrong; they never contain a value, secret
or not, so an error can be logged or returned to a client without a second thought::

    ctype = default_catalog().get("postgres")
    config, secret = ctype.validate({"host": "db", "port": "5432", "database": "app",
                                     "username": "svc"}, {"password": "..."})
    config["port"]  # 5432, an int
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from flowcred.catalog.categories import ConnectorCategory
from flowcred.catalog.field_formats import parse_json_object
from flowcred.catalog.field_spec import FieldFormat, FieldKind, FieldSpec, derive_label
from flowcred.catalog.oauth_checks import check_oauth, public_oauth
from flowcred.catalog.oauth_spec import OAuthSpec
from flowcred.catalog.placement_spec import LOCATIONS, PlacementStyle, RequestPlacement
from flowcred.errors import FieldProblem, InvalidCredential

# Re-exported: the field and placement declarations live in their own modules since the split,
# and ``from flowcred.catalog.schema import FieldSpec`` (and the rest) keeps working.
__all__ = [
    "SECRET_VALUE_FIELD",
    "ConnectorCategory",
    "CredentialFamily",
    "CredentialType",
    "FieldFormat",
    "FieldKind",
    "FieldSpec",
    "PlacementStyle",
    "RequestPlacement",
    "derive_label",
]

CredentialFamily = Literal["custom", "oauth2", "connector", "messaging", "service_account"]

#: The field name used in problems about the Flow Studio ``secretValue`` string.
SECRET_VALUE_FIELD = "secretValue"

_TYPE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# A field name in user input is echoed in a problem only when it looks like an identifier:
# short, starting with a letter, no '-' or '.'. Real tokens (xoxb-..., sk_live_..., AC...) are
# longer or carry separators, so a secret pasted as a key is reported without being repeated.
_ECHOABLE_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


class CredentialType(BaseModel):
    """A credential type: its fields, its request placement, and the checks on its input.

    Instances are built from catalog YAML files and shared by the whole process, so they are
    frozen. Lookups the validators need (fields by name and alias, defaults) are computed once,
    when the type is loaded.

    ``one_of`` lists groups of field names of which at least one must be given, for types with
    alternative secrets (a password *or* a private key). A group inside the config or inside the
    secret is checked by the matching ``validate_*`` method; a group spanning both only by
    :meth:`validate`.

    A declaration that contradicts itself raises ``ValueError`` (inside a pydantic
    ``ValidationError``): a duplicate field name or alias, a ``one_of`` or placement naming a field
    the type lacks, or a placement reading the wrong kind of field. ``oauth`` (how tokens are
    obtained, :class:`~flowcred.catalog.oauth_spec.OAuthSpec`) is checked against the fields by
    :func:`~flowcred.catalog.oauth_checks.check_oauth`. ``category`` groups connectors for a
    form picker (:mod:`flowcred.catalog.categories`); ``None`` for generic and OAuth types.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    family: CredentialFamily
    provider: str | None = None
    category: ConnectorCategory | None = None
    description: str
    aliases: list[str] = Field(default_factory=list)
    fields: list[FieldSpec] = Field(default_factory=list)
    request: RequestPlacement = Field(default_factory=RequestPlacement)
    one_of: list[list[str]] = Field(default_factory=list)
    test: dict[str, Any] | None = None
    oauth: OAuthSpec | None = None

    _by_name: dict[str, FieldSpec] = PrivateAttr(default_factory=dict)
    _input_names: dict[str, str] = PrivateAttr(default_factory=dict)
    _secret_fields: tuple[FieldSpec, ...] = PrivateAttr(default=())
    _config_fields: tuple[FieldSpec, ...] = PrivateAttr(default=())
    _defaults: Mapping[str, Any] = PrivateAttr(default_factory=lambda: MappingProxyType({}))
    _groups: dict[str, tuple[tuple[str, ...], ...]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_declaration(self) -> CredentialType:
        if not _TYPE_NAME_RE.match(self.name):
            raise ValueError(f"type name {self.name!r} must be lower snake case")
        for alias in self.aliases:
            if not _TYPE_NAME_RE.match(alias):
                raise ValueError(f"type alias {alias!r} must be lower snake case")
        by_name: dict[str, FieldSpec] = {}
        input_names: dict[str, str] = {}
        for spec in self.fields:
            for input_name in spec.names:
                if input_name in input_names:
                    raise ValueError(
                        f"field name or alias {input_name!r} is declared twice "
                        f"(by {input_names[input_name]!r} and {spec.name!r})"
                    )
                input_names[input_name] = spec.name
            by_name[spec.name] = spec
        self._by_name = by_name
        self._input_names = input_names
        self._secret_fields = tuple(spec for spec in self.fields if spec.secret)
        self._config_fields = tuple(spec for spec in self.fields if not spec.secret)
        self._defaults = MappingProxyType(
            {spec.name: spec.default for spec in self.fields if spec.default is not None}
        )
        self._groups = self._sort_groups()
        self._check_placement()
        if self.oauth is not None:
            check_oauth(self.oauth, by_name)
        return self

    def _sort_groups(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        sorted_groups: dict[str, list[tuple[str, ...]]] = {"config": [], "secret": [], "mixed": []}
        for group in self.one_of:
            if len(group) < 2:
                raise ValueError("each one_of group needs at least two field names")
            unknown = [name for name in group if name not in self._by_name]
            if unknown:
                raise ValueError("one_of names unknown fields: " + ", ".join(unknown))
            secrecy = {self._by_name[name].secret for name in group}
            side = "mixed" if len(secrecy) == 2 else ("secret" if True in secrecy else "config")
            sorted_groups[side].append(tuple(group))
        return {side: tuple(groups) for side, groups in sorted_groups.items()}

    def _check_placement(self) -> None:
        placement = self.request
        for attr, field_name in placement._named_attrs():
            if field_name is None:
                continue
            spec = self._by_name.get(field_name)
            if spec is None:
                raise ValueError(f"request.{attr} names {field_name!r}, which is not a field")
            if attr == "secret_field" and not spec.secret:
                raise ValueError(f"request.secret_field {field_name!r} is not a secret field")
            if attr in ("name_field", "location_field", "prefix_field", "header_field"):
                if spec.secret or spec.kind != "string":
                    raise ValueError(
                        f"request.{attr} {field_name!r} must be a non-secret string field"
                    )
            if attr in ("name_field", "header_field") and spec.format != "http_token":
                # The value becomes a header, query-parameter or cookie name: only an RFC 9110
                # token may be one, or a config value could inject a header.
                raise ValueError(f"request.{attr} {field_name!r} needs format http_token")
            if attr == "location_field" and not (spec.enum and set(spec.enum) <= LOCATIONS):
                raise ValueError(
                    f"request.location_field {field_name!r} needs an enum within "
                    "header, query, cookie"
                )

    @property
    def secret_fields(self) -> list[FieldSpec]:
        """The secret fields, in declaration order."""
        return list(self._secret_fields)

    @property
    def config_fields(self) -> list[FieldSpec]:
        """The non-secret (config) fields, in declaration order."""
        return list(self._config_fields)

    @property
    def defaults(self) -> Mapping[str, Any]:
        """Read-only map of field name to default, for the fields that declare one."""
        return self._defaults

    @property
    def destination_fields(self) -> list[FieldSpec]:
        """The fields marked ``destination`` (where the secret is sent), in declaration order."""
        return [spec for spec in self.fields if spec.destination]

    @property
    def plain_secret_field(self) -> FieldSpec | None:
        """The secret field a plain ``secretValue`` string fills, or ``None`` if there is none.

        That is the one secret field of a single-secret type, or the one *required* secret field
        of a composite type (``aws_s3``'s ``secret_access_key``; its optional session token then
        needs the JSON form). A composite type with no or several required secret fields takes
        only the JSON object.
        """
        fields = self._secret_fields
        if len(fields) == 1:
            return fields[0]
        required = [spec for spec in fields if spec.required]
        return required[0] if len(required) == 1 else None

    def secret_value_form(self) -> str:
        """One sentence for people: which form this type's ``secretValue`` takes."""
        fields = self._secret_fields
        if not fields:
            return "no secret: the secret value is empty"
        plain = self.plain_secret_field
        if len(fields) == 1 and plain is not None:
            return f"a plain string (the {plain.name})"
        keys = ", ".join(f"{spec.name}{' (required)' if spec.required else ''}" for spec in fields)
        obj = f"a JSON object with keys {keys}"
        for group in self._groups.get("secret", ()):
            obj += f"; at least one of {', '.join(group)}"
        if plain is not None:
            return f"a plain string (the {plain.name}) or {obj}"
        return obj

    @property
    def is_composite(self) -> bool:
        """True when the type has more than one secret field.

        A composite type's ``secretValue`` is the JSON text of an object; a single-secret type's
        is the one string; a type without secret fields has none.
        """
        return len(self._secret_fields) > 1

    def public_dict(self) -> dict[str, Any]:
        """What a user may see of this type (``flowcred types --json``, ``GET /api/types``).

        Never a secret: a type holds none (secret fields have no default), and ``oauth`` shows
        URL templates unfilled.
        """
        return {
            "name": self.name,
            "title": self.title,
            "family": self.family,
            "provider": self.provider,
            "category": self.category,
            "description": self.description,
            "aliases": list(self.aliases),
            "composite": self.is_composite,
            "fields": [
                {
                    "name": f.name,
                    "label": f.label,
                    "kind": f.kind,
                    "secret": f.secret,
                    "destination": f.destination,
                    "required": f.required,
                    "default": f.default,
                    "enum": f.enum,
                    "format": f.format,
                    "help": f.help,
                }
                for f in self.fields
            ],
            "oauth": None if self.oauth is None else public_oauth(self.oauth),
        }

    def field(self, name: str) -> FieldSpec:
        """Return the field called ``name`` (an alias works too).

        Raises ``KeyError`` when the type has no such field.
        """
        return self._by_name[self._input_names[name]]

    def canonical_field_name(self, name: str) -> str | None:
        """Return the canonical name for an input name or alias, or ``None`` if unknown."""
        return self._input_names.get(name)

    def validate_config(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check and normalise the non-secret config; return it with defaults filled in.

        Aliases are renamed to canonical names, strings are coerced to the field kinds, and the
        enum, pattern, format, bounds and required checks run. Raises
        :class:`~flowcred.errors.InvalidCredential` listing every problem when a field is unknown,
        is a secret field (so a secret never lands in the plaintext config), is given twice under
        different names, fails a check, or is required and missing.
        """
        problems: list[FieldProblem] = []
        result = self._validate_side(config, secret=False, problems=problems)
        self._raise_if(problems)
        return result

    def validate_secret(self, secret: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check and normalise the secret; return it.

        The same rules as :meth:`validate_config` apply, with the roles swapped: a non-secret
        field passed in the secret is a problem. Raises
        :class:`~flowcred.errors.InvalidCredential` listing every problem.
        """
        problems: list[FieldProblem] = []
        result = self._validate_side(secret, secret=True, problems=problems)
        self._raise_if(problems)
        return result

    # The name is part of the catalog's contract. It shadows pydantic's deprecated
    # ``BaseModel.validate`` classmethod, which flowcred never uses: ``model_validate`` replaces
    # it.
    def validate(  # type: ignore[override]
        self, config: Mapping[str, Any] | None, secret: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check config and secret together; return ``(config, secret)`` normalised.

        Raises one :class:`~flowcred.errors.InvalidCredential` holding the problems of both, plus
        any ``one_of`` group spanning config and secret of which nothing was given.
        """
        problems: list[FieldProblem] = []
        clean_config = self._validate_side(config, secret=False, problems=problems)
        clean_secret = self._validate_side(secret, secret=True, problems=problems)
        present = {**clean_config, **clean_secret}
        self._check_groups(self._groups["mixed"], present, problems)
        self._raise_if(problems)
        return clean_config, clean_secret

    def parse_secret_value(self, value: str) -> dict[str, Any]:
        """Turn a Flow Studio ``secretValue`` string into a secret dict (not yet validated).

        A single-secret type maps the string to its one secret field; a composite type expects
        the JSON text of an object, except that one with exactly one required secret field
        (:attr:`plain_secret_field`) also takes a string that is not a JSON object as that field;
        a type without secret fields accepts only an empty string.
        Pass the result to :meth:`validate_secret`. Raises
        :class:`~flowcred.errors.InvalidCredential` with a problem on ``secretValue`` when the
        value does not have that shape. The problem never quotes the input, and no JSON parser
        message is passed on, since those can quote it.
        """
        if not isinstance(value, str):
            self._fail([FieldProblem(SECRET_VALUE_FIELD, "must be a string")])
        fields = self._secret_fields
        if not fields:
            if value.strip():
                self._fail(
                    [FieldProblem(SECRET_VALUE_FIELD, f"must be empty: {self.name} has no secret")]
                )
            return {}
        if len(fields) == 1:
            return {fields[0].name: value}
        parsed = parse_json_object(value)
        if parsed is None:
            plain = self.plain_secret_field
            if plain is not None:
                return {plain.name: value}
            names = ", ".join(spec.name for spec in fields)
            self._fail(
                [FieldProblem(SECRET_VALUE_FIELD, f"must be a JSON object with fields {names}")]
            )
        return parsed

    def secret_value_of(self, secret: Mapping[str, Any]) -> str:
        """Return the ``secretValue`` string for a validated secret; the inverse of parsing.

        A single-secret type gives its one string (a ``json`` value as compact JSON); a composite
        type gives compact JSON with keys in field declaration order, leaving out absent fields
        (Twilio: ``{"accountSid":"AC...","authToken":"..."}``); a type without secret fields
        gives ``""``. Raises :class:`~flowcred.errors.InvalidCredential` when a single-secret
        type's field is missing.
        """
        fields = self._secret_fields
        if not fields:
            return ""
        if len(fields) == 1:
            value = secret.get(fields[0].name)
            if value is None:
                self._fail([FieldProblem(fields[0].name, "is required")])
            return value if isinstance(value, str) else _compact_json(value)
        return _compact_json(
            {spec.name: secret[spec.name] for spec in fields if secret.get(spec.name) is not None}
        )

    def _validate_side(
        self, values: Mapping[str, Any] | None, *, secret: bool, problems: list[FieldProblem]
    ) -> dict[str, Any]:
        side = "secret" if secret else "config"
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            problems.append(FieldProblem(side, "must be an object of field names to values"))
            return {}
        result: dict[str, Any] = {}
        given_as: dict[str, str] = {}
        for key, value in values.items():
            canonical = self._input_names.get(key) if isinstance(key, str) else None
            if canonical is None:
                # Keys on the secret side are never echoed: whatever is typed there may be
                # secret material, whatever it looks like.
                echo = not secret and isinstance(key, str) and _ECHOABLE_KEY_RE.match(key)
                if echo:
                    problems.append(FieldProblem(str(key), "unknown field"))
                else:
                    expected = ", ".join(f.name for f in self.fields if f.secret == secret)
                    problems.append(
                        FieldProblem(side, f"unknown field (name not shown; expected: {expected})")
                    )
                continue
            if value is None:
                # JSON null means "not given"; the default (if any) applies below.
                continue
            spec = self._by_name[canonical]
            if spec.secret and not secret:
                problems.append(
                    FieldProblem(
                        canonical, "is a secret field; pass it as the secret, not in config"
                    )
                )
                continue
            if secret and not spec.secret:
                problems.append(FieldProblem(canonical, "is not a secret field; pass it in config"))
                continue
            if canonical in given_as:
                problems.append(
                    FieldProblem(
                        canonical, f"is given more than once (as {given_as[canonical]} and {key})"
                    )
                )
                continue
            given_as[canonical] = key
            normalized, problem = spec.normalize(value)
            if problem is not None:
                problems.append(FieldProblem(canonical, problem))
            else:
                result[canonical] = normalized
        for spec in self._secret_fields if secret else self._config_fields:
            if spec.name in given_as:
                continue
            if spec.default is not None:
                result[spec.name] = copy.deepcopy(spec.default)
            elif spec.required:
                problems.append(FieldProblem(spec.name, "is required"))
        self._check_groups(self._groups[side], {**result, **given_as}, problems)
        return result

    @staticmethod
    def _check_groups(
        groups: Sequence[tuple[str, ...]], present: Mapping[str, Any], problems: list[FieldProblem]
    ) -> None:
        for group in groups:
            if not any(present.get(name) not in (None, "", [], {}) for name in group):
                problems.append(
                    FieldProblem(group[0], "at least one of " + ", ".join(group) + " is required")
                )

    def _raise_if(self, problems: Sequence[FieldProblem]) -> None:
        if problems:
            self._fail(problems)

    def _fail(self, problems: Sequence[FieldProblem]) -> NoReturn:
        raise InvalidCredential(problems, type_name=self.name)


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
