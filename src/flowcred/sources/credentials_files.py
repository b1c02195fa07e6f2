"""Secrets from JSON files: one file of keys, or a directory of such files.

* ``FLOWCRED_SECRETS_FILE=/run/app/secrets.json`` (a file): the name is a top-level key
  (``gcp_client_id``).
* ``FLOWCRED_SECRETS_FILE=/etc/flowcred/credentials`` (a directory): ``file#key`` is ``key`` in
  ``<dir>/file.json`` (or ``<dir>/file``), for flowgen-style ``credentials_path`` files; a bare
  ``file`` is the whole file's text (a service-account key file).

A value that is not a string is handed out as its JSON text. A missing key or a missing file in
the directory is not found; a missing or unreadable configured path, or a file that is not valid
JSON, is a :class:`~flowcred.errors.SecretSourceError` naming the path and the JSON position,
never the content. Names cannot leave the directory (no ``/``, no ``..``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flowcred.errors import SecretSourceError
from flowcred.redaction import Secret
from flowcred.sources.base import SecretSource


class CredentialsFileSource(SecretSource):
    """Reads the file(s) at every call (they are small; a rotated file is seen at once)."""

    name = "files"
    priority = 30.0

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"CredentialsFileSource({str(self.path)!r})"

    def get(self, secret_name: str) -> Secret | None:
        if self.path.is_dir():
            return self._from_directory(secret_name)
        if not self.path.exists():
            raise SecretSourceError(self.name, f"{self.path} does not exist")
        found = _load(self.path, self.name).get(secret_name) if secret_name else None
        return _as_secret(found)

    def _from_directory(self, secret_name: str) -> Secret | None:
        file_name, sep, key = secret_name.partition("#")
        if not file_name or "/" in file_name or "\\" in file_name or file_name.startswith("."):
            return None
        for candidate in (self.path / f"{file_name}.json", self.path / file_name):
            if candidate.is_file():
                if not sep:
                    text = _read_text(candidate, self.name)
                    return Secret(text) if text else None
                return _as_secret(_load(candidate, self.name).get(key))
        return None

    def describe(self, secret_name: str) -> str:
        if self.path.is_dir():
            file_name, sep, key = secret_name.partition("#")
            return f"files:{self.path / (file_name + '.json')}" + (f"#{key}" if sep else "")
        return f"files:{self.path}#{secret_name}"


def _read_text(path: Path, source: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretSourceError(source, f"cannot read {path}: {type(exc).__name__}") from None


def _load(path: Path, source: str) -> dict[str, Any]:
    text = _read_text(path, source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SecretSourceError(
            source, f"{path} is not valid JSON: line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise SecretSourceError(source, f"{path} must hold a JSON object")
    return data


def _as_secret(value: object) -> Secret | None:
    if value is None or value == "":
        return None
    return Secret(value if isinstance(value, str) else json.dumps(value))
