"""Load flowgen ``credentials_path`` files: typed, checked, and never echoed.

flowcred hosts engines that keep task credentials in JSON files mounted from Kubernetes
secrets (flowgen's ``credentials_path``). :func:`load_credentials` reads one such file in the
format of its task family and returns a typed result whose secrets are
:class:`~flowcred.redaction.Secret` (reprs show ``[secure]``) and whose ``to_material()`` gives
:class:`~flowcred.runtime.material.CredentialMaterial`.

Contract:

* ``kind`` is a family (``http``, ``mcp``, ``nats``, ``gcp``, ``salesforce``, ``mssql``,
  ``object_store``, ``git``) or a flowgen task type (see :func:`kind_for_task`).
* A missing or unreadable file raises :class:`~flowcred.errors.CredentialsFileUnreadable`
  ("Failed to read credentials file at PATH: <OS reason>"); a file that is not the expected
  JSON raises :class:`~flowcred.errors.CredentialsFileMalformed` ("Failed to parse credentials
  file at PATH: line L column C: <JSON error>", or "...: missing field 'x'", or a wrong type).
  No message ever quotes the file's content: operators grep worker logs for these words, and
  a malformed file is exactly the one whose secret would otherwise land in a log.
* Unknown fields are ignored, as flowgen ignores them.
* A file readable or writable by group or others is loaded, but a warning is logged on the
  ``flowcred.files`` logger (flowgen leaves permissions to the operator; we say it). The same
  text is available from :func:`permission_warning`.
* Every secret value loaded is registered for log redaction, so it is masked if anything
  later logs it raw.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import stat
from collections.abc import Callable, Iterator
from typing import Any, Literal, overload

from flowcred.credential_files.gcp import GcpServiceAccount, parse_gcp
from flowcred.credential_files.git import GitCredentials, parse_git
from flowcred.credential_files.http import (
    HttpCredentials,
    McpCredentials,
    parse_http,
    parse_mcp,
)
from flowcred.credential_files.json_fields import JsonObject, json_type_name, malformed
from flowcred.credential_files.mssql import MssqlCredentials, parse_mssql
from flowcred.credential_files.nats import NatsCredentials, parse_nats
from flowcred.credential_files.object_store import (
    AzureCredentials,
    GcsCredentials,
    ObjectStoreCredentials,
    S3Credentials,
    parse_object_store,
)
from flowcred.credential_files.salesforce import SalesforceCredentials, parse_salesforce
from flowcred.errors import CredentialsFileUnreadable, FieldProblem, InvalidInput
from flowcred.redaction import Secret, register_secret

__all__ = [
    "KINDS",
    "AzureCredentials",
    "CredentialsFile",
    "GcpServiceAccount",
    "GcsCredentials",
    "GitCredentials",
    "HttpCredentials",
    "McpCredentials",
    "MssqlCredentials",
    "NatsCredentials",
    "S3Credentials",
    "SalesforceCredentials",
    "kind_for_task",
    "load_credentials",
    "permission_warning",
]

log = logging.getLogger("flowcred.files")

#: A credentials file is a few kilobytes; anything far larger is not one (and is not read whole).
MAX_FILE_BYTES = 1024 * 1024

CredentialsFile = (
    HttpCredentials
    | McpCredentials
    | NatsCredentials
    | GcpServiceAccount
    | SalesforceCredentials
    | MssqlCredentials
    | ObjectStoreCredentials
    | GitCredentials
)

_PARSERS: dict[str, Callable[[JsonObject], CredentialsFile]] = {
    "http": parse_http,
    "mcp": parse_mcp,
    "nats": parse_nats,
    "gcp": parse_gcp,
    "salesforce": parse_salesforce,
    "mssql": parse_mssql,
    "object_store": parse_object_store,
    "git": parse_git,
}

#: The families :func:`load_credentials` reads.
KINDS = frozenset(_PARSERS)

# flowgen task types by exact name, then by prefix (``gcp_bigquery_query`` -> gcp).
_TASKS = {
    "http_endpoint": "http",
    "http_request": "http",
    "mcp_tool": "mcp",
    "nats_kv_store": "nats",
    "mssql_query": "mssql",
    "object_store": "object_store",
    "git_sync": "git",
}
_TASK_PREFIXES = (
    ("nats_jetstream_", "nats"),
    ("gcp_", "gcp"),
    ("salesforce_", "salesforce"),
    ("object_store_", "object_store"),
)


def kind_for_task(task_type: str) -> str | None:
    """The credentials-file family of a flowgen task type (or of a family name), else ``None``."""
    if task_type in KINDS:
        return task_type
    if task_type in _TASKS:
        return _TASKS[task_type]
    return next((kind for prefix, kind in _TASK_PREFIXES if task_type.startswith(prefix)), None)


def _mode_warning(path: str, mode: int) -> str | None:
    if os.name != "posix" or not mode & 0o077:
        return None
    return (
        f"credentials file at {path} is accessible by group or others "
        f"(mode {stat.S_IMODE(mode):04o}); restrict it with: chmod 600 {path}"
    )


def permission_warning(path: str | os.PathLike[str]) -> str | None:
    """A warning when the file is readable or writable by group or others, else ``None``.

    ``None`` too when the file cannot be inspected (loading it reports why).
    """
    shown = os.fspath(path)
    try:
        mode = os.stat(shown).st_mode
    except OSError:
        return None
    return _mode_warning(shown, mode)


def _unreadable(path: str, reason: str) -> CredentialsFileUnreadable:
    return CredentialsFileUnreadable(path, f"Failed to read credentials file at {path}: {reason}")


def _read(path: str) -> bytes:
    """The file's bytes, read through one descriptor (permissions checked on that same file)."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _unreadable(path, exc.strerror or type(exc).__name__) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise _unreadable(path, "it is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise _unreadable(path, "not a regular file")
        warning = _mode_warning(path, info.st_mode)
        if warning is not None:
            log.warning("%s", warning)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise _unreadable(path, f"larger than {MAX_FILE_BYTES} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise _unreadable(path, exc.strerror or type(exc).__name__) from None
    finally:
        os.close(fd)


def _parse_object(path: str, data: bytes) -> JsonObject:
    """The top-level JSON object; errors give a position and the parser's message, no content.

    Errors are raised outside the ``except`` blocks on purpose: a ``JSONDecodeError`` holds the
    whole document (``.doc``), and chaining it as ``__context__`` would hand the file's secrets
    to any error reporter that walks the chain.
    """
    reason: str | None = None
    value: Any = None
    try:
        text = data.decode("utf-8-sig")
        value = json.loads(text)
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text (byte {exc.start})"
    except json.JSONDecodeError as exc:
        # exc.msg is one of the decoder's fixed phrases; str(exc) is the same plus the position.
        reason = f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    except RecursionError:
        reason = "JSON nested too deeply"
    except ValueError:
        reason = "a JSON number is out of range"
    if reason is not None:
        raise malformed(path, reason)
    if not isinstance(value, dict):
        found = json_type_name(value)
        raise malformed(path, f"expected a JSON object at the top level, not {found}")
    return JsonObject(path, value)


def _secrets_in(value: Any) -> Iterator[Secret]:
    """Every :class:`Secret` in a loaded result, however nested."""
    if isinstance(value, Secret):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _secrets_in(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for spec in dataclasses.fields(value):
            yield from _secrets_in(getattr(value, spec.name))


@overload
def load_credentials(path: str | os.PathLike[str], kind: Literal["http"]) -> HttpCredentials: ...
@overload
def load_credentials(path: str | os.PathLike[str], kind: Literal["mcp"]) -> McpCredentials: ...
@overload
def load_credentials(path: str | os.PathLike[str], kind: Literal["nats"]) -> NatsCredentials: ...
@overload
def load_credentials(path: str | os.PathLike[str], kind: Literal["gcp"]) -> GcpServiceAccount: ...
@overload
def load_credentials(
    path: str | os.PathLike[str], kind: Literal["salesforce"]
) -> SalesforceCredentials: ...
@overload
def load_credentials(path: str | os.PathLike[str], kind: Literal["mssql"]) -> MssqlCredentials: ...
@overload
def load_credentials(
    path: str | os.PathLike[str], kind: Literal["object_store"]
) -> ObjectStoreCredentials: ...
@overload
def load_credentials(path: str | os.PathLike[str], kind: Literal["git"]) -> GitCredentials: ...
@overload
def load_credentials(path: str | os.PathLike[str], kind: str) -> CredentialsFile: ...
def load_credentials(path: str | os.PathLike[str], kind: str) -> CredentialsFile:
    """Read the credentials file at ``path`` as family ``kind`` (see the module docstring)."""
    family = kind_for_task(kind)
    if family is None:
        raise InvalidInput(
            [FieldProblem("kind", f"unknown kind {kind!r}; expected one of {sorted(KINDS)}")],
            subject="credentials file kind",
        )
    shown = os.fspath(path)
    result = _PARSERS[family](_parse_object(shown, _read(shown)))
    for secret in _secrets_in(result):
        register_secret(secret)
    return result
