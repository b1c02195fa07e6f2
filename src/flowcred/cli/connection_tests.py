"""Output of ``flowcred credentials test``: one result, or ``--all`` with progress and summary.

The progress bar goes to standard error (and only to a terminal), so ``--all --json`` prints
nothing but the JSON list on standard output.
"""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flowcred.cli.output import console, err_console, iso_z, plain, print_json
from flowcred.cli.session import open_cli_broker
from flowcred.connectors.base import TestResult
from flowcred.connectors.credential_test import run_stored_test
from flowcred.connectors.http import http_status
from flowcred.connectors.retest import Outcome, run_many


def result_json(result: TestResult) -> dict[str, Any]:
    """``{ok, status, message, latencyMs, checkedAt}``, as ``POST /api/credentials/{id}/test``."""
    return {
        "ok": result.ok,
        "status": http_status(result.ok, result.message),
        "message": result.message,
        "latencyMs": round(result.latency_ms, 1),
        "checkedAt": iso_z(result.checked_at),
    }


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    record = outcome.record
    base: dict[str, Any] = {
        "credentialId": record.id,
        "handle": record.handle,
        "tenantId": record.tenant,
        "environment": record.environment,
        "type": record.type,
        "result": outcome.label,
    }
    if outcome.result is None:
        return {**base, "ok": None, "message": outcome.skipped}
    return {**base, **result_json(outcome.result)}


def summary_table(outcomes: list[Outcome]) -> Table:
    table = Table(title="connection tests", title_justify="left")
    for column in ("id", "handle", "tenant", "type", "result", "latency", "message"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        latency = f"{o.result.latency_ms:.0f} ms" if o.result is not None else "-"
        message = o.result.message if o.result is not None else (o.skipped or "")
        cells = (str(o.record.id), o.record.handle, o.record.tenant, o.record.type, o.label)
        table.add_row(*plain((*cells, latency, message)))
    return table


def show_one_test(ref: str, tenant: str, environment: str, *, as_json: bool) -> None:
    """Test one credential; exit 1 if the test fails."""
    with open_cli_broker() as broker:
        view = broker.acting_as(broker.access.actor, broker.access.source)
        result = run_stored_test(view, ref, tenant=tenant, environment=environment)
    if as_json:
        print_json(result_json(result))
    else:
        console.print(f"{ref}: {result.message}", markup=False)
    if not result.ok:
        raise SystemExit(1)


def show_all_tests(tenant: str | None, *, as_json: bool) -> None:
    """Test every credential (of ``tenant``, else all); exit 1 if any test failed."""
    with open_cli_broker() as broker:
        view = broker.acting_as(broker.access.actor, broker.access.source)
        records = view.credentials.list(tenant=tenant)
        progress = Progress(
            TextColumn("testing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        )
        with progress:
            task = progress.add_task("test", total=len(records))
            outcomes = run_many(view, records, on_done=lambda _: progress.advance(task))
    failed = sum(1 for o in outcomes if o.label == "failed")
    passed = sum(1 for o in outcomes if o.label == "ok")
    skipped = len(outcomes) - failed - passed
    if as_json:
        print_json([outcome_json(o) for o in outcomes])
    else:
        if outcomes:
            console.print(summary_table(outcomes))
        console.print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if failed:
        raise SystemExit(1)
