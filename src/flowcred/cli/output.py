"""Terminal output for the CLI: rich tables for people, stable JSON for scripts, masked secrets.

Nothing here prints a secret unless the caller passes ``reveal=True`` (the ``--reveal`` flag).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from flowcred.records import Credential

# Wide enough that tables do not wrap ids and handles when output is piped to a file.
console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON (stable key order) on standard output."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=_default) + "\n")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


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
            r.status,
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
    """Cells as literal text: user data such as ``[secure]`` must not be read as rich markup."""
    return [Text(v) for v in values]
