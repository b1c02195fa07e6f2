"""The flow file itself: unreadable, not YAML/JSON, no known dialect; JSON as tools write it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bindings._validate_examples import (
    PROVIDER,
    PROVIDER_SECRETS,
    copy_examples,
    example_sources,
    line_of,
)

from flowcred.bindings import validate
from flowcred.bindings.flow_formats import compose, detect


def test_a_syntax_error_is_flow002_at_its_position_without_the_line(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("flow:\n  name: x\n  tasks: [\n    {token: 'xoxb-1234567890-abcdef'\n")
    [finding] = validate([flow]).findings
    assert finding.rule == "FLOW002" and finding.line >= 4
    assert "xoxb" not in finding.text()


def test_a_file_of_no_known_dialect_is_flow003(tmp_path: Path) -> None:
    flow = tmp_path / "compose.yaml"
    flow.write_text("services:\n  web:\n    image: nginx\n")
    assert [f.rule for f in validate([flow]).findings] == ["FLOW003"]


def test_an_unreadable_flow_file_is_flow001(tmp_path: Path) -> None:
    [finding] = validate([tmp_path / "missing.json"]).findings
    assert finding.rule == "FLOW001" and "no such file" in finding.message


def test_json_with_tabs_and_astral_escapes_keeps_its_lines(tmp_path: Path) -> None:
    graph = {
        "name": "emoji",
        "nodes": [
            {
                "id": "a",
                "type": "SendSlack",
                "config": {"credentialId": 0, "text": "ok \U0001f680"},
            },
            {"id": "b", "type": "SendSlack", "config": {"credentialId": "x"}},
        ],
    }
    flow = tmp_path / "graph.json"
    flow.write_text(json.dumps(graph, indent="\t"))  # ensure_ascii: "\ud83d\ude80"
    [finding] = validate([flow]).findings
    assert finding.rule == "CRED103" and finding.line == line_of(flow, '"credentialId": "x"')


def test_dialects_are_told_apart() -> None:
    assert detect(compose("worker:\n  http_server: {enabled: true}\n")) == "flowgen"
    assert detect(compose('{"nodes": [{"config": {"credentialId": 3}}]}')) == "flow_studio"
    assert detect(compose("nodes:\n  - {id: a, requires: slack}\n")) == "credential_provider"
    assert detect(compose("flow:\n  nodes:\n    - {id: a, credential: h}\n")) == (
        "credential_provider"
    )
    assert detect(compose("- a\n- b\n")) is None


def test_a_token_pasted_into_the_bindings_file_is_found_there(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    bindings = root / "credential_provider/bindings.yaml"
    token = "xoxb-" + "2417059321-5802981720-Qw3rTy8UiOp4AsDf6GhJkL9z"
    text = bindings.read_text().replace(
        "    header_name: Authorization\n", f"    header_name: Authorization\n    note: {token}\n"
    )
    bindings.write_text(text)
    report = validate([root / PROVIDER], sources=example_sources(PROVIDER_SECRETS))
    assert [(f.rule, f.file, f.line) for f in report.findings] == [
        ("SECR101", str(bindings), line_of(bindings, "note: xoxb"))
    ]


def test_a_bindings_file_the_runtime_refuses_is_bind001_and_nothing_cascades(
    tmp_path: Path,
) -> None:
    root = copy_examples(tmp_path)
    bindings = root / "credential_provider/bindings.yaml"
    bindings.write_text(
        bindings.read_text().replace(
            "    header_name: Authorization\n", "    header_name: Authorization\n    token: x\n"
        )
    )
    report = validate([root / PROVIDER], sources=example_sources(PROVIDER_SECRETS))
    # The refusal, and the literal secret itself; no node loses its binding over it.
    found = report.sorted_findings()
    assert [(f.rule, f.file) for f in found] == [
        ("BIND001", str(bindings)),
        ("SECR100", str(bindings)),
    ]
    assert "both as a literal and as a secret reference" in found[0].message
