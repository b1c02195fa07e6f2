"""``flowcred credentials``: add, list, show, rotate, rollback and delete credentials."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from flowcred.cli.output import (
    console,
    credentials_table,
    key_value_table,
    print_json,
    when,
)
from flowcred.cli.secret_input import read_secret
from flowcred.cli.session import open_cli_broker
from flowcred.errors import FieldProblem, FlowcredError, InvalidCredential
from flowcred.records import Credential
from flowcred.runtime.live_test import describe, http_check

app = typer.Typer(help="Manage stored credentials.", no_args_is_help=True)

TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant (default: default).")]
EnvOpt = Annotated[str, typer.Option("--env", "-e", help="Environment, e.g. dev, staging, prod.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print stable JSON for scripts.")]
StdinOpt = Annotated[
    bool, typer.Option("--secret-stdin", help="Read the secret from standard input.")
]
FileOpt = Annotated[
    Path | None,
    typer.Option("--secret-file", help="Read the secret from this file.", dir_okay=False),
]


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs to a config dict; the catalog coerces the strings later."""
    config: dict[str, Any] = {}
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            problems.append(
                FieldProblem(
                    "--set", f"expected key=value, got an entry without '=' ({key.strip()[:40]!r})"
                )
            )
            continue
        config[key.strip()] = value
    if problems:
        raise InvalidCredential(problems)
    return config


def show_record(record: Credential, *, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        data = record.to_dict()
        if extra:
            data.update(extra)
        print_json(data)
        return
    rows = [
        ("id", str(record.id)),
        ("handle", record.handle),
        ("name", record.name),
        ("type", f"{record.type} ({record.family})"),
        ("tenant", record.tenant),
        ("environment", record.environment),
        ("status", record.status),
        ("version", str(record.current_version)),
        ("created", when(record.created_at)),
        ("updated", when(record.updated_at)),
        ("last used", when(record.last_used_at)),
        ("expires", when(record.expires_at)),
    ]
    rows += [(f"config.{k}", str(v)) for k, v in sorted(record.config.items())]
    console.print(key_value_table(rows))


@app.command("add")
def add(
    type_: Annotated[str, typer.Option("--type", help="Credential type (see 'flowcred types').")],
    name: Annotated[
        str, typer.Option("--name", help="Display name; the handle is derived from it.")
    ],
    tenant: Annotated[str, typer.Option("--tenant", "-t")] = "default",
    env: EnvOpt = "default",
    handle: Annotated[str | None, typer.Option("--handle", help="Explicit handle (slug).")] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Non-secret field: key=value.")
    ] = None,
    expires_at: Annotated[
        datetime | None, typer.Option("--expires-at", help="When this static secret expires (UTC).")
    ] = None,
    secret_stdin: StdinOpt = False,
    secret_file: FileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a credential. The secret comes from stdin, a file or a prompt — never an argument."""
    with open_cli_broker() as broker:
        try:
            ctype = broker.catalog.get(type_)
            config = parse_sets(sets or [])
            secret_value = None
            if ctype.secret_fields:
                hint = "JSON object" if ctype.is_composite else ctype.secret_fields[0].name
                secret_value = read_secret(
                    from_stdin=secret_stdin,
                    from_file=secret_file,
                    prompt=f"{ctype.name} secret ({hint}): ",
                )
        except FlowcredError as exc:
            # Refused before reaching the broker's API: still this command's one audit event.
            broker.audit_failure("created", exc, tenant=tenant, ref=None)
            raise
        if expires_at is not None and expires_at.tzinfo is None:
            from datetime import UTC

            expires_at = expires_at.replace(tzinfo=UTC)
        record = broker.credentials.create(
            name=name,
            type=ctype.name,
            tenant=tenant,
            environment=env,
            handle=handle,
            config=config,
            secret_value=secret_value,
            expires_at=expires_at,
        )
        if as_json:
            show_record(record, as_json=True)
        else:
            console.print(
                f"created credential [bold]{record.id}[/bold] (handle {record.handle}, "
                f"type {record.type}, tenant {record.tenant}, env {record.environment})"
            )


@app.command("list")
def list_(
    tenant: TenantOpt = None,
    env: Annotated[str | None, typer.Option("--env", "-e")] = None,
    type_: Annotated[str | None, typer.Option("--type")] = None,
    family: Annotated[str | None, typer.Option("--family")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List credentials (metadata only)."""
    with open_cli_broker() as broker:
        records = broker.credentials.list(
            tenant=tenant, environment=env, type=type_, family=family, status=status
        )
    if as_json:
        print_json([r.to_dict() for r in records])
    elif records:
        console.print(credentials_table(records))
    else:
        console.print("no credentials")


@app.command("show")
def show(
    ref: str, tenant: TenantOpt = None, env: EnvOpt = "default", as_json: JsonOpt = False
) -> None:
    """Show one credential's metadata and kept versions (never the secret)."""
    with open_cli_broker() as broker:
        record, versions = broker.credentials.describe(ref, tenant=tenant, environment=env)
    if as_json:
        show_record(record, as_json=True, extra={"versions": [v.to_dict() for v in versions]})
        return
    show_record(record, as_json=False)
    console.print(
        "versions: "
        + ", ".join(
            f"{v.version}{'*' if v.current else ''} ({when(v.created_at)})" for v in versions
        )
    )


@app.command("rotate")
def rotate(
    ref: str,
    tenant: TenantOpt = None,
    env: EnvOpt = "default",
    expected_version: Annotated[
        int | None, typer.Option("--expected-version", help="Only rotate if this is still current.")
    ] = None,
    secret_stdin: StdinOpt = False,
    secret_file: FileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store a new secret version; the id and handle stay the same."""
    with open_cli_broker() as broker:
        try:
            secret_value = read_secret(
                from_stdin=secret_stdin, from_file=secret_file, prompt=f"new secret for {ref}: "
            )
        except FlowcredError as exc:
            broker.audit_failure("rotated", exc, tenant=tenant, ref=ref)
            raise
        record = broker.credentials.rotate(
            ref,
            tenant=tenant,
            environment=env,
            secret_value=secret_value,
            expected_version=expected_version,
        )
    if as_json:
        show_record(record, as_json=True)
    else:
        console.print(f"rotated credential {record.id}: now version {record.current_version}")


@app.command("rollback")
def rollback(
    ref: str,
    version: int,
    tenant: TenantOpt = None,
    env: EnvOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Make a kept older version current again."""
    with open_cli_broker() as broker:
        record = broker.credentials.rollback(ref, version, tenant=tenant, environment=env)
    if as_json:
        show_record(record, as_json=True)
    else:
        console.print(f"credential {record.id}: version {record.current_version} is current")


@app.command("delete")
def delete(
    ref: str,
    tenant: TenantOpt = None,
    env: EnvOpt = "default",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Delete even while flows bind it (breaks them).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a credential and every kept version of its secret (refused while flows bind it,
    unless --force)."""
    with open_cli_broker() as broker:
        if not yes:
            shown = broker.credentials.get(ref, tenant=tenant, environment=env)
            if not typer.confirm(f"delete credential {shown.id} ({shown.handle})?"):
                raise typer.Exit(1)
        record = broker.credentials.delete(ref, tenant=tenant, environment=env, force=force)
    if as_json:
        print_json({"deleted": record.id})
    else:
        console.print(f"deleted credential {record.id} ({record.handle})")


@app.command("test")
def test(
    ref: str,
    tenant: Annotated[str, typer.Option("--tenant", "-t")] = "default",
    env: EnvOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Live-test a credential against its system (GET its test_url); exit 1 if it fails."""
    with open_cli_broker() as broker:
        ok, details = broker.provider(tenant=tenant, environment=env).test(ref, http_check)
    if as_json:
        print_json({"ok": ok, **details, "message": describe(ok, details)})
    else:
        console.print(f"{ref}: {describe(ok, details)}", markup=False)
    if not ok:
        raise SystemExit(1)
