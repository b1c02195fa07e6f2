"""What the flow validator reports: findings with a position, a rule id and a fix hint.

A :class:`Finding` says *where* (file, 1-based line and column), *what* (a rule id from
:data:`RULES` and a message) and *how to fix it* (a hint). It never holds the offending value:
messages are built from rule text, key names and paths only, so a report can be printed, logged
or attached to a CI run without leaking the secret it found. A :class:`Report` collects the
findings of one run and turns them into an exit status (1 when any finding is an error) and a
stable JSON document (``version`` 1; keys and order fixed, findings sorted by position).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

# rule id -> (severity, title). The title is the short name shown in the README's rule table.
RULES: dict[str, tuple[Severity, str]] = {
    "FLOW001": ("error", "flow file cannot be read"),
    "FLOW002": ("error", "flow file is not valid YAML or JSON"),
    "FLOW003": ("error", "not a flow of a known dialect"),
    "FLOW004": ("error", "flow structure is wrong"),
    "FILE001": ("error", "credentials file does not exist"),
    "FILE002": ("error", "credentials file cannot be read"),
    "FILE003": ("error", "credentials file is not valid JSON"),
    "FILE004": ("error", "credentials file is not in its task family's format"),
    "FILE005": ("warning", "credentials file is readable by group or others"),
    "CRED100": ("warning", "credentialId not checked: no credential store"),
    "CRED101": ("error", "credentialId names no credential of the tenant"),
    "CRED102": ("error", "credential type does not fit the node"),
    "CRED103": ("error", "credentialId is not a valid id"),
    "CRED104": ("error", "provider is not one the node supports"),
    "BIND001": ("error", "bindings file cannot be used"),
    "DAG330": ("error", "missing binding"),
    "DAG331": ("error", "scope outside policy"),
    "DAG332": ("error", "binding kind does not match the node's required type"),
    "DAG333": ("error", "node requests a scope its binding does not grant"),
    "SECR100": ("error", "literal value under a secret-named key"),
    "SECR101": ("error", "known token shape in config"),
    "SECR102": ("warning", "high-entropy string in config"),
    "SECR103": ("error", "password inside a URL"),
    "SECR201": ("error", "binding grants more scope than requested"),
    "SECR202": ("error", "binding references a secret no source holds"),
    "SECR203": ("warning", "secrets not checked: no secret sources"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at one place. ``line`` and ``column`` are 1-based (0 when unknown)."""

    file: str
    line: int
    column: int
    rule: str
    message: str
    hint: str
    severity: Severity = field(default="error")

    @classmethod
    def of(cls, rule: str, file: str, line: int, column: int, message: str, hint: str) -> Finding:
        """A finding with the severity :data:`RULES` gives ``rule``."""
        return cls(file, line, column, rule, message, hint, RULES[rule][0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "rule": self.rule,
            "message": self.message,
            "hint": self.hint,
        }

    def text(self) -> str:
        """``path:line:column: severity RULE message (fix: hint)``, the compiler style."""
        return (
            f"{self.file}:{self.line}:{self.column}: {self.severity} {self.rule} "
            f"{self.message} (fix: {self.hint})"
        )


@dataclass(frozen=True, slots=True)
class FileSummary:
    """What was validated in one file: its dialect, flow name and the number of tasks/nodes."""

    file: str
    dialect: str | None
    flow: str | None
    tasks: int
    references: tuple[int | str, ...] = ()


@dataclass(slots=True)
class Report:
    """The findings of one validation run, sorted by file and position."""

    findings: list[Finding] = field(default_factory=list)
    files: list[FileSummary] = field(default_factory=list)
    registered: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, findings: Iterable[Finding]) -> None:
        self.findings.extend(findings)

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (f.file, f.line, f.column, f.rule))

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    @property
    def tasks(self) -> int:
        return sum(s.tasks for s in self.files)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    @property
    def exit_status(self) -> int:
        """1 when any finding is an error, else 0 (warnings do not fail a deployment)."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "files": [
                {
                    "file": s.file,
                    "dialect": s.dialect,
                    "flow": s.flow,
                    "tasks": s.tasks,
                    "references": list(s.references),
                }
                for s in self.files
            ],
            "findings": [f.to_dict() for f in self.sorted_findings()],
            "registered": list(self.registered),
            "summary": {"errors": self.errors, "warnings": self.warnings, "tasks": self.tasks},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
