"""flowgen flows: every credentials_path file exists, reads, parses as its family, is 0600."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bindings._validate_examples import FLOWGEN, copy_examples, line_of

from flowcred.bindings import Finding, Report, validate


def _only(report: Report) -> Finding:
    assert len(report.findings) == 1, [f.text() for f in report.findings]
    return report.findings[0]


def test_the_flowgen_example_validates_clean(tmp_path: Path) -> None:
    flow = copy_examples(tmp_path) / FLOWGEN
    report = validate([flow])
    assert report.findings == []
    assert report.exit_status == 0
    assert report.files[0].dialect == "flowgen" and report.files[0].tasks == 4


def test_a_missing_credentials_file_is_file001_at_its_line(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    (root / "flowgen/credentials/api.json").unlink()
    flow = root / FLOWGEN
    finding = _only(validate([flow]))
    assert (finding.rule, finding.severity) == ("FILE001", "error")
    assert finding.line == line_of(flow, "credentials/api.json")
    assert finding.column == 27  # the value after "credentials_path: "
    assert "credentials/api.json" in finding.message


def test_malformed_json_is_file003_with_the_files_own_position(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    (root / "flowgen/credentials/webhook.json").write_text('{\n  "bearer_auth": "tok"\n  "x": 1}')
    flow = root / FLOWGEN
    finding = _only(validate([flow]))
    assert finding.rule == "FILE003"
    assert finding.line == line_of(flow, "credentials/webhook.json")
    assert "line 3 column 3" in finding.message
    assert "tok" not in finding.message


def test_a_file_of_the_wrong_kind_is_file004(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    # An HttpCredentials file where the NATS task wants {"nkey": {"seed": ...}}.
    nats = root / "flowgen/credentials/nats.json"
    nats.write_text(json.dumps({"bearer_auth": "wrong-kind-canary-3141"}))
    flow = root / FLOWGEN
    finding = _only(validate([flow]))
    assert finding.rule == "FILE004"
    assert finding.line == line_of(flow, "credentials/nats.json")
    assert "nats" in finding.message and "nkey" in finding.message
    assert "wrong-kind-canary-3141" not in finding.text()


def test_a_group_readable_file_is_a_warning_and_does_not_fail(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    (root / "flowgen/credentials/http.json").chmod(0o644)
    flow = root / FLOWGEN
    report = validate([flow])
    finding = _only(report)
    assert (finding.rule, finding.severity) == ("FILE005", "warning")
    assert finding.line == line_of(flow, "credentials/http.json")  # the worker-level path
    assert "0644" in finding.message
    assert report.exit_status == 0


def test_an_unreadable_file_and_a_directory_are_file002(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    (root / "flowgen/credentials/mcp.json").unlink()
    (root / "flowgen/credentials/mcp.json").mkdir()
    finding = _only(validate([root / FLOWGEN]))
    assert finding.rule == "FILE002" and "directory" in finding.message


def test_relative_paths_resolve_against_the_flow_file_not_the_cwd(
    tmp_path: Path, monkeypatch
) -> None:
    root = copy_examples(tmp_path)
    monkeypatch.chdir(tmp_path)  # credentials/ does not exist here
    assert validate([root / FLOWGEN]).findings == []


def test_a_shared_file_is_checked_once_but_reported_at_every_task(tmp_path: Path) -> None:
    creds = tmp_path / "shared.json"
    creds.write_text("{not json")
    creds.chmod(0o600)
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "flow:\n  name: f\n  tasks:\n"
        + "".join(
            f"    - http_request:\n        name: t{i}\n        credentials_path: shared.json\n"
            for i in range(3)
        )
    )
    report = validate([flow])
    assert [(f.rule, f.line) for f in report.sorted_findings()] == [
        ("FILE003", 6),
        ("FILE003", 9),
        ("FILE003", 12),
    ]


def test_a_task_that_is_not_one_typed_mapping_is_flow004(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("flow:\n  name: f\n  tasks:\n    - just_a_string\n    - http_request: {}\n")
    report = validate([flow])
    assert [(f.rule, f.line) for f in report.findings] == [("FLOW004", 4)]
    assert report.files[0].tasks == 2


def test_a_worker_only_file_checks_the_worker_level_paths(tmp_path: Path) -> None:
    flow = tmp_path / "worker.yaml"
    flow.write_text(
        "worker:\n  http_server:\n    credentials_path: http.json\n"
        "  mcp_server:\n    credentials_path: mcp.json\n"
    )
    (tmp_path / "http.json").write_text("{}")
    (tmp_path / "http.json").chmod(0o600)
    (tmp_path / "mcp.json").write_text('{"api_keys": "not-a-list"}')
    (tmp_path / "mcp.json").chmod(0o600)
    report = validate([flow])
    assert [(f.rule, f.line) for f in report.findings] == [("FILE004", 5)]
