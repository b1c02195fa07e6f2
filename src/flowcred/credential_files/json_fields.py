"""Typed reads of one JSON object from a credentials file, failing with the path, never a value.

Every family parser reads its fields through :class:`JsonObject`, so every structural problem
(a missing field, a wrong type, an empty secret) becomes the same kind of error:
``CredentialsFileMalformed("Failed to parse credentials file at PATH: missing field 'x'")``.
Messages name the field (dotted for nested objects, ``api_keys[1]`` for list items) and the JSON
type found, never the value: tests plant canary secrets in malformed files and look for them.

``null`` counts as absent for optional fields, as serde's ``Option`` treats it in flowgen;
unknown fields are ignored, as flowgen ignores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from flowcred.errors import CredentialsFileMalformed
from flowcred.redaction import Secret


def json_type_name(value: object) -> str:
    """The JSON name of ``value``'s type (``object``, ``array``, ``string``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def malformed(path: str, reason: str) -> CredentialsFileMalformed:
    """The error for a file at ``path`` that does not parse as expected, for ``reason``."""
    return CredentialsFileMalformed(path, f"Failed to parse credentials file at {path}: {reason}")


class JsonObject:
    """One JSON object of the file at ``path``; ``prefix`` is its dotted place in the file."""

    def __init__(self, path: str, data: Mapping[str, Any], prefix: str = "") -> None:
        self.path = path
        self._data = data
        self._prefix = prefix

    def has(self, name: str) -> bool:
        """Whether ``name`` is present and not ``null``."""
        return self._data.get(name) is not None

    def fail(self, reason: str) -> NoReturn:
        raise malformed(self.path, reason)

    def _name(self, name: str) -> str:
        return f"{self._prefix}{name}"

    def _raw(self, name: str) -> Any:
        if name not in self._data:
            self.fail(f"missing field '{self._name(name)}'")
        return self._data[name]

    def _wrong_type(self, name: str, expected: str, value: object) -> NoReturn:
        self.fail(f"field '{self._name(name)}' must be {expected}, not {json_type_name(value)}")

    def _text(self, name: str, value: object) -> str:
        if not isinstance(value, str):
            self._wrong_type(name, "a string", value)
        if not value:
            self.fail(f"field '{self._name(name)}' must not be empty")
        return value

    def string(self, name: str) -> str:
        """A required, non-empty string."""
        return self._text(name, self._raw(name))

    def optional_string(self, name: str) -> str | None:
        """A non-empty string, or ``None`` when absent or ``null``."""
        if not self.has(name):
            return None
        return self._text(name, self._data[name])

    def secret(self, name: str) -> Secret:
        """A required, non-empty string, wrapped so that it prints as ``[secure]``."""
        return Secret(self.string(name))

    def optional_secret(self, name: str) -> Secret | None:
        value = self.optional_string(name)
        return None if value is None else Secret(value)

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        """An integer in ``[low, high]``; ``default`` when absent."""
        if not self.has(name):
            return default
        value = self._data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong_type(name, "an integer", value)
        if not low <= value <= high:
            self.fail(f"field '{self._name(name)}' must be between {low} and {high}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """``true`` or ``false``; ``default`` when absent."""
        if not self.has(name):
            return default
        value = self._data[name]
        if not isinstance(value, bool):
            self._wrong_type(name, "true or false", value)
        return value

    def object(self, name: str) -> JsonObject:
        """A required nested object."""
        value = self._raw(name)
        if not isinstance(value, dict):
            self._wrong_type(name, "an object", value)
        return JsonObject(self.path, value, f"{self._name(name)}.")

    def optional_object(self, name: str) -> JsonObject | None:
        if not self.has(name):
            return None
        return self.object(name)

    def secret_list(self, name: str) -> tuple[Secret, ...]:
        """A list of non-empty strings, each wrapped; empty when absent."""
        if not self.has(name):
            return ()
        values = self._data[name]
        if not isinstance(values, list):
            self._wrong_type(name, "an array of strings", values)
        return tuple(Secret(self._text(f"{name}[{i}]", value)) for i, value in enumerate(values))
