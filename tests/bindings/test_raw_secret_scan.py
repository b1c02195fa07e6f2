"""Raw secrets pasted into node config: found in every dialect, never repeated, few false alarms."""

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
    example_sources,
    line_of,
)

from flowcred.bindings import validate
from flowcred.bindings.flow_formats import compose
from flowcred.bindings.raw_secret_scan import classify, scan
from flowcred.testing.canary import CanaryScanner

# Shapes written so that no complete token sits in this file's source text.
SLACK = "xoxb-" + "2417059321-5802981720-Qw3rTy8UiOp4AsDf6GhJkL9z"
SHAPES = {
    "Slack bot token": SLACK,
    "Slack user token": "xoxp-" + "1234567890-0987654321-abcdefABCDEF",
    "SendGrid API key": "SG."
    + "aBcDeFgHiJkLmNoPqRsTuV"
    + "."
    + "wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ012",
    "Stripe live secret key": "sk_" + "live_" + "51HxYzAbCdEfGhIjKlMnOpQr",
    "Stripe live restricted key": "rk_" + "live_" + "51HxYzAbCdEfGhIjKlMnOpQr",
    "GitHub token": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "GitHub fine-grained token": "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "AWS access key id": "AKIA" + "IOSFODNN7EXAMPLE",
    "JSON Web Token": "eyJhbGciOiJIUzI1NiJ9"
    + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "PEM private key": "-----BEGIN "
    + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_known_token_shape_is_named(shape: str) -> None:
    hit = classify("text", SHAPES[shape])
    assert hit is not None and (hit.rule, hit.what) == ("SECR101", shape)
    hit = classify("header", f"Bearer {SHAPES[shape]}")  # inside a longer value too
    assert hit is not None and hit.what == shape


def test_a_twilio_sid_is_a_secret_only_with_a_token_next_to_it() -> None:
    sid, token = "AC" + "a1" * 16, "0f" * 16
    assert classify("accountSid", sid) is None  # an account id alone is not secret
    hit = classify("accountSid", sid, sibling_values=(sid, token))
    assert hit is not None and hit.what == "Twilio Account SID with auth token"


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("password", "hunter2", "SECR100"),
        ("client_secret", "abc123", "SECR100"),
        ("authToken", "0123456789abcdef0123456789abcdef", "SECR100"),
        ("apiKey", "k-1", "SECR100"),
        ("X-Api-Key", "plain", "SECR100"),
        ("private_key", "abc", "SECR100"),
        ("p8Key", "abc", "SECR100"),
        ("dsn", "postgres://app:s3cret@db.internal:5432/app", "SECR103"),
        ("note", "Zk3mQ9xV2pL7wR4tY8uB1nC6hJ5gF0dS", "SECR102"),
    ],
)
def test_secret_named_keys_urls_and_entropy(key: str, value: str, rule: str) -> None:
    hit = classify(key, value)
    assert hit is not None and hit.rule == rule


# Ordinary config that must raise nothing: the false-positive corpus.
ORDINARY = [
    ("password", "${DB_PASSWORD}"),
    ("password", "$DB_PASSWORD"),
    ("token", "{{ secrets.slack_token }}"),
    ("api_key", "env:SENDGRID_API_KEY"),
    ("client_secret", "vault:secret/data/app#client_secret"),
    ("password", "<your-password>"),
    ("password", ""),
    ("secret_name", "prod/app/db"),
    ("token_url", "https://oauth2.googleapis.com/token"),
    ("password_file", "/run/secrets/db_password"),
    ("credentials_path", "/etc/flowgen/credentials/webhook.json"),
    ("api_key_header", "X-Api-Key"),
    ("deviceToken", "{{customer.device_token}}"),
    ("max_tokens", "4096"),
    ("url", "https://api.example.com/v1/orders?page=2&sort=created_at"),
    ("url", "https://hooks.example.com/services/T00000000/B00000000/abc"),
    ("webhook", "https://user@example.com/hook"),
    ("id", "550e8400-e29b-41d4-a716-446655440000"),
    ("checksum", "9f2e62d8a9275ce8b710b6ad9e186910aabbccdd"),
    ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("commit", "c0b16b1"),
    ("spreadsheet_id", "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"),
    ("templateId", "d-3f0c2b7e9a4d4c1b8e6f5a2d9c7b1e40"),
    ("topic", "com.example.app.notifications.orders"),
    ("bucket", "acme-production-event-archive-2026"),
    ("path", "/var/lib/flowgen/state/checkpoints/orders"),
    ("image", "ghcr.io/connve/flowgen:1.4.2"),
    ("email", "orders-notifications@example.com"),
    ("region", "eu-west-1"),
    ("subject", "events.ingested.v2"),
    ("body", "Your order {{order.id}} has shipped and will arrive tomorrow."),
    ("cron", "0 */5 * * *"),
    ("accountSid", "AC" + "a1" * 16),
    ("range", "Leads!A1:F500"),
    ("from", "+15550100"),
    ("arn", "arn:aws:s3:::acme-production-event-archive"),
    ("query", "SELECT id, name FROM customers WHERE created_at > :since"),
    ("version", "2024-06-01"),
    ("class", "com.example.flows.OrderNotificationHandler"),
]


@pytest.mark.parametrize(("key", "value"), ORDINARY)
def test_ordinary_config_raises_nothing(key: str, value: str) -> None:
    assert classify(key, value) is None


def test_a_pasted_xoxb_token_in_each_dialect_is_one_secr101_at_its_line(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    flowgen = root / FLOWGEN
    text = flowgen.read_text().replace(
        "          Content-Type: application/json\n",
        f"          Content-Type: application/json\n          X-Slack: {SLACK}\n",
    )
    flowgen.write_text(text)
    studio = root / STUDIO
    graph = json.loads(studio.read_text())
    graph["nodes"][1]["config"]["text"] = f"posted by {SLACK}"
    studio.write_text(json.dumps(graph, indent=2))
    provider = root / PROVIDER
    provider.write_text(provider.read_text().replace("method: POST", f"token: {SLACK}"))

    report = validate([flowgen, studio, provider], sources=example_sources(PROVIDER_SECRETS))
    found = [(f.file, f.rule, f.line) for f in report.findings if f.rule != "CRED100"]
    assert sorted(found) == sorted(
        [
            (str(flowgen), "SECR101", line_of(flowgen, "X-Slack")),
            (str(studio), "SECR101", line_of(studio, "posted by")),
            (str(provider), "SECR101", line_of(provider, "token: xoxb")),
        ]
    )
    assert all("Slack bot token" in f.message for f in report.findings if f.rule == "SECR101")
    assert report.exit_status == 1


def test_no_finding_repeats_a_planted_secret(tmp_path: Path) -> None:
    scanner = CanaryScanner()
    planted = {
        "password": scanner.plant("password"),
        "api_key": "sk_" + "live_" + "A1b2C3d4E5f6G7h8" + scanner.plant("stripe"),
        "note": scanner.plant("entropy"),
        "dsn": f"postgres://app:{scanner.plant('dsn')}@db/app",
        scanner.plant("as-key"): {"password": "hunter2"},
    }
    flow = tmp_path / "flow.json"
    flow.write_text(
        json.dumps(
            {"nodes": [{"id": "n", "type": "SendSlack", "config": {"credentialId": 0, **planted}}]}
        )
    )
    report = validate([flow])
    assert {f.rule for f in report.findings} >= {"SECR100", "SECR101", "SECR103"}
    scanner.scan_text("report json", report.to_json())
    scanner.scan_text("report text", "\n".join(f.text() for f in report.findings))
    scanner.assert_clean()


def test_binding_secret_references_are_names_not_values(tmp_path: Path) -> None:
    root = compose("bindings:\n  a:\n    kind: slack\n    token_secret: slack_bot_token\n")
    assert scan(root, "b.yaml", "", secret_suffix_refs=True) == []
    assert [f.rule for f in scan(root, "b.yaml", "")] == ["SECR100"]


def test_the_examples_clean_config_has_no_false_positive(tmp_path: Path) -> None:
    root = copy_examples(tmp_path)
    report = validate(
        [root / FLOWGEN, root / STUDIO, root / PROVIDER], sources=example_sources(PROVIDER_SECRETS)
    )
    assert [f for f in report.findings if f.rule.startswith("SECR")] == []


def test_a_token_pasted_where_a_name_belongs_is_hidden_in_every_message(tmp_path: Path) -> None:
    scanner = CanaryScanner()
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + scanner.plant("path")
    flowgen = tmp_path / "flow.yaml"
    flowgen.write_text(
        f"flow:\n  name: f\n  tasks:\n    - http_request:\n        credentials_path: {token}\n"
    )
    provider = tmp_path / "cp.yaml"
    provider.write_text(f"nodes:\n  - id: {token}\n    requires: slack\n    credential: {token}\n")
    report = validate([flowgen, provider])
    assert {f.rule for f in report.findings} == {"SECR101", "FILE001", "DAG330"}
    scanner.scan_text("report", report.to_json())
    scanner.assert_clean()
