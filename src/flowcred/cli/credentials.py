"""``flowcred credentials``: add, list, show, edit, rotate, rollback and delete credentials."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from flowcred.catalog.schema import CredentialType
from flowcred.cli.output import (
    console,
    credential_json,
    credentials_table,
    key_value_table,
    print_json,
    version_json,
    visible,
    when,
)
from flowcred.cli.secret_input import read_secret
from flowcred.cli.session import open_cli_broker
from flowcred.errors import FieldProblem, FlowcredError, InvalidCredential
from flowcred.records import Credential

app = typer.Typer(help="Manage stored credentials.", no_args_is_help=True)

TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        "-t",
        help="Tenant of the credential (a handle is looked up in 'default' unless given; "
        "an id is found in any tenant).",
    ),
]
EnvOpt = Annotated[str, typer.Option("--env", "-e", help="Environment, e.g. dev, staging, prod.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print stable JSON for scripts.")]
StdinOpt = Annotated[
    bool, typer.Option("--secret-stdin", help="Read the secret from standard input.")
]
FileOpt = Annotated[
    Path | None,
    typer.Option("--secret-file", help="Read the secret from this file.", dir_okay=False),
]


def parse_sets(pairs: list[str], known: FieldNames | None = None) -> dict[str, Any]:
    """``--set key=value`` pairs to a config dict; the catalog coerces the strings later.

    A malformed entry or an unknown field name is refused without repeating it: people paste a
    secret where a field name belongs (``--set sk_live_...``), and the message, the terminal's
    scrollback and the audit record of the refusal must not keep it. With ``known``, names are
    checked here, before anything reaches the broker (whose messages name the field).
    """
    config: dict[str, Any] = {}
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            problems.append(
                FieldProblem(
                    "--set",
                    "expected key=value, got an entry without '=' (not shown: it may be a secret)",
                )
            )
            continue
        problem = known.problem("--set", key.strip()) if known is not None else None
        if problem is not None:
            problems.append(problem)
            continue
        config[key.strip()] = value
    if problems:
        raise InvalidCredential(problems)
    return config


class FieldNames:
    """The field names ``--set`` / ``--unset`` may use: one type's, or any type's in the catalog.

    A name outside them is reported as unknown without being shown. A name of a secret field is
    shown (it is a catalog name) with where the secret goes instead.
    """

    def __init__(self, types: Iterable[CredentialType], label: str) -> None:
        self.config: dict[str, str] = {}
        self.secret: set[str] = set()
        for ctype in types:
            for spec in ctype.fields:
                for alias in spec.names:
                    if spec.secret:
                        self.secret.add(alias)
                    else:
                        self.config[alias] = spec.name
        self.label = label

    @classmethod
    def of(cls, ctype: CredentialType) -> FieldNames:
        return cls(
            [ctype],
            f"{ctype.name} fields: "
            + (", ".join(spec.name for spec in ctype.config_fields) or "none"),
        )

    def problem(self, option: str, key: str) -> FieldProblem | None:
        if key in self.config:
            return None
        if key in self.secret:
            return FieldProblem(
                f"{option} {key}",
                "is a secret field: give it with --secret-stdin, --secret-file or the prompt",
            )
        return FieldProblem(
            option, f"unknown field name (not shown: it may be a secret); {self.label}"
        )


def show_record(record: Credential, *, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        print_json(credential_json(record, **(extra or {})))
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
            config = parse_sets(sets or [], FieldNames.of(ctype))
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
                f"created credential {record.id} (handle {visible(record.handle)}, "
                f"type {record.type}, tenant {visible(record.tenant)}, "
                f"env {visible(record.environment)})"
            )


@app.command("list")
def list_(
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant", "-t", help="Only this tenant's credentials (default: every tenant)."
        ),
    ] = None,
    env: Annotated[str | None, typer.Option("--env", "-e")] = None,
    type_: Annotated[str | None, typer.Option("--type")] = None,
    family: Annotated[str | None, typer.Option("--family")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List credentials (metadata only), of every tenant unless --tenant is given."""
    with open_cli_broker() as broker:
        records = broker.credentials.list(
            tenant=tenant, environment=env, type=type_, family=family, status=status
        )
    if as_json:
        print_json([credential_json(r) for r in records])
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
        show_record(record, as_json=True, extra={"versions": [version_json(v) for v in versions]})
        return
    show_record(record, as_json=False)
    console.print(
        "versions: "
        + ", ".join(
            f"{v.version}{'*' if v.current else ''} ({when(v.created_at)})" for v in versions
        )
    )


@app.command("edit")
def edit(
    ref: str,
    tenant: TenantOpt = None,
    env: EnvOpt = "default",
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Set a non-secret field: key=value.")
    ] = None,
    unsets: Annotated[
        list[str] | None, typer.Option("--unset", help="Remove a non-secret field (its name).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="New display name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a credential's name or non-secret config (the REST PATCH); the secret stays.

    ``--set`` merges into the stored config, ``--unset`` removes a field; the type's rules apply
    to the result. To change the secret use ``rotate``.
    """
    with open_cli_broker() as broker:
        try:
            # Names are checked against every type's fields here (the credential's own type is
            # checked by the broker, whose message names only catalog fields): no extra read,
            # so the edit stays one audit event.
            known = FieldNames(broker.catalog, "see 'flowcred types TYPE' for a type's fields")
            changes: dict[str, Any] = parse_sets(sets or [], known)
            for key in unsets or []:
                problem = known.problem("--unset", key.strip())
                if problem is not None:
                    raise InvalidCredential([problem])
                changes[key.strip()] = None
            if not changes and name is None:
                raise InvalidCredential(
                    [FieldProblem("--set", "nothing to change: give --set, --unset or --name")]
                )
        except FlowcredError as exc:
            broker.audit_failure("updated", exc, tenant=tenant, ref=ref)
            raise
        record = broker.credentials.update(
            ref,
            tenant=tenant,
            environment=env,
            name=name,
            config=changes or None,
        )
    if as_json:
        show_record(record, as_json=True)
    else:
        console.print(f"updated credential {record.id} ({visible(record.handle)})")


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
    """Restore a kept older version's secret as a new version (history stays append-only)."""
    with open_cli_broker() as broker:
        record = broker.credentials.rollback(ref, version, tenant=tenant, environment=env)
    if as_json:
        show_record(record, as_json=True)
    else:
        console.print(
            f"rolled back credential {record.id}: version {version}'s secret is now "
            f"version {record.current_version}"
        )


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
    ref: Annotated[str | None, typer.Argument(help="Id or handle (omit with --all).")] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Tenant (default: 'default'; --all: every)")
    ] = None,
    env: EnvOpt = "default",
    all_: Annotated[bool, typer.Option("--all", help="Test every credential.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Live-test a credential against its system (status active / error, audited); exit 1 if
    it fails. ``--all`` tests every credential (of --tenant), with a progress bar and summary."""
    from flowcred.cli.connection_tests import show_all_tests, show_one_test

    if all_ == (ref is not None):
        raise InvalidCredential([FieldProblem("ref", "give a reference or --all (one of them)")])
    if all_:
        show_all_tests(tenant, as_json=as_json)
    else:
        assert ref is not None
        show_one_test(ref, tenant or "default", env, as_json=as_json)
