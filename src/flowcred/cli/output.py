"""Terminal output for the CLI: rich tables for people, stable JSON for scripts, masked secrets.

Nothing here prints a secret unless the caller passes ``reveal=True`` (the ``--reveal`` flag).

Two rules hold for everything printed through this module:

* **JSON has one style** (:func:`print_json`): the REST API's camelCase keys (:func:`to_json_keys`)
  and its timestamps, UTC with ``Z`` (:func:`iso_z`), so a script can switch between
  ``flowcred ... --json`` and ``GET /api/...`` without renaming anything.
* **Text is inert** (:func:`visible`, and the consoles below): user-supplied names, handles and
  tenants cannot move the cursor, clear the screen, forge a line or a table row, or style the
  terminal. Control characters are shown escaped (``\\x1b``, ``\\n``) and rich markup is off, so
  a name ``[bold]x`` prints as written.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from flowcred.records import Credential, SecretVersion

# C0 controls, DEL, C1 controls, and the Unicode bidirectional overrides and isolates (which can
# make a terminal show text in an order other than the one stored).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control character escaped visibly (``\\x1b``, ``\\n``, ``\\u202e``).

    For one value (a name, a handle, a tenant) placed into a line: a newline in it is escaped
    too, so it cannot start a forged line of output.
    """
    return _CONTROL.sub(_escape, text)


class SafeConsole(Console):
    """A rich console with markup off that prints no raw control character.

    Every ``str`` given to :meth:`print` is escaped like :func:`visible` except ``\\n``, which
    a message may use on purpose; values from users are escaped fully by :func:`plain` and
    :func:`visible` before they are placed into a message.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        kwargs["markup"] = False
        safe = [_CONTROL_BUT_NEWLINE.sub(_escape, o) if isinstance(o, str) else o for o in objects]
        super().print(*safe, **kwargs)


# Wide enough that tables do not wrap ids and handles when output is piped to a file.
console = SafeConsole(width=None if sys.stdout.isatty() else 160, highlight=False, markup=False)
err_console = SafeConsole(
    stderr=True, highlight=False, markup=False, width=None if sys.stderr.isatty() else 160
)

# Values that are maps of user-chosen or wire names (a type's config fields, header names, audit
# details): their keys are data, not part of the JSON schema, and are never renamed.
OPAQUE_KEYS = frozenset({"config", "details", "fields", "headers", "query", "cookies", "entry"})


def camel(name: str) -> str:
    """``snake_case`` → ``camelCase`` (``last_used_at`` → ``lastUsedAt``); camelCase is kept."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def iso_z(value: datetime | None) -> str | None:
    """A timestamp as the REST API writes it: UTC, ``Z``, microseconds only when not zero.

    ``2026-12-02T04:30:00Z``, ``2026-12-02T04:30:00.250000Z`` (pydantic's form). A naive
    datetime is taken to be UTC already, as flowcred stores them.
    """
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


def _timestamp_text(value: str) -> str:
    # Already UTC with Z (the audit chain's own fixed-width spelling, which export and the hash
    # use): kept as is, so ``audit list --json`` stays byte-equal to ``audit export``.
    if value.endswith("Z"):
        return value
    try:
        return iso_z(datetime.fromisoformat(value.replace("Z", "+00:00"))) or value
    except ValueError:
        return value


def to_json_keys(data: Any, renames: Mapping[str, str] | None = None) -> Any:
    """``data`` in the one ``--json`` style: camelCase keys, timestamps by :func:`iso_z`.

    Applied recursively, except inside :data:`OPAQUE_KEYS` values (config field names, header
    names and audit details stay as they are). ``renames`` maps top-level keys to REST names
    that are not plain camelCase (``id`` → ``credentialId``). A timestamp is a ``datetime`` or
    the ISO text of one under a key ending in ``At``.
    """
    if isinstance(data, datetime):
        return iso_z(data)
    if isinstance(data, list | tuple):
        return [to_json_keys(item) for item in data]
    if not isinstance(data, Mapping):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = (renames or {}).get(key) or camel(str(key))
        if name in OPAQUE_KEYS:
            out[name] = _datetimes_only(value)
        elif isinstance(value, str) and name.endswith("At"):
            out[name] = _timestamp_text(value)
        else:
            out[name] = to_json_keys(value)
    return out


def _datetimes_only(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, Mapping):
        return {k: _datetimes_only(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_datetimes_only(v) for v in value]
    return value


# The REST API's names where they are not the camelCase of the Python attribute (CredentialPublic).
CREDENTIAL_RENAMES = {"id": "credentialId", "tenant": "tenantId"}


def credential_json(record: Credential, **extra: Any) -> dict[str, Any]:
    """A credential as ``GET /api/credentials/{id}`` names it (``credentialId``, ``tenantId``)."""
    data: dict[str, Any] = to_json_keys(record.to_dict(), CREDENTIAL_RENAMES)
    data.update(to_json_keys(extra))
    return data


def version_json(version: SecretVersion) -> dict[str, Any]:
    """A kept secret version as the REST API names it (``createdAt``, ``kekVersion``)."""
    data: dict[str, Any] = to_json_keys(version.to_dict())
    return data


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON (stable key order) in the one ``--json`` style."""
    sys.stdout.write(json.dumps(to_json_keys(data), indent=2, sort_keys=True) + "\n")


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def status_label(record: Credential) -> str:
    """The status as shown to a person: ``active (expiring soon)`` inside the window."""
    return f"{record.status} (expiring soon)" if record.expiring_soon else record.status


def credentials_table(records: Sequence[Credential]) -> Table:
    table = Table(show_lines=False)
    for column in (
        "id",
        "handle",
        "name",
        "type",
        "family",
        "tenant",
        "env",
        "status",
        "version",
        "last used",
    ):
        table.add_column(column, overflow="fold")
    for r in records:
        cells = (
            str(r.id),
            r.handle,
            r.name,
            r.type,
            r.family,
            r.tenant,
            r.environment,
            status_label(r),
            str(r.current_version),
            when(r.last_used_at),
        )
        table.add_row(*plain(cells))
    return table


def key_value_table(rows: Iterable[tuple[str, str]], title: str | None = None) -> Table:
    table = Table(show_header=False, title=title, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in rows:
        table.add_row(*plain((key, value)))
    return table


def plain(values: Iterable[str]) -> list[Text]:
    """Cells as literal text: user data such as ``[bold]`` is not rich markup, and a control
    character in it is shown escaped (:func:`visible`), never sent to the terminal."""
    return [Text(visible(v)) for v in values]
