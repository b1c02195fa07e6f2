"""The AWS Secrets Manager source (boto3), against moto's real HTTP server on loopback."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from tests.sources.loopback import closed_port

from flowcred.errors import SecretSourceError
from flowcred.sources.aws_secrets_manager import AwsSecretsManagerSource
from flowcred.sources.base import SecretSource
from flowcred.testing.source_contract import SecretSourceContract, canary

KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def admin(moto_endpoint: str) -> Any:
    return boto3.session.Session().client(
        "secretsmanager", region_name="eu-west-1", endpoint_url=moto_endpoint, **KEYS
    )


def source_at(endpoint: str) -> AwsSecretsManagerSource:
    return AwsSecretsManagerSource(
        region="eu-west-1", endpoint_url=endpoint, timeout=2, client_kwargs=KEYS
    )


class TestAwsSecretsManager(SecretSourceContract):
    @pytest.fixture(autouse=True)
    def _moto(self, moto_endpoint: str, admin: Any) -> None:
        self.endpoint, self.admin = moto_endpoint, admin
        self.prefix = f"ct-{secrets.token_hex(4)}"

    def secret_name(self, label: str) -> str:
        return f"{self.prefix}/{label}"

    def make_source(self, secrets: dict[str, str]) -> SecretSource:
        for name, value in secrets.items():
            self.admin.create_secret(Name=name, SecretString=value)
        return source_at(self.endpoint)

    def make_broken_source(self) -> SecretSource:
        return source_at(f"http://127.0.0.1:{closed_port()}")


def test_json_key_of_a_key_value_secret(moto_endpoint: str, admin: Any) -> None:
    value = canary()
    admin.create_secret(Name="apps/sales-json", SecretString=json.dumps({"client_secret": value}))
    source = source_at(moto_endpoint)
    assert source.get("apps/sales-json#client_secret").reveal() == value  # type: ignore[union-attr]
    assert source.get("apps/sales-json#absent") is None


def test_hash_key_on_a_plain_string_secret_is_an_error(moto_endpoint: str, admin: Any) -> None:
    planted = canary()
    admin.create_secret(Name="apps/plain", SecretString=planted)
    with pytest.raises(SecretSourceError) as caught:
        source_at(moto_endpoint).get("apps/plain#key")
    assert planted not in str(caught.value)


def test_binary_secret_text_is_read(moto_endpoint: str, admin: Any) -> None:
    value = canary()
    admin.create_secret(Name="apps/binary", SecretBinary=value.encode())
    assert source_at(moto_endpoint).get("apps/binary").reveal() == value  # type: ignore[union-attr]


def test_client_errors_other_than_not_found_raise(moto_endpoint: str, admin: Any) -> None:
    admin.create_secret(Name="apps/deleted", SecretString=canary())
    admin.delete_secret(SecretId="apps/deleted", RecoveryWindowInDays=7)
    # A secret scheduled for deletion answers InvalidRequestException: an error, not a miss.
    with pytest.raises(SecretSourceError, match="InvalidRequestException"):
        source_at(moto_endpoint).get("apps/deleted")
