"""``flowcred apikeys``: create, list, revoke and rotate platform API keys.

A new key is printed once, on standard output, and cannot be shown again: only its SHA-256 is
stored. Lists show ids and metadata, never a key or a hash. Create, revoke and rotate are
recorded on the audit chain as the OS user (the rules are :mod:`flowcred.api_key_admin`'s).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from flowcred.api_key_admin import ApiKeyAdmin
from flowcred.broker import Broker
from flowcred.cli.output import console, err_console, plain, print_json, when
from flowcred.cli.session import open_cli_broker
from flowcred.errors import FieldProblem, InvalidInput
from flowcred.store.api_keys import (
    DEFAULT_EXPIRY,
    ROLES,
    ApiKey,
    ApiKeyStore,
    Expiry,
    Role,
    generate_raw_key,
    hash_key,
    validate_key_fields,
)

app = typer.Typer(help="Manage platform API keys (X-API-Key).", no_args_is_help=True)

SHOWN_ONCE = "this API key is shown only once and cannot be shown again: store it now"

JsonOpt = Annotated[bool, typer.Option("--json", help="Print stable JSON for scripts.")]
RoleOpt = Annotated[str, typer.Option("--role", "-r", help=f"One of: {', '.join(ROLES)}.")]
TenantOpt = Annotated[
    str, typer.Option("--tenant", "-t", help="Tenant the key is confined to; '*' = platform.")
]
NameOpt = Annotated[str, typer.Option("--name", "-n", help="A label for people.")]


def api_key_store(broker: Broker) -> ApiKeyStore:
    """The broker's key store (shared cache; bootstrap keys from the environment)."""
    return broker.api_keys


def _admin(broker: Broker) -> ApiKeyAdmin:
    """The host's operator manages every key; the audit rules are ApiKeyAdmin's."""
    return ApiKeyAdmin(broker, broker.access)


def _expiry(expires_in_days: int | None, no_expiry: bool, now: datetime) -> Expiry:
    if expires_in_days is not None and no_expiry:
        raise InvalidInput(
            [FieldProblem("--expires-in-days", "give --expires-in-days or --no-expiry, not both")],
            subject="API key input",
        )
    if no_expiry:
        return None
    if expires_in_days is None:
        return DEFAULT_EXPIRY
    return now + timedelta(days=expires_in_days)


def _show_new_key(key: ApiKey, raw: str, now: datetime, *, as_json: bool, headline: str) -> None:
    if as_json:
        data = key.to_dict(now)
        data["key"] = raw
        data["warning"] = SHOWN_ONCE
        print_json(data)
        return
    console.print(
        f"{headline} {key.id} (role {key.role}, tenant {key.tenant}, "
        f"expires {when(key.expires_at)}):",
        markup=False,
    )
    console.print(raw, markup=False, soft_wrap=True)
    err_console.print(f"warning: {SHOWN_ONCE}", markup=False)


def keys_table(keys: list[ApiKey], now: datetime) -> Table:
    table = Table(show_lines=False)
    for column in (
        "id",
        "name",
        "role",
        "tenant",
        "state",
        "source",
        "created",
        "expires",
        "last used",
    ):
        table.add_column(column, overflow="fold")
    for k in keys:
        cells = (
            k.id,
            k.name,
            k.role,
            k.tenant,
            k.state(now),
            k.source,
            when(k.created_at),
            when(k.expires_at) if k.expires_at else "never",
            when(k.last_used_at),
        )
        table.add_row(*plain(cells))  # names are user text, not rich markup
    return table


@app.command("create")
def create(
    role: RoleOpt,
    tenant: TenantOpt = "*",
    name: NameOpt = "",
    expires_in_days: Annotated[
        int | None,
        typer.Option("--expires-in-days", min=1, help="Lifetime in days (default 365)."),
    ] = None,
    no_expiry: Annotated[
        bool, typer.Option("--no-expiry", help="The key never expires (rotate it yourself).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a key and print it once."""
    validate_key_fields(role=role, tenant=tenant, name=name)
    _expiry(expires_in_days, no_expiry, datetime.now(UTC))  # option errors before opening
    with open_cli_broker() as broker:
        now = broker.clock.now()
        expiry = _expiry(expires_in_days, no_expiry, now)
        key, raw = _admin(broker).create(
            role=_role(role), tenant=tenant, name=name, expires_at=expiry
        )
    _show_new_key(key, raw, now, as_json=as_json, headline="created API key")


@app.command("list")
def list_keys(
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Only this tenant's keys ('*' = platform).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys with their state; never a key or its hash."""
    with open_cli_broker() as broker:
        keys = api_key_store(broker).list(tenant=tenant)
        now = broker.clock.now()
    if as_json:
        print_json([k.to_dict(now) for k in keys])
    elif not keys:
        console.print("no API keys")
    else:
        console.print(keys_table(keys, now))


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (from 'list').")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key at once (other processes stop accepting it within seconds)."""
    with open_cli_broker() as broker:
        key = _admin(broker).revoke(key_id)
        now = broker.clock.now()
    if as_json:
        print_json(key.to_dict(now))
    else:
        console.print(f"revoked API key {key.id}", markup=False)


@app.command("rotate")
def rotate(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (from 'list').")],
    grace_days: Annotated[
        float,
        typer.Option("--grace-days", min=0, help="Days the old key keeps working (default 7)."),
    ] = 7,
    as_json: JsonOpt = False,
) -> None:
    """Replace a key: print the new key once; the old one works until the grace period ends."""
    with open_cli_broker() as broker:
        key, raw = _admin(broker).rotate(key_id, grace_seconds=grace_days * 86400)
        old = api_key_store(broker).get(key_id)
        now = broker.clock.now()
    if not as_json and old is not None:
        console.print(
            f"old API key {key_id} works until {when(old.expires_at)}",
            markup=False,
        )
    _show_new_key(key, raw, now, as_json=as_json, headline="new API key")


@app.command("generate")
def generate(
    role: RoleOpt,
    tenant: TenantOpt = "*",
    name: NameOpt = "",
) -> None:
    """Make a key for FLOWCRED_API_KEYS without storing it: prints the key and its entry."""
    validate_key_fields(role=role, tenant=tenant, name=name)
    key_id, raw = generate_raw_key()
    entry = {"id": key_id, "sha256": hash_key(raw), "role": role, "tenant": tenant, "name": name}
    print_json({"key": raw, "entry": entry, "warning": SHOWN_ONCE})


def _role(value: str) -> Role:
    for role in ROLES:
        if role == value:
            return role
    raise InvalidInput(
        [FieldProblem("role", f"must be one of {', '.join(ROLES)}")], subject="API key input"
    )
