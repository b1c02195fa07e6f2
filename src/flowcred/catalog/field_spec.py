"""One field of a credential type: its declaration, and how an input value is coerced and checked.

Split from :mod:`flowcred.catalog.schema`, which re-exports :class:`FieldSpec`; this module knows
nothing of types, placements or secrets as a whole, only of one value against one declaration.
Messages complete a sentence that starts with the field name and never contain the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from flowcred.catalog.field_formats import FORMAT_KINDS, check_format, parse_json_object

FieldKind = Literal["string", "integer", "boolean", "list", "json", "text"]
FieldFormat = Literal[
    "hostname", "port", "url", "email", "host_list", "pem", "service_account_json", "http_token"
]

# Words that read better in capitals when a label is derived from a field name.
_ACRONYMS = {
    "api": "API",
    "apns": "APNs",
    "aws": "AWS",
    "db": "DB",
    "fcm": "FCM",
    "id": "ID",
    "json": "JSON",
    "p8": "P8",
    "pem": "PEM",
    "sas": "SAS",
    "sasl": "SASL",
    "sid": "SID",
    "smtp": "SMTP",
    "ssl": "SSL",
    "tls": "TLS",
    "uri": "URI",
    "url": "URL",
    "urls": "URLs",
}

_IDENTIFIER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CAMEL_BOUNDARY_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Control characters other than tab are refused in one-line strings: they have no business in a
# host name, user name or token, and CR/LF in a header value would allow header injection.
_STRING_FORBIDDEN_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TEXT_FORBIDDEN_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LIST_SEPARATOR_RE = re.compile(r"[,\s]+")
_INTEGER_RE = re.compile(r"^[+-]?[0-9]{1,18}$")
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def derive_label(name: str) -> str:
    """Return a human label for a field name: ``access_key_id`` -> ``Access key ID``.

    Snake case and camel case are both split into words; known acronyms are capitalised.
    """
    words = _CAMEL_BOUNDARY_RE.sub("_", name).lower().split("_")
    words = [_ACRONYMS.get(word, word) for word in words if word]
    if not words:
        return name
    first = words[0]
    words[0] = first if first in _ACRONYMS.values() else first.capitalize()
    return " ".join(words)


class FieldSpec(BaseModel):
    """One field of a credential type, as declared in its YAML file.

    ``kind`` says what the value is after normalisation: ``string`` (one line), ``text`` (may
    span lines, such as a PEM key), ``integer``, ``boolean``, ``list`` (of strings) or ``json``
    (an object). ``secret`` fields go into the encrypted secret; all others into the plaintext
    config. ``aliases`` are other names accepted on input (Flowker's ``header_name`` for
    ``key_name``, for example); output always uses ``name``.

    ``destination`` marks a field that says where the secret is sent (a host, a port, a URL, a
    token endpoint, an issuer): changing it redirects the secret, so the broker lets a caller
    that may not resolve change it only together with a new secret
    (:meth:`flowcred.credentials.Credentials.update`). A secret given for a secret field must
    not be blank.

    Loading fails with a ``ValueError`` (wrapped in a pydantic ``ValidationError``) when the
    declaration contradicts itself: an invalid regular expression, a format that does not fit the
    kind, bounds on a non-integer, a default on a secret field or a default that fails the field's
    own checks.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    label: str = ""
    kind: FieldKind = "string"
    secret: bool = False
    destination: bool = False
    required: bool = False
    default: Any = None
    enum: list[str] | None = None
    pattern: str | None = None
    format: FieldFormat | None = None
    minimum: int | None = None
    maximum: int | None = None
    help: str = ""
    aliases: list[str] = Field(default_factory=list)

    _regex: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _fill_label(cls, data: Any) -> Any:
        if (
            isinstance(data, Mapping)
            and not data.get("label")
            and isinstance(data.get("name"), str)
        ):
            data = {**data, "label": derive_label(data["name"])}
        return data

    @model_validator(mode="after")
    def _check_declaration(self) -> FieldSpec:
        if not _IDENTIFIER_RE.match(self.name):
            raise ValueError(f"field name {self.name!r} must be an identifier")
        for alias in self.aliases:
            if not _IDENTIFIER_RE.match(alias):
                raise ValueError(f"alias {alias!r} of field {self.name!r} must be an identifier")
        if self.pattern is not None:
            try:
                self._regex = re.compile(self.pattern)
            except re.error:
                raise ValueError(
                    f"field {self.name!r}: pattern is not a valid regular expression"
                ) from None
        if self.enum is not None and (self.kind not in ("string", "list") or not self.enum):
            raise ValueError(f"field {self.name!r}: enum needs kind string or list and a value")
        if (self.minimum is not None or self.maximum is not None) and self.kind != "integer":
            raise ValueError(f"field {self.name!r}: minimum and maximum need kind integer")
        if self.format is not None and self.kind not in FORMAT_KINDS[self.format]:
            raise ValueError(
                f"field {self.name!r}: format {self.format} does not fit kind {self.kind}"
            )
        if self.secret and self.kind in ("integer", "boolean", "list"):
            raise ValueError(f"field {self.name!r}: a secret field must be string, text or json")
        if self.default is not None:
            if self.secret:
                # A default secret would be a secret committed to the catalog in plain text.
                raise ValueError(f"field {self.name!r}: a secret field cannot have a default")
            _, problem = self.normalize(self.default)
            if problem is not None:
                raise ValueError(f"field {self.name!r}: the default {problem}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical name followed by every alias."""
        return (self.name, *self.aliases)

    def normalize(self, value: Any) -> tuple[Any, str | None]:
        """Coerce ``value`` to this field's kind and run its checks.

        Returns ``(normalized, None)`` on success and ``(None, message)`` otherwise. The message
        completes a sentence that starts with the field name ("must be an integer") and never
        contains the value. Strings are coerced the way a command line needs: ``"5432"`` to
        ``5432``, ``"true"``/``"false"`` to booleans, ``"a,b"`` (or ``"a b"``) to ``["a", "b"]``.
        """
        coerced, problem = self._coerce(value)
        if problem is not None:
            return None, problem
        problem = self._check(coerced)
        if problem is not None:
            return None, problem
        return coerced, None

    def _coerce(self, value: Any) -> tuple[Any, str | None]:
        kind = self.kind
        if kind == "string":
            if not isinstance(value, str):
                return None, "must be a string"
            if _STRING_FORBIDDEN_RE.search(value):
                return None, "must be a single line without control characters"
            return value, None
        if kind == "text":
            if isinstance(value, Mapping):
                # A JSON document given as an object (say, a service-account key in a JSON body)
                # is stored as its text, so the secret keeps the shape its users read back.
                try:
                    return json.dumps(value, indent=2, ensure_ascii=False), None
                except (TypeError, ValueError):
                    return None, "must be text or a JSON object"
            if not isinstance(value, str):
                return None, "must be text"
            if _TEXT_FORBIDDEN_RE.search(value):
                return None, "must not contain control characters"
            return value, None
        if kind == "integer":
            return self._coerce_integer(value)
        if kind == "boolean":
            if isinstance(value, bool):
                return value, None
            if isinstance(value, str):
                word = value.strip().lower()
                if word in _TRUE_WORDS:
                    return True, None
                if word in _FALSE_WORDS:
                    return False, None
            if isinstance(value, int) and value in (0, 1):
                return bool(value), None
            return None, "must be true or false"
        if kind == "list":
            if isinstance(value, str):
                items: list[Any] = [item for item in _LIST_SEPARATOR_RE.split(value) if item]
            elif isinstance(value, list | tuple):
                items = list(value)
            else:
                return None, "must be a list of strings or a comma-separated string"
            for item in items:
                if not isinstance(item, str) or _STRING_FORBIDDEN_RE.search(item):
                    return None, "must be a list of one-line strings"
            return items, None
        # The remaining kind is json: an object, or the text of one.
        if isinstance(value, str):
            parsed = parse_json_object(value)
            if parsed is None:
                return None, "must be a JSON object"
            return parsed, None
        if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
            return dict(value), None
        return None, "must be a JSON object"

    @staticmethod
    def _coerce_integer(value: Any) -> tuple[Any, str | None]:
        if isinstance(value, bool):
            return None, "must be an integer"
        if isinstance(value, int):
            return value, None
        if isinstance(value, float) and value.is_integer():
            return int(value), None
        if isinstance(value, str) and _INTEGER_RE.match(value.strip()):
            return int(value.strip()), None
        return None, "must be an integer"

    def _check(self, value: Any) -> str | None:
        if self.required and value in ("", [], {}):
            return "must not be empty"
        if self.secret and isinstance(value, str) and not value.strip():
            # A blank secret is never a real one: it is a paste gone wrong or an unset variable,
            # and storing it would only fail later, at the far end, with a less clear error.
            return "must not be blank (empty or only whitespace)"
        items: Sequence[Any] = value if self.kind == "list" else (value,)
        if self.enum is not None:
            for item in items:
                if item not in self.enum:
                    return "must be one of " + ", ".join(self.enum)
        if self._regex is not None:
            for item in items:
                if isinstance(item, str) and not self._regex.search(item):
                    return f"does not match the pattern {self.pattern}"
        if self.kind == "integer":
            if self.minimum is not None and value < self.minimum:
                return f"must be at least {self.minimum}"
            if self.maximum is not None and value > self.maximum:
                return f"must be at most {self.maximum}"
        if self.format is not None:
            return self._check_format(self.format, items)
        return None

    @staticmethod
    def _check_format(fmt: str, items: Sequence[Any]) -> str | None:
        for item in items:
            problem = check_format(fmt, item)
            if problem is not None:
                return problem
        return None
