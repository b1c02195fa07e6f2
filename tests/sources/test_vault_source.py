"""The Vault KV v2 source (hvac), against a loopback server implementing Vault's documented
KV v2 read and AppRole login endpoints (no Vault server can be installed here; see
vault_kv_server.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from tests.sources.loopback import closed_port
from tests.sources.vault_kv_server import FakeVault

from flowcred.errors import ConfigurationError, SecretSourceError
from flowcred.sources.base import SecretSource
from flowcred.sources.vault_kv import VaultKvSource
from flowcred.testing.source_contract import SecretSourceContract, canary


@pytest.fixture(scope="module")
def vault() -> Iterator[FakeVault]:
    server = FakeVault(mount="kv").start()
    yield server
    server.stop()


class _VaultContract(SecretSourceContract):
    @pytest.fixture(autouse=True)
    def _vault(self, vault: FakeVault) -> None:
        self.vault = vault
        self.prefix = f"ct-{secrets.token_hex(4)}"

    def secret_name(self, label: str) -> str:
        return f"{self.prefix}/{label}#value"

    def _provision(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            path, _, key = name.rpartition("#")
            self.vault.put(path, {key: value})


class TestVaultToken(_VaultContract):
    def make_source(self, secrets: dict[str, str]) -> SecretSource:
        self._provision(secrets)
        return VaultKvSource(self.vault.url, token=self.vault.root_token, mount="kv")

    def make_broken_source(self) -> SecretSource:
        return VaultKvSource(self.vault.url, token="hvs.not-a-token", mount="kv")


class TestVaultAppRole(_VaultContract):
    def make_source(self, secrets: dict[str, str]) -> SecretSource:
        self._provision(secrets)
        role_id, secret_id = self.vault.add_approle()
        return VaultKvSource(self.vault.url, role_id=role_id, secret_id=secret_id, mount="kv")

    def make_broken_source(self) -> SecretSource:
        url = f"http://127.0.0.1:{closed_port()}"
        return VaultKvSource(url, role_id="r", secret_id="s", mount="kv", timeout=2)


def test_policy_denied_path_is_an_error_not_a_miss(vault: FakeVault) -> None:
    vault.put("team-a/db", {"password": canary()})
    source = VaultKvSource(vault.url, token=vault.token_for("team-b/"), mount="kv")
    with pytest.raises(SecretSourceError, match="403"):
        source.get("team-a/db#password")


def test_missing_path_and_missing_key_are_not_found(vault: FakeVault) -> None:
    vault.put("apps/present", {"client_secret": canary()})
    source = VaultKvSource(vault.url, token=vault.root_token, mount="kv")
    assert source.get("apps/absent#client_secret") is None
    assert source.get("apps/present#other_key") is None


def test_reads_the_documented_kv2_path(vault: FakeVault) -> None:
    value = canary()
    vault.put("apps/sales", {"value": value})
    source = VaultKvSource(vault.url, token=vault.root_token, mount="kv")
    vault.requests.clear()
    found = source.get("apps/sales")  # a bare path means its "value" key
    assert found is not None and found.reveal() == value
    assert vault.requests == [("GET", "/v1/kv/data/apps/sales")]


def test_approle_logs_in_again_when_its_token_expires(vault: FakeVault) -> None:
    value = canary()
    vault.put("apps/renew", {"k": value})
    role_id, secret_id = vault.add_approle()
    source = VaultKvSource(vault.url, role_id=role_id, secret_id=secret_id, mount="kv")
    assert source.get("apps/renew#k").reveal() == value  # type: ignore[union-attr]
    vault.revoke_all()
    vault.requests.clear()
    assert source.get("apps/renew#k").reveal() == value  # type: ignore[union-attr]
    assert ("POST", "/v1/auth/approle/login") in vault.requests


def test_wrong_approle_secret_is_an_error(vault: FakeVault) -> None:
    role_id, _ = vault.add_approle()
    source = VaultKvSource(vault.url, role_id=role_id, secret_id="wrong", mount="kv")
    with pytest.raises(SecretSourceError, match="AppRole login"):
        source.get("apps/any#k")


def test_needs_a_token_or_an_approle() -> None:
    with pytest.raises(ConfigurationError, match="FLOWCRED_VAULT_TOKEN"):
        VaultKvSource("http://127.0.0.1:1")
