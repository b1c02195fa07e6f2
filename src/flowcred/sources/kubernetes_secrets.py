"""Secrets from Kubernetes secret volumes: one file per key.

A secret mounted at ``FLOWCRED_K8S_SECRETS_DIR`` (say ``/etc/secrets``) appears as files named
by key. The kubelet writes them as ``key -> ..data/key`` with ``..data`` a symlink to a
timestamped directory it swaps atomically on update; reading through the symlinks always gives
one consistent version. Names:

* ``key``: ``<dir>/key``;
* ``secret#key``: ``<dir>/secret/key``, for several secrets mounted under one directory.

One trailing newline is stripped (``kubectl create secret --from-file`` keeps the file's, and
editors add one); other whitespace is kept. A missing file is not found. A missing or unreadable
directory, a file that is not UTF-8, or a symlink pointing outside the directory is a
:class:`~flowcred.errors.SecretSourceError`. The kubelet's own entries (``..data``,
``..2024_...``) are never secrets.
"""

from __future__ import annotations

import os
from pathlib import Path

from flowcred.errors import SecretSourceError
from flowcred.redaction import Secret
from flowcred.sources.base import SecretSource


class KubernetesSecretsSource(SecretSource):
    name = "k8s"
    priority = 25.0

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"KubernetesSecretsSource({str(self.directory)!r})"

    def _path_of(self, secret_name: str) -> Path | None:
        parts = secret_name.split("#")
        if len(parts) > 2 or any(not p or p.startswith(".") or "/" in p for p in parts):
            return None
        return self.directory.joinpath(*parts)

    def get(self, secret_name: str) -> Secret | None:
        if not self.directory.is_dir():
            raise SecretSourceError(self.name, f"secrets directory {self.directory} is missing")
        path = self._path_of(secret_name)
        if path is None:
            return None
        try:
            real = path.resolve(strict=True)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretSourceError(
                self.name, f"cannot open {path}: {type(exc).__name__}"
            ) from None
        if not real.is_relative_to(self.directory.resolve()):
            raise SecretSourceError(self.name, f"{path} points outside {self.directory}")
        if not real.is_file():
            return None
        try:
            text = real.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise SecretSourceError(self.name, f"{path} is not UTF-8 text") from None
        except OSError as exc:
            raise SecretSourceError(
                self.name, f"cannot read {path}: {type(exc).__name__}"
            ) from None
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
        return Secret(text) if text else None

    def describe(self, secret_name: str) -> str:
        path = self._path_of(secret_name)
        return f"k8s:{path if path is not None else self.directory / secret_name}"


def _failed(what: str, path: Path, exc: OSError) -> str:
    return f"cannot {what} {path}: {type(exc).__name__}"
