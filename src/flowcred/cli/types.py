"""``flowcred types``: the credential-type catalog."""

from __future__ import annotations

from typing import Annotated, get_args

import typer
from rich.table import Table
from rich.text import Text

from flowcred.catalog import CATEGORIES, CredentialFamily, CredentialType, default_catalog
from flowcred.cli.output import console, plain, print_json, visible
from flowcred.connectors.runner import live_test_of

_FAMILIES = get_args(CredentialFamily)


def types(
    name: Annotated[
        str | None, typer.Argument(help="Show this type's fields (also: `types show NAME`).")
    ] = None,
    shown: Annotated[str | None, typer.Argument(hidden=True)] = None,
    family: Annotated[
        str | None,
        typer.Option("--family", help="List only this family: " + ", ".join(_FAMILIES) + "."),
    ] = None,
    category: Annotated[
        str | None,
        typer.Option("--category", help="List only this category: " + ", ".join(CATEGORIES) + "."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List credential types (``--family oauth2`` for the OAuth2 providers, ``--category
    databases`` for one group of connectors), or one type."""
    catalog = default_catalog()
    if name == "show" and shown is not None:
        name = shown
    elif shown is not None:
        raise typer.BadParameter("give one type name, or `show NAME`")
    if name is None:
        if family is not None and family not in _FAMILIES:
            raise typer.BadParameter(
                "must be one of " + ", ".join(_FAMILIES), param_hint="--family"
            )
        if category is not None and category not in CATEGORIES:
            raise typer.BadParameter(
                "must be one of " + ", ".join(CATEGORIES), param_hint="--category"
            )
        entries = [
            t
            for t in map(catalog.get, catalog.names())
            if (family is None or t.family == family)
            and (category is None or t.category == category)
        ]
        if as_json:
            print_json([{**t.public_dict(), "liveTest": live_test_of(t)} for t in entries])
            return
        table = Table()
        for column in ("type", "family", "provider", "secret fields", "live test", "description"):
            table.add_column(column, overflow="fold")
        for t in entries:
            secrets = ", ".join(f.name for f in t.secret_fields) or "-"
            cells = (t.name, t.family, t.provider or "-", secrets, live_test_of(t), t.description)
            table.add_row(*plain(cells))
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
    console.print(Text(f"connection test: {live_test_of(ctype)}"))
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
    _print_oauth(ctype)


def _print_oauth(ctype: CredentialType) -> None:
    """The ``oauth`` block as ``key: value`` lines: templates unfilled, nothing secret in it."""
    spec = ctype.oauth
    if spec is None:
        return
    rows: list[tuple[str, str]] = [("grant", spec.grant)]
    for label, value in (
        ("authorization url", spec.authorization_url),
        ("token url", spec.token_url),
        ("issuer", spec.issuer),
        ("revocation url", spec.revocation_url),
    ):
        if value:
            rows.append((label, value))
    if spec.grant == "jwt_bearer":
        rows.append(("token url", "the key file's token_uri"))
    elif not (spec.authorization_url or spec.token_url or spec.issuer):
        rows.append(("endpoints", "from this credential's config fields"))
    rows.append(("default scopes", " ".join(spec.scopes) or "-"))
    rows.append(("pkce", "yes" if spec.pkce else "no"))
    rows.append(("client auth", spec.auth_method))
    if spec.authorize_params:
        rows.append(
            ("authorize params", ", ".join(f"{k}={v}" for k, v in spec.authorize_params.items()))
        )
    if spec.keep:
        rows.append(("keeps", ", ".join(spec.keep)))
    rows.append(("rotates refresh tokens", "yes" if spec.rotates_refresh_tokens else "no"))
    if spec.docs_url:
        rows.append(("docs", spec.docs_url))
    console.print(Text("oauth:"))
    for label, value in rows:
        console.print(Text(f"  {label}: {visible(value)}"))
