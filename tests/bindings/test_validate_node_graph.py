"""Flow Studio node graphs: each credentialId exists in the tenant and fits the node."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bindings._validate_examples import STUDIO, copy_examples, seed_studio_credentials

from flowcred.bindings import validate
from flowcred.broker import Broker


def _graph(root: Path) -> tuple[Path, dict]:
    path = root / STUDIO
    return path, json.loads(path.read_text())


def _write(path: Path, graph: dict) -> None:
    path.write_text(json.dumps(graph, indent=2))


def _line_of_credential_id(path: Path, node_index: int) -> int:
    lines = [n for n, line in enumerate(path.read_text().splitlines(), 1) if "credentialId" in line]
    return lines[node_index]


def test_the_flow_studio_example_validates_clean(broker: Broker, tmp_path: Path) -> None:
    seed_studio_credentials(broker)
    report = validate([copy_examples(tmp_path) / STUDIO], broker=broker)
    assert report.findings == [], [f.text() for f in report.findings]
    assert report.files[0].dialect == "flow_studio"
    assert report.files[0].references == (1, 2, 3)  # credentialId 0 is "no auth"


def test_an_unknown_credential_id_is_cred101_at_its_line(broker: Broker, tmp_path: Path) -> None:
    seed_studio_credentials(broker)
    path, graph = _graph(copy_examples(tmp_path))
    graph["nodes"][1]["config"]["credentialId"] = 99
    _write(path, graph)
    report = validate([path], broker=broker)
    assert [(f.rule, f.line) for f in report.findings] == [
        ("CRED101", _line_of_credential_id(path, 1))
    ]
    assert "99" in report.findings[0].message and report.exit_status == 1


def test_another_tenants_credential_is_unknown_too(broker: Broker, tmp_path: Path) -> None:
    seed_studio_credentials(broker, tenant="acme")
    report = validate([copy_examples(tmp_path) / STUDIO], broker=broker)  # tenantId: default
    assert [f.rule for f in report.findings] == ["CRED101"] * 3
    assert validate([tmp_path / "examples" / STUDIO], broker=broker, tenant="acme").ok


def test_a_credential_of_the_wrong_type_is_cred102(broker: Broker, tmp_path: Path) -> None:
    ids = seed_studio_credentials(broker)
    path, graph = _graph(copy_examples(tmp_path))
    graph["nodes"][0]["config"]["credentialId"] = ids["slack"]  # a Slack token on an SMS node
    _write(path, graph)
    [finding] = validate([path], broker=broker).findings
    assert finding.rule == "CRED102" and finding.line == _line_of_credential_id(path, 0)
    assert "twilio" in finding.message and "slack" in finding.message


def test_the_provider_decides_the_fitting_type(broker: Broker, tmp_path: Path) -> None:
    seed_studio_credentials(broker)
    path, graph = _graph(copy_examples(tmp_path))
    graph["nodes"][0]["config"]["provider"] = "vonage"  # the Twilio credential no longer fits
    _write(path, graph)
    assert [f.rule for f in validate([path], broker=broker).findings] == ["CRED102"]
    graph["nodes"][0]["config"]["provider"] = "carrier-pigeon"
    _write(path, graph)
    assert [f.rule for f in validate([path], broker=broker).findings] == ["CRED104"]


def test_a_non_integer_credential_id_is_cred103(broker: Broker, tmp_path: Path) -> None:
    seed_studio_credentials(broker)
    path, graph = _graph(copy_examples(tmp_path))
    graph["nodes"][2]["config"]["credentialId"] = "3"
    _write(path, graph)
    assert [f.rule for f in validate([path], broker=broker).findings] == ["CRED103"]


def test_without_a_store_ids_are_reported_unchecked_as_a_warning(tmp_path: Path) -> None:
    report = validate([copy_examples(tmp_path) / STUDIO])
    assert [(f.rule, f.severity) for f in report.findings] == [("CRED100", "warning")]
    assert report.exit_status == 0


def test_register_records_the_graphs_ids_as_its_binding(broker: Broker, tmp_path: Path) -> None:
    ids = seed_studio_credentials(broker)
    report = validate([copy_examples(tmp_path) / STUDIO], broker=broker, register=True)
    assert report.registered[0]["registered"] is True
    binding = broker.bindings.get("order-notifications", tenant="default")
    assert binding is not None and list(binding.references) == [1, 2, 3]
    record = broker.credentials.get(ids["slack"])
    assert broker.bindings.connections([record]) == {ids["slack"]: 1}


def test_register_skips_a_flow_with_errors(broker: Broker, tmp_path: Path) -> None:
    seed_studio_credentials(broker)
    path, graph = _graph(copy_examples(tmp_path))
    graph["nodes"][0]["config"]["credentialId"] = 42
    _write(path, graph)
    report = validate([path], broker=broker, register=True)
    assert report.registered == [
        {
            "file": str(path),
            "flow": "order-notifications",
            "tenantId": "default",
            "registered": False,
            "reason": "the flow has errors",
        }
    ]
    assert broker.bindings.get("order-notifications", tenant="default") is None
