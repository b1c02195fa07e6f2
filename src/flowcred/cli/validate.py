"""``flowcred validate FILE...``: check flows before deployment (see flowcred.bindings.validate).

Prints one line per finding (``path:line:column: severity RULE message (fix: hint)``) and a
summary, or with ``--json`` the report's stable JSON document. Exits 1 when any finding is an
error, else 0. The store is opened only when a Flow Studio graph needs its credentials looked up
or ``--register`` records bindings; the secret sources (``FLOWCRED_SOURCES``) are built only when
a Credential Provider binding's secrets are checked. No finding shows a secret value.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from flowcred.bindings.flow_validation import validate as validate_flows
from flowcred.cli.output import console, visible
from flowcred.cli.session import open_cli_broker
from flowcred.settings import load_settings
from flowcred.sources.chain import SourceChain
from flowcred.sources.config import sources_from_settings


class _LazySources:
    """The configured secret sources (``FLOWCRED_SOURCES``), built on the first lookup.

    Without a store: the ``store`` source would open one, and validating must not create a
    store as a side effect; a binding restricted to ``sources: [store]`` is reported as a
    lookup failure (SECR202) naming the reason.
    """

    def __init__(self) -> None:
        self._chain: SourceChain | None = None

    def chain(self) -> SourceChain:
        if self._chain is None:
            self._chain = sources_from_settings(load_settings())
        return self._chain

    def find(self, name: str) -> object | None:
        return self.chain().find(name)

    def only(self, names: list[str]) -> SourceChain:
        return self.chain().only(names)

    def tried(self, name: str) -> list[str]:
        return self.chain().tried(name)

    def close(self) -> None:
        if self._chain is not None:
            self._chain.close()


def validate(
    files: Annotated[list[Path], typer.Argument(help="Flow files (YAML or JSON).", metavar="FILE")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as stable JSON.")
    ] = False,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            "-t",
            help="Tenant of Flow Studio credentialIds (default: the "
            "graph's tenantId, else default).",
        ),
    ] = None,
    bindings: Annotated[
        Path | None,
        typer.Option(
            "--bindings",
            help="Credential Provider bindings file (default: bindings.yaml next to each flow).",
        ),
    ] = None,
    register: Annotated[
        bool,
        typer.Option("--register", help="Record each clean flow's references as its bindings."),
    ] = False,
) -> None:
    """Validate flowgen, Flow Studio and Credential Provider flows; exit 1 on any error."""
    sources = _LazySources()
    try:
        report = validate_flows(
            files,
            open_broker=open_cli_broker,
            tenant=tenant,
            bindings=bindings,
            sources=sources,
            register=register,
        )
    finally:
        sources.close()
    if as_json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        for finding in report.sorted_findings():
            console.print(visible(finding.text()), soft_wrap=True)
        for entry in report.registered:
            state = "registered" if entry.get("registered") else "not registered"
            refs = ", ".join(str(r) for r in entry.get("references", []))
            detail = f" references: {refs}" if refs else f" ({entry.get('reason', '')})"
            console.print(visible(f"flow {entry['flow']} {state}{detail}"), soft_wrap=True)
        files_n = len(report.files)
        console.print(
            f"{files_n} file(s), {report.tasks} task(s)/node(s): "
            f"{report.errors} error(s), {report.warnings} warning(s)"
        )
    raise typer.Exit(report.exit_status)
