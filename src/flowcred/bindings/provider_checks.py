"""Checks of a Credential Provider flow against its bindings file and the secret sources.

A flow's nodes name a credential *handle* and declare the type they need::

    name: sales_sync
    default_credential: google_sales        # the flow default (optional)
    nodes:
      - id: read_leads
        requires: google.oauth2             # the node's required credential type
        credential: google_sales            # the node alias (optional when a default applies)
        scopes: [https://www.googleapis.com/auth/spreadsheets.readonly]

The bindings file is the ``bindings:`` map of ``flowcred.bindings.config`` (each binding
``{kind, <field>_secret: SECRET_NAME, <field>: literal}``, an optional ``default:`` handle, the
environment default) plus an optional ``policy: {allowed_scopes: [...]}`` (a trailing ``*``
allows a prefix). Scopes: a node *requests* its ``scopes``; a binding *grants* its ``scopes``
literal; the policy *allows* ``allowed_scopes``. Rules (the spec's codes where it has one):

* ``DAG330`` the node needs a credential and no binding is selected (node alias, then flow
  default, then the bindings file's ``default``), or the selected handle has no binding;
* ``DAG332`` the binding's ``kind`` is not the node's ``requires``;
* ``SECR202`` a ``<field>_secret`` names a secret no source holds (``SourceChain.find``;
  restricted to the binding's ``sources`` when given); reported at that line of the bindings
  file, once per run; ``SECR203`` (warning) when no sources were given;
* ``DAG331`` a requested scope is outside the policy; ``DAG333`` a requested scope is not
  granted by the binding (when it lists scopes);
* ``SECR201`` the binding grants a scope no node of the validated flows requests (computed
  over every file of the run, at the grant's line: least privilege).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from yaml.nodes import Node

from flowcred.bindings import flow_formats as ff
from flowcred.bindings.config import load_bindings
from flowcred.bindings.findings import Finding
from flowcred.bindings.raw_secret_scan import scan, shown
from flowcred.bindings.resolve import catalog_type_for
from flowcred.catalog import default_catalog
from flowcred.errors import FlowcredError, UnknownCredentialType


class SecretLookup(Protocol):
    """What the validator needs of a ``flowcred.sources.chain.SourceChain``."""

    def find(self, name: str) -> object | None: ...


@dataclass(slots=True)
class BindingEntry:
    handle: str
    pos: ff.Pos
    kind: str | None
    secret_refs: dict[str, tuple[str, ff.Pos]]
    scopes: list[tuple[str, ff.Pos]] | None
    sources: list[str] | None


@dataclass(slots=True)
class BindingsDoc:
    path: str
    bindings: dict[str, BindingEntry]
    default: str | None
    allowed_scopes: list[str] | None
    findings: list[Finding]


def same_kind(bound: str | None, required: str) -> bool:
    """Whether a binding's kind is the node's required type: the same words, or the same catalog
    type (``google.oauth2`` and ``google``, ``http.api_key`` and ``api_key``)."""
    if bound is None:
        return False
    if bound.strip().lower() == required.strip().lower():
        return True
    try:
        return (
            catalog_type_for(bound, default_catalog()).name
            == catalog_type_for(required, default_catalog()).name
        )
    except UnknownCredentialType:
        return False


def read_bindings(path: Path) -> BindingsDoc:
    """The bindings file with positions; problems become ``BIND001`` findings."""
    shown = str(path)
    doc = BindingsDoc(shown, {}, None, None, [])

    def bad(message: str, p: ff.Pos | None = None) -> BindingsDoc:
        doc.findings.append(
            Finding.of(
                "BIND001",
                shown,
                p.line if p else 0,
                p.column if p else 0,
                message,
                "fix the bindings file (see the README's bindings section)",
            )
        )
        return doc

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return bad(f"bindings file cannot be read ({type(exc).__name__})")
    try:
        root = ff.compose(text)
    except ff.FlowSyntaxError as exc:
        return bad(f"bindings file is not valid YAML: {exc.problem}", ff.Pos(exc.line, exc.column))
    problem = _loader_problem(path)
    if problem is not None:  # reported, and the file still read so nodes are not all DAG330
        bad(problem)
    doc.findings.extend(scan(root, shown, "", secret_suffix_refs=True))
    doc.default = ff.text_of(ff.get(root, "default"))
    policy = ff.get(ff.get(root, "policy"), "allowed_scopes")
    if policy is not None:
        doc.allowed_scopes = [s for s, _ in ff.string_list(policy)]
    for key, body in ff.pairs(ff.get(root, "bindings")):
        refs: dict[str, tuple[str, ff.Pos]] = {}
        for field_key, value in ff.pairs(body):
            name = str(field_key.value)
            secret = ff.text_of(value)
            if name.endswith("_secret") and len(name) > 7 and secret:
                refs[name[:-7]] = (secret, ff.pos(value))
        scopes_node = ff.get(body, "scopes")
        sources_node = ff.get(body, "sources")
        doc.bindings[str(key.value)] = BindingEntry(
            handle=str(key.value),
            pos=ff.pos(key),
            kind=ff.text_of(ff.get(body, "kind")),
            secret_refs=refs,
            scopes=ff.string_list(scopes_node) if scopes_node is not None else None,
            sources=[s for s, _ in ff.string_list(sources_node)] if sources_node else None,
        )
    return doc


def _loader_problem(path: Path) -> str | None:
    """What ``flowcred.bindings.config.load_bindings`` (the runtime's loader) refuses, if any."""
    try:
        load_bindings(path)
    except FlowcredError as exc:
        return str(exc)
    return None


def _allowed(scope: str, allowed: list[str]) -> bool:
    return any(scope == a or (a.endswith("*") and scope.startswith(a[:-1])) for a in allowed)


@dataclass(slots=True)
class ProviderRun:
    """State shared by every Credential Provider file of one run."""

    sources: SecretLookup | None
    checked_secrets: set[tuple[str, str]] = field(default_factory=set)
    requested: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    used: dict[tuple[str, str], tuple[BindingsDoc, BindingEntry]] = field(default_factory=dict)
    warned_no_sources: bool = False

    def over_granted(self) -> list[Finding]:
        """``SECR201`` for every granted scope no node of the run requested."""
        findings = []
        for key, (doc, entry) in sorted(self.used.items()):
            asked = self.requested.get(key, set())
            for scope, p in entry.scopes or []:
                if scope not in asked:
                    findings.append(
                        Finding.of(
                            "SECR201",
                            doc.path,
                            p.line,
                            p.column,
                            f"binding {shown(entry.handle)} grants scope {shown(scope)} "
                            "that no node requests",
                            "remove the scope from the binding (least privilege)",
                        )
                    )
        return findings

    def secret_findings(self, doc: BindingsDoc, entry: BindingEntry) -> list[Finding]:
        findings: list[Finding] = []
        for field_name, (secret, p) in entry.secret_refs.items():
            key = (doc.path, f"{entry.handle}.{field_name}")
            if key in self.checked_secrets:
                continue
            self.checked_secrets.add(key)
            if self.sources is None:
                if not self.warned_no_sources:
                    self.warned_no_sources = True
                    findings.append(
                        Finding.of(
                            "SECR203",
                            doc.path,
                            p.line,
                            p.column,
                            "secret references not checked: no secret sources were given",
                            "configure the secret sources (FLOWCRED_SOURCES) to check them",
                        )
                    )
                continue
            chain: Any = self.sources
            try:
                if entry.sources and hasattr(chain, "only"):
                    chain = chain.only(entry.sources)
                found = chain.find(secret)
            except FlowcredError as exc:
                findings.append(
                    Finding.of(
                        "SECR202",
                        doc.path,
                        p.line,
                        p.column,
                        f"binding {shown(entry.handle)}: secret {shown(secret)} could not be "
                        f"looked up ({type(exc).__name__})",
                        "make the secret source reachable, then validate again",
                    )
                )
                continue
            if found is None:
                tried = chain.tried(secret) if hasattr(chain, "tried") else []
                looked = f"; tried {', '.join(tried)}" if tried else ""
                findings.append(
                    Finding.of(
                        "SECR202",
                        doc.path,
                        p.line,
                        p.column,
                        f"binding {shown(entry.handle)}: no source holds secret {shown(secret)} "
                        f"(for {shown(field_name)}{looked})",
                        f"create secret {shown(secret)} in one of the configured sources",
                    )
                )
        return findings


@dataclass(slots=True)
class ProviderResult:
    findings: list[Finding]
    flow: str | None
    tasks: int
    references: list[str]


def check_provider_flow(
    root: Node, file: str, doc: BindingsDoc | None, run: ProviderRun
) -> ProviderResult:
    findings: list[Finding] = []
    flow = ff.get(root, "flow") if ff.get(root, "nodes") is None else root
    name = ff.text_of(ff.get(flow, "name"))
    flow_default = ff.text_of(ff.get(flow, "default_credential"))
    nodes = ff.items(ff.get(flow, "nodes"))
    handles: list[str] = []
    for index, node in enumerate(nodes):
        requires_node = ff.get(node, "requires")
        alias_node = ff.get(node, "credential")
        if requires_node is None and alias_node is None:
            continue
        label = shown(ff.text_of(ff.get(node, "id")) or f"nodes[{index}]")
        alias = ff.text_of(alias_node)
        handle = alias or flow_default or (doc.default if doc else None)
        at = ff.pos(alias_node if alias_node is not None else node)
        entry = doc.bindings.get(handle) if doc is not None and handle else None
        if entry is None or doc is None:
            if handle is None:
                message = f"node {label} needs a credential and no binding is selected"
            elif doc is None:
                message = f"node {label}: no bindings file for handle {shown(handle)}"
            else:
                message = f"node {label}: no binding {shown(handle)} in {doc.path}"
            findings.append(
                Finding.of(
                    "DAG330",
                    file,
                    at.line,
                    at.column,
                    message,
                    "add the binding to the bindings file (or pass --bindings FILE)",
                )
            )
            continue
        handles.append(entry.handle)
        required = ff.text_of(requires_node)
        if (
            required is not None
            and requires_node is not None
            and not same_kind(entry.kind, required)
        ):
            p = ff.pos(requires_node)
            findings.append(
                Finding.of(
                    "DAG332",
                    file,
                    p.line,
                    p.column,
                    f"node {label} requires {shown(required)}; binding {shown(entry.handle)} is of "
                    f"kind {shown(entry.kind or '(none)')}",
                    f"bind a {shown(required)} credential to the node",
                )
            )
        key = (doc.path, entry.handle)
        run.used.setdefault(key, (doc, entry))
        asked = run.requested.setdefault(key, set())
        findings.extend(run.secret_findings(doc, entry))
        for scope, p in ff.string_list(ff.get(node, "scopes")):
            asked.add(scope)
            if doc.allowed_scopes is not None and not _allowed(scope, doc.allowed_scopes):
                findings.append(
                    Finding.of(
                        "DAG331",
                        file,
                        p.line,
                        p.column,
                        f"node {label} requests scope {shown(scope)} outside the policy",
                        "request an allowed scope, or extend policy.allowed_scopes",
                    )
                )
            elif entry.scopes is not None and scope not in {s for s, _ in entry.scopes}:
                findings.append(
                    Finding.of(
                        "DAG333",
                        file,
                        p.line,
                        p.column,
                        f"node {label} requests scope {shown(scope)}; binding "
                        f"{shown(entry.handle)} does not grant it",
                        "add the scope to the binding's scopes",
                    )
                )
    return ProviderResult(findings, name, len(nodes), list(dict.fromkeys(handles)))
