"""``flowcred types``: the credential-type catalog."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from flowcred.catalog import default_catalog
from flowcred.cli.output import console, plain, print_json


def types(
    name: Annotated[str | None, typer.Argument(help="Show this type's fields.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List credential types, or one type's fields."""
    catalog = default_catalog()
    if name is None:
        entries = [catalog.get(n) for n in catalog.names()]
        if as_json:
            print_json([t.public_dict() for t in entries])
            return
        table = Table()
        for column in ("type", "family", "provider", "secret fields", "description"):
            table.add_column(column, overflow="fold")
        for t in entries:
            secrets = ", ".join(f.name for f in t.secret_fields) or "-"
            table.add_row(*plain((t.name, t.family, t.provider or "-", secrets, t.description)))
        console.print(table)
        return
    ctype = catalog.get(name)
    if as_json:
        print_json(ctype.public_dict())
        return
    console.print(Text(f"{ctype.name} — {ctype.title} ({ctype.family}): {ctype.description}"))
    # Which form --secret-value / secretValue takes: a composite type's JSON keys, or the plain
    # string, so nobody has to guess from an error message.
    console.print(Text(f"secret value: {ctype.secret_value_form()}"))
    table = Table()
    for column in ("field", "secret", "required", "default", "allowed", "help"):
        table.add_column(column, overflow="fold")
    for f in ctype.fields:
        table.add_row(
            *plain(
                (
                    f.name,
                    "yes" if f.secret else "",
                    "yes" if f.required else "",
                    "" if f.default is None else str(f.default),
                    ", ".join(f.enum) if f.enum else (f.format or f.kind),
                    f.help,
                )
            )
        )
    console.print(table)
