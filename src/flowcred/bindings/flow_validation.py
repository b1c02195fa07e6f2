"""Deployment-time validation of flow files: ``flowcred.bindings.validate(paths, ...)``.

Each file is read once, composed with positions (:mod:`flow_formats`), its dialect detected and
the dialect's checks run (:mod:`flowgen_checks`, :mod:`node_graph_checks`,
:mod:`provider_checks`); every dialect is also scanned for raw secrets (:mod:`raw_secret_scan`).
The result is a :class:`~flowcred.bindings.findings.Report`: exit status 1 on any error.

``register=True`` records each cleanly validated flow's credential references as its binding
through ``broker.bindings.set`` (the ``PUT /api/bindings/{flow}`` model), so the credential list's
connection counts and delete protection see the flow. Flow Studio graphs register their non-zero
``credentialId`` s; Credential Provider flows the handles of their bindings that name a stored
credential of the tenant; flowgen flows reference files, not stored credentials, and register
nothing. A flow with an error-level finding is not registered.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowcred.bindings import flow_formats as ff
from flowcred.bindings.findings import FileSummary, Finding, Report
from flowcred.bindings.flowgen_checks import CredentialFileChecker, check_flowgen
from flowcred.bindings.node_graph_checks import BrokerCredentials, check_node_graph
from flowcred.bindings.provider_checks import (
    BindingsDoc,
    ProviderRun,
    SecretLookup,
    check_provider_flow,
    read_bindings,
)
from flowcred.bindings.raw_secret_scan import scan
from flowcred.flow_bindings import FLOW_RE
from flowcred.references import DEFAULT_TENANT

if TYPE_CHECKING:
    from flowcred.broker import Broker

_REFERENCE_KEYS = frozenset({"credentials_path", "credential", "default_credential"})
BINDINGS_NAMES = ("bindings.yaml", "bindings.yml")


@dataclass(slots=True)
class _Parsed:
    summary: FileSummary
    findings: list[Finding]
    tenant: str
    handles: list[str] = field(default_factory=list)


class Validator:
    """One validation run; shared state (file verdicts, bindings, secret lookups) is per run."""

    def __init__(
        self,
        *,
        open_broker: Callable[[], Broker] | None = None,
        tenant: str | None = None,
        bindings: str | os.PathLike[str] | None = None,
        sources: SecretLookup | None = None,
    ) -> None:
        self._credentials = BrokerCredentials(open_broker)
        self._tenant = tenant
        self._bindings_path = Path(bindings) if bindings is not None else None
        self._files = CredentialFileChecker()
        self._provider = ProviderRun(sources)
        self._bindings_docs: dict[str, BindingsDoc] = {}
        self._parsed: list[_Parsed] = []

    def _bindings_for(self, flow_path: Path) -> BindingsDoc | None:
        path = self._bindings_path
        if path is None:
            for name in BINDINGS_NAMES:
                candidate = flow_path.parent / name
                if candidate.is_file() and candidate.resolve() != flow_path.resolve():
                    path = candidate
                    break
        if path is None:
            return None
        key = str(path)
        doc = self._bindings_docs.get(key)
        if doc is None:
            doc = self._bindings_docs[key] = read_bindings(path)
        return doc

    def check_file(self, path: str | os.PathLike[str]) -> None:
        shown = os.fspath(path)
        file_path = Path(shown)
        tenant = self._tenant or DEFAULT_TENANT

        def only(rule: str, message: str, hint: str, line: int = 0, column: int = 0) -> None:
            self._parsed.append(
                _Parsed(
                    FileSummary(shown, None, None, 0),
                    [Finding.of(rule, shown, line, column, message, hint)],
                    tenant,
                )
            )

        try:
            text = file_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = "no such file" if isinstance(exc, FileNotFoundError) else type(exc).__name__
            only("FLOW001", f"flow file cannot be read ({reason})", "check the path")
            return
        try:
            root = ff.compose(text)
        except ff.FlowSyntaxError as exc:
            only(
                "FLOW002",
                f"not valid YAML/JSON: {exc.problem}",
                "fix the syntax at this position",
                exc.line,
                exc.column,
            )
            return
        dialect = ff.detect(root)
        if root is None or dialect is None:
            only(
                "FLOW003",
                "not a flowgen flow, Flow Studio node graph or Credential Provider flow",
                "see the README for the three accepted shapes",
                1,
                1,
            )
            return
        findings = scan(root, shown, "", reference_keys=_REFERENCE_KEYS)
        handles: list[str] = []
        references: tuple[int | str, ...] = ()
        if dialect == ff.FLOWGEN:
            result = check_flowgen(root, shown, file_path.parent, self._files)
            findings.extend(result.findings)
            name, tasks = result.flow, result.tasks
        elif dialect == ff.FLOW_STUDIO:
            graph = check_node_graph(root, shown, self._credentials, self._tenant)
            findings.extend(graph.findings)
            name, tasks, tenant = graph.flow, graph.tasks, graph.tenant
            references = tuple(graph.references)
        else:
            doc = self._bindings_for(file_path)
            provider = check_provider_flow(root, shown, doc, self._provider)
            findings.extend(provider.findings)
            name, tasks, handles = provider.flow, provider.tasks, provider.references
            references = tuple(handles)
        summary = FileSummary(shown, dialect, name, tasks, references)
        self._parsed.append(_Parsed(summary, findings, tenant, handles))

    def close(self) -> None:
        self._credentials.close()

    def report(self) -> Report:
        report = Report()
        for parsed in self._parsed:
            report.files.append(parsed.summary)
            report.extend(parsed.findings)
        for doc in self._bindings_docs.values():
            report.extend(doc.findings)
        report.extend(self._provider.over_granted())
        return report

    def register(self, report: Report) -> None:
        """Record each error-free flow's references as its binding (see the module doc)."""
        broker = self._credentials.broker()
        if broker is None:
            return
        failed = {f.file for f in report.findings if f.severity == "error"}
        for parsed in self._parsed:
            summary = parsed.summary
            if summary.dialect is None or not summary.references:
                continue
            flow = summary.flow if summary.flow and FLOW_RE.match(summary.flow) else None
            flow = flow or Path(summary.file).stem
            entry: dict[str, Any] = {"file": summary.file, "flow": flow, "tenantId": parsed.tenant}
            if summary.file in failed:
                entry["registered"] = False
                entry["reason"] = "the flow has errors"
                report.registered.append(entry)
                continue
            refs: list[int | str] = list(summary.references)
            if parsed.handles:  # only handles that name a stored credential of the tenant
                refs = _stored_handles(broker, parsed.tenant, parsed.handles)
            if not refs:
                continue
            binding = broker.bindings.set(flow, refs, tenant=parsed.tenant)
            entry["registered"] = True
            entry["references"] = list(binding.references)
            report.registered.append(entry)


def _stored_handles(broker: Broker, tenant: str, handles: list[str]) -> list[int | str]:
    known = {r.handle for r in broker.credentials.list(tenant=tenant)}
    return [h for h in handles if h in known]


def validate(
    paths: Iterable[str | os.PathLike[str]],
    *,
    broker: Broker | None = None,
    open_broker: Callable[[], Broker] | None = None,
    tenant: str | None = None,
    bindings: str | os.PathLike[str] | None = None,
    sources: SecretLookup | None = None,
    register: bool = False,
) -> Report:
    """Validate flow files of any of the three dialects and return the :class:`Report`.

    ``broker`` (or ``open_broker``, called only if a Flow Studio graph or ``register`` needs
    one) is where credentialIds are looked up and bindings registered; without one, credentialIds
    are reported unchecked (``CRED100``). ``tenant`` overrides a graph's ``tenantId``.
    ``bindings`` is the Credential Provider bindings file for every flow (default: a
    ``bindings.yaml`` next to each flow). ``sources`` (a ``SourceChain``) is where the bindings'
    secrets are looked up; without one they are reported unchecked (``SECR203``).
    """
    opener = open_broker if broker is None else (lambda: broker)
    validator = Validator(open_broker=opener, tenant=tenant, bindings=bindings, sources=sources)
    try:
        for path in paths:
            validator.check_file(path)
        report = validator.report()
        if register:
            validator.register(report)
    finally:
        if broker is None:  # a broker this run opened is closed; the caller's is left open
            validator.close()
    return report
