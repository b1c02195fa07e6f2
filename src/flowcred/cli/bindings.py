"""``flowcred bindings``: register which credentials a flow references (its connections).

The same broker service as ``PUT /api/bindings/{flow}`` (:class:`flowcred.flow_bindings.Bindings`),
so the same rules hold: references name credentials of the tenant, and every change is audited as
the OS user. ``--json`` uses the REST API's camelCase keys and UTC timestamps ending in ``Z``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from flowcred.cli.output import console, plain, print_json
from flowcred.cli.session import open_cli_broker
from flowcred.references import DEFAULT_TENANT
from flowcred.store.bindings import Binding, Reference

app = typer.Typer(help="Register which credentials flows reference.", no_args_is_help=True)

TenantOpt = Annotated[
    str, typer.Option("--tenant", "-t", help="Tenant the flow belongs to (default: default).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print stable JSON for scripts.")]


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def binding_json(binding: Binding) -> dict[str, Any]:
    return {
        "flow": binding.flow,
        "tenantId": binding.tenant,
        "references": list(binding.references),
        "updatedAt": _utc(binding.updated_at),
    }


@app.command("set")
def set_binding(
    flow: str,
    refs: Annotated[list[str], typer.Argument(help="Credential ids or handles.", metavar="REF...")],
    tenant: TenantOpt = DEFAULT_TENANT,
    as_json: JsonOpt = False,
) -> None:
    """Replace FLOW's references with REF... (ids or handles of credentials in the tenant)."""
    references: list[Reference] = list(refs)
    with open_cli_broker() as broker:
        binding = broker.bindings.set(flow, references, tenant=tenant)
    if as_json:
        print_json(binding_json(binding))
        return
    shown = ", ".join(str(r) for r in binding.references)
    console.print(
        f"flow {binding.flow} (tenant {binding.tenant}) references: {shown}", markup=False
    )


@app.command("list")
def list_bindings(
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Only this tenant (default: all).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Registered flows and their references."""
    with open_cli_broker() as broker:
        items = broker.bindings.list(tenant=tenant)
    if as_json:
        print_json([binding_json(b) for b in items])
        return
    if not items:
        console.print("no bindings")
        return
    table = Table(show_lines=False)
    for column in ("tenant", "flow", "references", "updated"):
        table.add_column(column, overflow="fold")
    for b in items:
        table.add_row(
            *plain(
                [
                    b.tenant,
                    b.flow,
                    ", ".join(str(r) for r in b.references),
                    _utc(b.updated_at),
                ]
            )
        )
    console.print(table)


@app.command("delete")
def delete_binding(flow: str, tenant: TenantOpt = DEFAULT_TENANT, as_json: JsonOpt = False) -> None:
    """Unregister FLOW (its credentials lose this connection)."""
    with open_cli_broker() as broker:
        removed = broker.bindings.delete(flow, tenant=tenant)
    if as_json:
        print_json({"flow": flow, "tenantId": tenant, "deleted": removed})
    elif removed:
        console.print(f"flow {flow} (tenant {tenant}) unregistered", markup=False)
    else:
        console.print(f"flow {flow} (tenant {tenant}) had no bindings", markup=False)
