"""``flowcred validate FILE... [--json] [--tenant T] [--bindings FILE] [--register]``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.bindings._validate_examples import (
    FLOWGEN,
    PROVIDER,
    PROVIDER_SECRETS,
    STUDIO,
    copy_examples,
    line_of,
    seed_studio_credentials,
)
from tests.cli._helpers import cli

from flowcred.broker import open_broker
from flowcred.sources.env import variable_for

SLACK = "xoxb-" + "2417059321-5802981720-Qw3rTy8UiOp4AsDf6GhJkL9z"


@pytest.fixture
def provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example bindings' secrets as environment variables (the default env source)."""
    for name, value in PROVIDER_SECRETS.items():
        monkeypatch.setenv(variable_for(name), value)


def _seed() -> None:
    with open_broker() as broker:  # FLOWCRED_HOME is the test's own (tests/conftest.py)
        seed_studio_credentials(broker)


def test_the_three_examples_pass_with_exit_0(tmp_path: Path, provider_env: None) -> None:
    _seed()
    root = copy_examples(tmp_path)
    code, out, err = cli("validate", str(root / FLOWGEN), str(root / STUDIO))
    assert code == 0, out + err
    assert "0 error(s), 0 warning(s)" in out
    code, out, _ = cli("validate", str(root / PROVIDER))
    assert code == 0 and "0 error(s)" in out


def test_an_error_finding_exits_1_with_position_rule_and_hint_but_not_the_secret(
    tmp_path: Path,
) -> None:
    root = copy_examples(tmp_path)
    flow = root / FLOWGEN
    flow.write_text(
        flow.read_text().replace("method: POST\n", f"method: POST\n        token: {SLACK}\n", 1)
    )
    code, out, err = cli("validate", str(flow))
    assert code == 1
    line = line_of(flow, "token: xoxb")
    assert f"{flow}:{line}:16: error SECR101 Slack bot token" in out
    assert "(fix: " in out
    assert SLACK not in out + err and SLACK[5:] not in out + err


def test_json_output_is_stable_and_complete(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    (root / "flowgen/credentials/api.json").unlink()
    code, out, _ = cli("validate", "--json", str(root / FLOWGEN))
    assert code == 1
    data = json.loads(out)
    assert set(data) == {"version", "files", "findings", "registered", "summary"}
    assert data["version"] == 1 and data["summary"] == {"errors": 1, "warnings": 0, "tasks": 4}
    [finding] = data["findings"]
    assert set(finding) == {"file", "line", "column", "severity", "rule", "message", "hint"}
    assert finding["rule"] == "FILE001"
    assert finding["line"] == line_of(root / FLOWGEN, "credentials/api.json")
    again = cli("validate", "--json", str(root / FLOWGEN))[1]
    assert again == out  # byte-identical across runs


def test_a_missing_flow_file_is_flow001_not_a_traceback(tmp_path: Path) -> None:
    code, out, err = cli("validate", str(tmp_path / "nope.yaml"))
    assert code == 1 and "FLOW001" in out and "Traceback" not in err


def test_register_makes_the_list_count_connections_and_protects_deletes(tmp_path: Path) -> None:
    _seed()
    root = copy_examples(tmp_path)
    code, out, err = cli("validate", "--register", str(root / STUDIO))
    assert code == 0, out + err
    assert "flow order-notifications registered references: 1, 2, 3" in out
    code, out, _ = cli("bindings", "list", "--json")
    assert [b["flow"] for b in json.loads(out)] == ["order-notifications"]
    code, _, err = cli("credentials", "delete", "2", "--yes")
    assert code == 1 and "order-notifications" in err


def test_tenant_option_overrides_the_graphs_tenant(tmp_path: Path) -> None:
    with open_broker() as broker:
        seed_studio_credentials(broker, tenant="acme")
    root = copy_examples(tmp_path)
    code, out, _ = cli("validate", str(root / STUDIO))
    assert code == 1 and out.count("CRED101") == 3
    code, out, _ = cli("validate", "--tenant", "acme", str(root / STUDIO))
    assert code == 0, out


def test_bindings_option_names_the_bindings_file(tmp_path: Path, provider_env: None) -> None:
    root = copy_examples(tmp_path)
    moved = tmp_path / "elsewhere.yaml"
    (root / "credential_provider/bindings.yaml").rename(moved)
    code, out, _ = cli("validate", str(root / PROVIDER))
    assert code == 1 and "DAG330" in out
    code, out, _ = cli("validate", "--bindings", str(moved), str(root / PROVIDER))
    assert code == 0, out


def test_an_unset_environment_secret_is_secr202_naming_the_variable(
    tmp_path: Path, provider_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPORTING_API_TOKEN")
    root = copy_examples(tmp_path)
    code, out, _ = cli("validate", str(root / PROVIDER))
    bindings = root / "credential_provider/bindings.yaml"
    line = line_of(bindings, "    token_secret:")
    assert code == 1 and f"{bindings}:{line}:19: error SECR202" in out
    assert "env:$REPORTING_API_TOKEN" in out
    assert PROVIDER_SECRETS["gcp_client_secret"] not in out
