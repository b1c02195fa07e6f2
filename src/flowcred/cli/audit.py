"""``flowcred audit``: query, export and verify the tamper-evident audit trail."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from flowcred.audit import AuditChainBroken, AuditFilter
from flowcred.cli.output import console, err_console, plain, print_json
from flowcred.cli.session import open_cli_broker
from flowcred.errors import FieldProblem, InvalidInput

app = typer.Typer(help="Query, export and verify the audit trail.", no_args_is_help=True)

EventTypeOpt = Annotated[str | None, typer.Option("--event-type", help="credential, kek, ...")]
ActionOpt = Annotated[str | None, typer.Option("--action", help="created, resolved, ...")]
ResultOpt = Annotated[str | None, typer.Option("--result", help="success, failure or denied")]
ResourceOpt = Annotated[str | None, typer.Option("--resource-id", help="e.g. a credential id")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="actor id (user name, API key id)")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t")]
ExecOpt = Annotated[str | None, typer.Option("--execution-id")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="ISO time, UTC unless given")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="ISO time, UTC unless given")]


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            [FieldProblem(name, "must be an ISO 8601 time")], subject="audit query"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _filter(
    event_type: str | None,
    action: str | None,
    result: str | None,
    resource_id: str | None,
    actor: str | None,
    tenant: str | None,
    execution_id: str | None,
    since: str | None,
    until: str | None,
) -> AuditFilter:
    return AuditFilter(
        event_type=event_type,
        action=action,
        result=result,
        resource_id=resource_id,
        actor=actor,
        tenant=tenant,
        execution_id=execution_id,
        since=_time(since, "--since"),
        until=_time(until, "--until"),
    )


@app.command("list")
def list_(
    event_type: EventTypeOpt = None,
    action: ActionOpt = None,
    result: ResultOpt = None,
    resource_id: ResourceOpt = None,
    actor: ActorOpt = None,
    tenant: TenantOpt = None,
    execution_id: ExecOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    after: Annotated[
        int | None, typer.Option("--after", help="Page on: events after this id.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-1000).")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List audit events, oldest first, filtered."""
    flt = _filter(
        event_type, action, result, resource_id, actor, tenant, execution_id, since, until
    )
    with open_cli_broker() as broker:
        events = broker.audit.list(flt, after_id=after, limit=limit)
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    if not events:
        console.print("no audit events")
        return
    table = Table()
    for column in (
        "id",
        "time (UTC)",
        "event",
        "result",
        "actor",
        "tenant",
        "resource",
        "execution",
    ):
        table.add_column(column, overflow="fold")
    for e in events:
        table.add_row(
            *plain(
                (
                    str(e.id),
                    e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    f"{e.event_type}.{e.action}",
                    e.result,
                    f"{e.actor.kind}:{e.actor.id}",
                    e.tenant or "-",
                    f"{e.resource_type or '-'} {e.resource_id or ''}".strip(),
                    e.execution_id or "-",
                )
            )
        )
    console.print(table)


@app.command("export")
def export(
    format_: Annotated[
        str, typer.Option("--format", help="Only jsonl, for SIEM ingestion.")
    ] = "jsonl",
    event_type: EventTypeOpt = None,
    action: ActionOpt = None,
    result: ResultOpt = None,
    resource_id: ResourceOpt = None,
    actor: ActorOpt = None,
    tenant: TenantOpt = None,
    execution_id: ExecOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Write matching events to standard output, one JSON object per line."""
    if format_ != "jsonl":
        raise InvalidInput(
            [FieldProblem("--format", "only jsonl is supported")], subject="audit export"
        )
    flt = _filter(
        event_type, action, result, resource_id, actor, tenant, execution_id, since, until
    )
    with open_cli_broker() as broker:
        count = broker.audit.export_jsonl(sys.stdout, flt)
    err_console.print(f"exported {count} events", markup=False)


@app.command("verify")
def verify(
    up_to: Annotated[
        int | None, typer.Option("--up-to", help="Verify up to this event id.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recompute every hash and check every link; exit 1 and name the first broken event."""
    with open_cli_broker() as broker:
        progress = Progress(
            TextColumn("verifying audit chain"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            disable=as_json,
        )
        try:
            with progress:
                task = progress.add_task("verify", total=None)
                report = broker.audit.verify(
                    up_to=up_to,
                    progress=lambda done, total: progress.update(task, completed=done, total=total),
                )
        except AuditChainBroken as exc:
            if as_json:
                print_json(exc.report.to_dict())
            else:
                err_console.print(f"error: {exc}", markup=False)
            raise SystemExit(1) from None
    if as_json:
        print_json(report.to_dict())
    else:
        console.print(report.message, markup=False)
