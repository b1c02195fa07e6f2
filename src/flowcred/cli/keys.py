"""``flowcred keys``: key-encryption-key rotation, retirement and status."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from flowcred.cli.output import console, print_json
from flowcred.cli.session import open_cli_broker

app = typer.Typer(help="Manage key-encryption keys.", no_args_is_help=True)


@app.command("rotate")
def rotate(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Add a new KEK version and re-wrap every data key (resumes an interrupted rotation)."""
    with open_cli_broker() as broker:
        progress = Progress(
            TextColumn("re-wrapping data keys"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=as_json,
        )
        with progress:
            task = progress.add_task("rewrap", total=None)

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            result = broker.rotate_keys(progress=report)
    if as_json:
        print_json(
            {
                "kekVersion": result.primary_version,
                "rewrapped": result.rewrapped,
                "resumed": result.resumed,
            }
        )
    else:
        verb = "resumed and finished" if result.resumed else "finished"
        console.print(
            f"key rotation {verb}: key version {result.primary_version} is primary, "
            f"{result.rewrapped} data keys re-wrapped"
        )


@app.command("retire")
def retire(
    versions: Annotated[
        list[int] | None,
        typer.Argument(help="Key versions to retire (default: every older version).", min=1),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Remove older KEKs from the key file once no data key needs them.

    Refused for the primary key and for a version that still wraps data keys (run 'keys rotate'
    first). Audit events sealed under a retired key stay verifiable: their derived audit keys are
    kept in the database, wrapped by the primary key.
    """
    with open_cli_broker() as broker:
        result = broker.retire_keys(versions or None)
    if as_json:
        print_json(
            {
                "retired": list(result.retired),
                "removedFromSource": result.removed_from_source,
                "keySource": result.source_description,
            }
        )
        return
    if not result.retired:
        console.print("no older key version to retire")
    elif result.removed_from_source:
        shown = ", ".join(str(v) for v in result.retired)
        console.print(
            f"retired key version(s) {shown}: removed from {result.source_description}; "
            f"audit events under them stay verifiable"
        )
    else:
        shown = ", ".join(str(v) for v in result.retired)
        console.print(
            f"key version(s) {shown} are no longer needed (audit keys kept); flowcred cannot "
            f"write {result.source_description}: remove them there yourself"
        )


@app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show the primary KEK version and how many data keys still await re-wrapping."""
    with open_cli_broker() as broker:
        data = {
            "kekVersion": broker.kek_version,
            "pendingRewraps": broker.pending_rewraps(),
            "keySource": broker.key_source.description,
        }
    if as_json:
        print_json(data)
    else:
        console.print(
            f"primary key version {data['kekVersion']} ({data['keySource']}); "
            f"{data['pendingRewraps']} data keys awaiting re-wrap"
        )
