"""``flowcred resolve``: what a flow would receive, masked unless ``--reveal``."""

from __future__ import annotations

from typing import Annotated

import typer

from flowcred.cli.output import console, key_value_table, print_json, when
from flowcred.cli.session import open_cli_broker
from flowcred.redaction import Secret


def resolve(
    ref: str,
    tenant: Annotated[str, typer.Option("--tenant", "-t")] = "default",
    env: Annotated[str, typer.Option("--env", "-e")] = "default",
    reveal: Annotated[bool, typer.Option("--reveal", help="Show secret values.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Resolve REF (id or handle) to the material a flow gets; secrets masked unless --reveal."""
    with open_cli_broker() as broker:
        material = broker.provider(tenant=tenant, environment=env).resolve(ref)
    if as_json:
        print_json(material.to_dict(reveal=reveal))
        return

    def show(value: object) -> str:
        if isinstance(value, Secret):
            return value.reveal() if reveal else "[secure]"
        return str(value)

    rows = [
        ("credential", f"{material.credential_id} ({material.handle}, {material.type})"),
        ("version", str(material.version)),
        ("expires", when(material.expires_at)),
    ]
    rows += [(f"header {k}", show(v)) for k, v in material.headers.items()]
    rows += [(f"query {k}", show(v)) for k, v in material.query.items()]
    rows += [(f"cookie {k}", show(v)) for k, v in material.cookies.items()]
    rows += [(f"field {k}", show(v)) for k, v in sorted(material.fields.items())]
    console.print(key_value_table(rows))
