"""``provider.resolve(binding)``: material assembled from env, a Kubernetes secret volume and AWS
Secrets Manager (moto's real server on loopback), audited, registered for redaction; a missing
dev credential names the variable it wanted."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from tests.oauth_support.server import AuthzServer
from tests.sources.loopback import closed_port
from tests.sources.test_kubernetes_source import mount

import flowcred
from flowcred.audit import AuditFilter
from flowcred.broker import Broker, open_broker
from flowcred.errors import (
    ConfigurationError,
    InvalidCredential,
    SecretNotFound,
    SecretSourceError,
    UnknownCredentialType,
)
from flowcred.redaction import default_registry, install_log_redaction
from flowcred.settings import load_settings

BINDINGS = """\
bindings:
  orders_api:
    kind: http.api_key
    api_key_secret: prod/orders#api_key
    key_name: X-Api-Key
    prefix: "Token "
  mail:
    kind: smtp
    host: smtp.example.org
    username_secret: mail_user
    password_secret: mail_password
  k8s_only:
    kind: bearer
    token_secret: shared_token
    sources: [k8s]
  missing_dev:
    kind: bearer
    token_secret: dev_token
  shadowed:
    kind: bearer
    token_secret: shared_token
"""


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def values() -> dict[str, str]:
    return {
        name: f"{name}-{secrets.token_hex(10)}"
        for name in ("api_key", "mail_user", "mail_password", "shared_token")
    }


@pytest.fixture
def open_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, values: dict[str, str]
) -> Iterator[Any]:
    """Provision the secrets (AWS, env, k8s volume) and open brokers on a bindings file."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    admin = boto3.session.Session().client(
        "secretsmanager", region_name="eu-west-1", endpoint_url=moto_endpoint
    )
    aws_name = f"prod/orders-{secrets.token_hex(4)}"
    admin.create_secret(Name=aws_name, SecretString=json.dumps({"api_key": values["api_key"]}))
    monkeypatch.setenv("MAIL_USER", values["mail_user"])
    monkeypatch.setenv("SHARED_TOKEN", "from-env-" + secrets.token_hex(8))
    k8s = tmp_path / "k8s"
    mount(k8s, {"mail_password": values["mail_password"]})
    opened: list[Broker] = []

    def open_(text: str = BINDINGS, **overrides: Any) -> Broker:
        path = tmp_path / f"bindings-{len(opened)}.yaml"
        path.write_text(text.replace("prod/orders", aws_name), encoding="utf-8")
        settings: dict[str, Any] = {
            "home": str(tmp_path / "home"),
            "sources": ["store", "env", "k8s", "aws"],
            "k8s_secrets_dir": str(k8s),
            "aws_secrets_endpoint_url": moto_endpoint,
            "aws_secrets_region": "eu-west-1",
            **overrides,
        }
        broker = open_broker(settings=load_settings(**settings), bindings=path)
        opened.append(broker)
        return broker

    open_.k8s = k8s  # type: ignore[attr-defined]
    yield open_
    for broker in opened:
        broker.close()


def binding_events(broker: Broker, result: str = "success") -> list[Any]:
    return [
        e
        for e in broker.audit.list(AuditFilter(action="resolved", result=result))
        if e.resource_type == "binding" or e.details.get("attempted") == "resolved"
    ]


def test_binding_assembled_from_env_k8s_and_aws(open_with: Any, values: dict[str, str]) -> None:
    provider = open_with().provider()
    orders = provider.resolve("orders_api")
    assert orders.reveal_headers() == {"X-Api-Key": f"Token {values['api_key']}"}
    mail = provider.resolve("mail")
    fields = mail.reveal_fields()
    assert fields["username"] == values["mail_user"]
    assert fields["password"] == values["mail_password"]
    assert (fields["host"], fields["port"]) == ("smtp.example.org", 587)
    assert values["mail_password"] not in repr(mail)
    assert provider.get_password("mail") == values["mail_password"]


def test_resolving_a_binding_is_audited_with_names_never_values(
    open_with: Any, values: dict[str, str]
) -> None:
    broker = open_with()
    broker.provider().resolve("mail", execution_id="run-7")
    broker.provider().resolve("orders_api")
    events = {e.resource_id: e for e in binding_events(broker)}
    mail = events["mail"]
    assert mail.execution_id == "run-7"
    assert mail.details["binding"] == "mail" and mail.details["type"] == "smtp"
    assert mail.details["sources"] == {"username": "env", "password": "k8s"}
    assert events["orders_api"].details["sources"] == {"api_key": "aws"}
    dumped = json.dumps([e.to_dict() for e in broker.audit.list(AuditFilter())], default=str)
    for value in values.values():
        assert value not in dumped


def test_values_from_sources_are_registered_for_log_redaction(
    open_with: Any, values: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    provider = open_with().provider()
    provider.resolve("orders_api")
    provider.resolve("mail")
    install_log_redaction()
    with caplog.at_level(logging.INFO, logger="flowcred.test"):
        for name in ("api_key", "mail_password"):
            logging.getLogger("flowcred.test").info("oops %s", values[name])
    for name in ("api_key", "mail_password"):
        assert default_registry().contains_secret(values[name])
        assert values[name] not in caplog.text


def test_missing_dev_credential_names_the_variable_it_wanted(open_with: Any) -> None:
    broker = open_with()
    with pytest.raises(SecretNotFound) as caught:
        broker.provider().resolve("missing_dev")
    message = str(caught.value)
    assert "$DEV_TOKEN" in message and "missing_dev" in message
    failures = binding_events(broker, "failure")
    assert failures and "$DEV_TOKEN" in failures[-1].details["message"]


def test_per_binding_sources_ignore_the_others(open_with: Any) -> None:
    broker = open_with()
    with pytest.raises(SecretNotFound) as caught:
        broker.provider().resolve("k8s_only")  # $SHARED_TOKEN is set, but k8s only is asked
    assert "k8s:" in str(caught.value) and "env:" not in str(caught.value)
    value = "from-k8s-" + secrets.token_hex(8)
    mount(open_with.k8s, {"shared_token": value}, version="..2026_12_03_10_00_00.2")
    assert broker.provider().resolve("k8s_only").reveal_fields()["token"] == value


def test_a_failing_source_is_an_error_not_a_fall_through(open_with: Any) -> None:
    broker = open_with(
        sources=["aws", "env"], aws_secrets_endpoint_url=f"http://127.0.0.1:{closed_port()}"
    )
    with pytest.raises(SecretSourceError):
        broker.provider().resolve("shadowed")  # $SHARED_TOKEN exists, but aws failed first


def test_binding_wins_over_a_stored_handle_and_stored_handles_still_resolve(
    open_with: Any,
) -> None:
    broker = open_with()
    stored = "stored-" + secrets.token_hex(8)
    for handle in ("shadowed", "plain_stored"):
        broker.credentials.create(
            name=handle, handle=handle, type="bearer_token", secret={"token": stored}
        )
    provider = broker.provider()
    assert provider.resolve("shadowed").reveal_fields()["token"].startswith("from-env-")
    assert provider.resolve("plain_stored").reveal_fields()["token"] == stored


def test_store_source_reads_the_callers_tenant(open_with: Any) -> None:
    broker = open_with(
        "bindings:\n  from_store:\n    kind: bearer\n    token_secret: vault_copy#token\n"
    )
    value = "acme-" + secrets.token_hex(8)
    broker.credentials.create(
        name="vault_copy",
        handle="vault_copy",
        type="bearer_token",
        tenant="acme",
        secret={"token": value},
    )
    assert broker.provider(tenant="acme").resolve("from_store").reveal_fields()["token"] == value
    with pytest.raises(SecretNotFound):
        broker.provider(tenant="other").resolve("from_store")


def test_a_literal_secret_is_refused(open_with: Any) -> None:
    broker = open_with("bindings:\n  pasted:\n    kind: bearer\n    token: abc-literal-123\n")
    with pytest.raises(InvalidCredential, match="token_secret"):
        broker.provider().resolve("pasted")


def test_bad_kind_or_source_name_stops_start_up(open_with: Any) -> None:
    with pytest.raises(UnknownCredentialType):
        open_with("bindings:\n  a:\n    kind: nope.kind\n    token_secret: x\n")
    with pytest.raises(ConfigurationError, match="vault"):
        open_with("bindings:\n  a:\n    kind: bearer\n    token_secret: x\n    sources: [vault]\n")


def test_bindings_file_setting_and_open_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = "env-" + secrets.token_hex(8)
    monkeypatch.setenv("CI_TOKEN", value)
    path = tmp_path / "b.yaml"
    path.write_text("bindings:\n  ci:\n    kind: bearer\n    token_secret: ci_token\n", "utf-8")
    monkeypatch.setenv("FLOWCRED_BINDINGS_FILE", str(path))
    with flowcred.open() as broker:
        assert broker.provider().resolve("ci").reveal_headers() == {
            "Authorization": f"Bearer {value}"
        }
    monkeypatch.delenv("FLOWCRED_BINDINGS_FILE")
    with flowcred.open(bindings=path) as broker:
        assert broker.provider().resolve("ci").reveal_fields()["token"] == value


def test_oauth_kinds_get_tokens_through_the_token_machinery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuthzServer() as server:
        server.register_client("sales-app", "cs-" + secrets.token_hex(8))
        refresh = server._issue("sales-app", "user-1", "read", refresh=True)["refresh_token"]
        monkeypatch.setenv("APP_CLIENT_ID", "sales-app")
        monkeypatch.setenv("APP_CLIENT_SECRET", server._clients["sales-app"].client_secret)
        monkeypatch.setenv("APP_REFRESH_TOKEN", refresh)
        path = tmp_path / "oauth.yaml"
        path.write_text(
            f"""\
bindings:
  machine:
    kind: oauth2.client_credentials
    token_url: {server.token_url}
    client_id_secret: app_client_id
    client_secret_secret: app_client_secret
  user_sales:
    kind: oauth2
    authorization_url: {server.authorize_url}
    token_url: {server.token_url}
    client_id_secret: app_client_id
    client_secret_secret: app_client_secret
    refresh_token_secret: app_refresh_token
""",
            "utf-8",
        )
        with flowcred.open(home=str(tmp_path / "h"), bindings=path) as broker:
            provider = broker.provider()
            machine = provider.resolve("machine")
            token = machine.fields["access_token"].reveal()
            assert server.is_valid(token)
            assert machine.reveal_headers() == {"Authorization": f"Bearer {token}"}
            user = provider.resolve("user_sales")
            assert server.is_valid(user.fields["access_token"].reveal())
            assert server.count("refresh_token") == 1
            provider.resolve("user_sales")  # held until the refresh margin: no new request
            assert server.count("refresh_token") == 1
            again = provider.refresh("user_sales")  # forced: the rotated refresh token is used
            assert server.is_valid(again.fields["access_token"].reveal())
            assert server.count("refresh_token") == 2
            assert refresh not in repr(user) and "refresh_token" not in user.fields
