"""Checks of a flowgen flow: every ``credentials_path`` names a usable file of the right format.

A flowgen flow is ``flow: {name, tasks: [{<task_type>: {name, credentials_path, ...}}]}`` plus an
optional ``worker:`` block whose ``http_server``, ``mcp_server`` and ``ai_gateway`` may carry a
worker-level ``credentials_path``. For each path, in order, the first failing check is reported:

* ``FILE001`` the file does not exist; ``FILE002`` it cannot be read (permissions, a directory);
* ``FILE003`` it is not JSON (the message gives the file's own line and column);
* ``FILE004`` it is JSON but not in the task family's format (``flowcred.files.load_credentials``
  with the family of ``flowcred.files.kind_for_task``: a missing field, a wrong shape);
  a task type with no known family is checked as JSON only;
* ``FILE005`` (warning) the file is readable by group or others (flowgen asks for 0600).

A relative ``credentials_path`` is resolved against the directory of the flow file (flowgen
resolves against its working directory; validating from anywhere needs a fixed anchor). Files are
checked once per run however many tasks share them, and the findings point at each task's
``credentials_path`` value. (Raw secrets in task configs are found by ``raw_secret_scan``.)
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaml.nodes import Node

from flowcred.bindings import flow_formats as ff
from flowcred.bindings.findings import Finding
from flowcred.bindings.raw_secret_scan import shown
from flowcred.errors import CredentialsFileError
from flowcred.files import kind_for_task, load_credentials, permission_warning

WORKER_KINDS = {"http_server": "http", "mcp_server": "mcp", "ai_gateway": "http"}

# (rule, message, hint) for one credentials file; empty when it is fine.
FileVerdict = list[tuple[str, str, str]]


@dataclass(slots=True)
class CredentialFileChecker:
    """Checks each (path, kind) once; the verdicts are reused for every task naming the file."""

    _cache: dict[tuple[str, str | None], FileVerdict] = field(default_factory=dict)

    @staticmethod
    def kind_for_task(task_type: str) -> str | None:
        return kind_for_task(task_type)

    def check(self, path: Path, name: str, kind: str | None) -> FileVerdict:
        key = (str(path), kind)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._check(path, name, kind)
        return found

    def _check(self, path: Path, name: str, kind: str | None) -> FileVerdict:
        try:
            info = path.stat()
        except FileNotFoundError:
            return [
                (
                    "FILE001",
                    f"credentials file {name} does not exist",
                    "create it (mode 0600) or fix credentials_path",
                )
            ]
        except OSError as exc:
            return [("FILE002", f"credentials file {name} cannot be read: {_reason(exc)}", _READ)]
        if stat.S_ISDIR(info.st_mode):
            return [("FILE002", f"credentials file {name} is a directory", _READ)]
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return [("FILE002", f"credentials file {name} cannot be read: {_reason(exc)}", _READ)]
        verdict: FileVerdict = []
        try:
            data: Any = json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            return [("FILE003", f"credentials file {name} is not UTF-8 JSON", _JSON)]
        except json.JSONDecodeError as exc:
            # exc.msg is the parser's phrase ("Expecting ',' delimiter"), never file content.
            where = f"line {exc.lineno} column {exc.colno}"
            return [("FILE003", f"credentials file {name}: {where}: {exc.msg}", _JSON)]
        except (RecursionError, ValueError):
            return [("FILE003", f"credentials file {name} is not usable JSON", _JSON)]
        if not isinstance(data, dict):
            verdict.append(
                ("FILE004", f"credentials file {name} is not a JSON object", _format_hint(kind))
            )
        elif kind is not None:
            problem = self._load_problem(path, kind)
            if problem is not None:
                verdict.append(
                    (
                        "FILE004",
                        f"credentials file {name} is not a valid {kind} credentials file: "
                        f"{problem}",
                        _format_hint(kind),
                    )
                )
        loose = permission_warning(path)
        if loose is not None:
            verdict.append(
                (
                    "FILE005",
                    f"credentials file {name} is readable by group or others "
                    f"(mode {stat.S_IMODE(info.st_mode):04o})",
                    f"chmod 600 {name}",
                )
            )
        return verdict

    def _load_problem(self, path: Path, kind: str) -> str | None:
        try:
            load_credentials(path, kind)
        except CredentialsFileError as exc:
            # "Failed to parse credentials file at PATH: missing field 'x'": keep what follows
            # the path (never content by the loader's contract).
            text = str(exc)
            marker = f"{path}: "
            return text.split(marker, 1)[1] if marker in text else type(exc).__name__
        return None


_READ = "make the file readable by the flow's user only (chmod 600, right owner)"
_JSON = "fix the JSON syntax at the position given (the file's own line and column)"


def _format_hint(kind: str | None) -> str:
    return f"write the file in the {kind or 'task'} credentials format (see the README)"


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or type(exc).__name__


@dataclass(slots=True)
class FlowgenResult:
    findings: list[Finding]
    flow: str | None
    tasks: int


def check_flowgen(
    root: Node, file: str, base_dir: Path, checker: CredentialFileChecker
) -> FlowgenResult:
    findings: list[Finding] = []
    flow = ff.get(root, "flow")
    name = ff.text_of(ff.get(flow, "name"))
    tasks_node = ff.get(flow, "tasks")
    tasks = ff.items(tasks_node)
    for index, task in enumerate(tasks):
        where = f"flow.tasks[{index}]"
        entries = list(ff.pairs(task))
        if len(entries) != 1 or not ff.is_map(entries[0][1]):
            p = ff.pos(task)
            findings.append(
                Finding.of(
                    "FLOW004",
                    file,
                    p.line,
                    p.column,
                    f"{where} is not a single '<task_type>: {{...}}' mapping",
                    "write each task as '- <task_type>: {name: ..., ...}'",
                )
            )
            continue
        type_node, config = entries[0]
        task_type = str(type_node.value)
        path_node = ff.get(config, "credentials_path")
        if path_node is not None:
            kind = checker.kind_for_task(task_type)
            findings.extend(_path_findings(path_node, file, base_dir, kind, checker))
    worker = ff.get(root, "worker")
    for server, kind in WORKER_KINDS.items():
        path_node = ff.get(ff.get(worker, server), "credentials_path")
        if path_node is not None:
            findings.extend(_path_findings(path_node, file, base_dir, kind, checker))
    return FlowgenResult(findings, name, len(tasks))


def _path_findings(
    node: Node, file: str, base_dir: Path, kind: str | None, checker: CredentialFileChecker
) -> list[Finding]:
    p = ff.pos(node)
    written = ff.text_of(node)
    if written is None:
        return [
            Finding.of(
                "FLOW004",
                file,
                p.line,
                p.column,
                "credentials_path is not a file path",
                "give the path of a JSON credentials file, or remove the key",
            )
        ]
    path = Path(os.path.expanduser(written))
    if not path.is_absolute():
        path = base_dir / path
    return [
        Finding.of(rule, file, p.line, p.column, message, hint)
        for rule, message, hint in checker.check(path, shown(written), kind)
    ]
