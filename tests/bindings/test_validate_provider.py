"""Credential Provider flows: bindings exist, kinds match, secrets exist, scopes stay in policy."""

from __future__ import annotations

from pathlib import Path

from tests.bindings._validate_examples import (
    PROVIDER,
    PROVIDER_SECRETS,
    copy_examples,
    example_sources,
    line_of,
)

from flowcred.bindings import validate


def _paths(tmp_path: Path) -> tuple[Path, Path]:
    root = copy_examples(tmp_path)
    return root / PROVIDER, root / "credential_provider" / "bindings.yaml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_credential_provider_example_validates_clean(tmp_path: Path) -> None:
    flow, _ = _paths(tmp_path)
    report = validate([flow], sources=example_sources(PROVIDER_SECRETS))
    assert report.findings == [], [f.text() for f in report.findings]
    assert report.files[0].references == ("google_sales", "reporting_api")


def test_a_missing_secret_is_secr202_at_its_binding_line(tmp_path: Path) -> None:
    flow, bindings = _paths(tmp_path)
    secrets = dict(PROVIDER_SECRETS)
    del secrets["gcp_refresh_token"]
    [finding] = validate([flow], sources=example_sources(secrets)).findings
    assert (finding.rule, finding.file) == ("SECR202", str(bindings))
    assert finding.line == line_of(bindings, "refresh_token_secret:")
    assert "gcp_refresh_token" in finding.message
    assert "env:$GCP_REFRESH_TOKEN" in finding.message  # names the variable it wanted


def test_a_binding_limited_to_an_unconfigured_source_is_secr202(tmp_path: Path) -> None:
    flow, bindings = _paths(tmp_path)
    _edit(
        bindings,
        "    token_secret: reporting_api_token\n",
        "    token_secret: reporting_api_token\n    sources: [vault]\n",
    )
    [finding] = validate([flow], sources=example_sources(PROVIDER_SECRETS)).findings
    assert finding.rule == "SECR202" and "ConfigurationError" in finding.message


def test_a_handle_without_binding_is_dag330_at_the_node(tmp_path: Path) -> None:
    flow, _ = _paths(tmp_path)
    _edit(flow, "credential: reporting_api", "credential: reporting_api_v2")
    [finding] = validate([flow], sources=example_sources(PROVIDER_SECRETS)).findings
    assert finding.rule == "DAG330" and finding.line == line_of(flow, "reporting_api_v2")


def test_a_node_with_no_alias_falls_back_to_the_flow_default(tmp_path: Path) -> None:
    flow, _ = _paths(tmp_path)
    _edit(flow, "    credential: google_sales\n", "")
    assert validate([flow], sources=example_sources(PROVIDER_SECRETS)).findings == []


def test_no_bindings_file_at_all_is_dag330_per_node(tmp_path: Path) -> None:
    flow, bindings = _paths(tmp_path)
    bindings.unlink()
    report = validate([flow], sources=example_sources(PROVIDER_SECRETS))
    assert [f.rule for f in report.findings] == ["DAG330", "DAG330"]


def test_a_kind_mismatch_is_dag332_at_requires(tmp_path: Path) -> None:
    flow, _ = _paths(tmp_path)
    _edit(flow, "requires: bearer_token", "requires: api_key")
    [finding] = validate([flow], sources=example_sources(PROVIDER_SECRETS)).findings
    assert finding.rule == "DAG332" and finding.line == line_of(flow, "requires: api_key")


def test_a_catalog_name_of_the_same_kind_is_no_mismatch(tmp_path: Path) -> None:
    flow, _ = _paths(tmp_path)
    _edit(flow, "requires: google.oauth2", "requires: google")
    assert validate([flow], sources=example_sources(PROVIDER_SECRETS)).findings == []
    _edit(flow, "requires: google", "requires: microsoft.oauth2")
    [finding] = validate([flow], sources=example_sources(PROVIDER_SECRETS)).findings
    assert finding.rule == "DAG332"


def test_a_scope_outside_policy_is_dag331(tmp_path: Path) -> None:
    flow, _ = _paths(tmp_path)
    _edit(
        flow,
        "      - https://www.googleapis.com/auth/spreadsheets.readonly\n",
        "      - https://www.googleapis.com/auth/spreadsheets.readonly\n"
        "      - https://www.googleapis.com/auth/gmail.send\n",
    )
    [finding] = validate([flow], sources=example_sources(PROVIDER_SECRETS)).findings
    assert finding.rule == "DAG331" and finding.line == line_of(flow, "gmail.send")


def test_a_binding_granting_more_than_requested_is_secr201(tmp_path: Path) -> None:
    flow, bindings = _paths(tmp_path)
    _edit(
        bindings,
        "      - https://www.googleapis.com/auth/spreadsheets.readonly\n  reporting_api",
        "      - https://www.googleapis.com/auth/spreadsheets.readonly\n"
        "      - https://www.googleapis.com/auth/drive.readonly\n  reporting_api",
    )
    [finding] = validate([flow], sources=example_sources(PROVIDER_SECRETS)).findings
    assert (finding.rule, finding.file) == ("SECR201", str(bindings))
    assert finding.line == line_of(bindings, "drive.readonly")  # the grant, not the policy


def test_a_scope_the_binding_does_not_grant_is_dag333(tmp_path: Path) -> None:
    flow, _ = _paths(tmp_path)
    _edit(
        flow,
        "      - https://www.googleapis.com/auth/spreadsheets.readonly\n",
        "      - https://www.googleapis.com/auth/spreadsheets.readonly\n"
        "      - https://www.googleapis.com/auth/drive.readonly\n",
    )
    [finding] = validate([flow], sources=example_sources(PROVIDER_SECRETS)).findings
    assert finding.rule == "DAG333" and finding.line == line_of(flow, "drive.readonly")


def test_without_sources_secrets_are_reported_unchecked(tmp_path: Path) -> None:
    flow, _ = _paths(tmp_path)
    report = validate([flow])
    assert [(f.rule, f.severity) for f in report.findings] == [("SECR203", "warning")]
    assert report.ok


def test_an_explicit_bindings_file_applies_to_every_flow(tmp_path: Path) -> None:
    flow, bindings = _paths(tmp_path)
    moved = tmp_path / "deploy-bindings.yaml"
    bindings.rename(moved)
    report = validate([flow], bindings=moved, sources=example_sources(PROVIDER_SECRETS))
    assert report.findings == []


def test_register_records_handles_that_name_stored_credentials(broker, tmp_path: Path) -> None:
    flow, _ = _paths(tmp_path)
    broker.credentials.create(
        name="Reporting API", handle="reporting_api", type="bearer_token", secret_value="t-1"
    )
    report = validate(
        [flow], broker=broker, sources=example_sources(PROVIDER_SECRETS), register=True
    )
    assert report.ok
    binding = broker.bindings.get("sales_sync", tenant="default")
    assert binding is not None and list(binding.references) == ["reporting_api"]
