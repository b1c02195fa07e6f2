"""Which sources exist and in what order, from ``FLOWCRED_*`` settings."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from flowcred.errors import ConfigurationError
from flowcred.redaction import Secret
from flowcred.settings import FlowcredSettings, load_settings
from flowcred.sources import config as config_module
from flowcred.sources.base import SecretSource
from flowcred.sources.config import PLUGIN_GROUP, sources_from_settings


def test_default_order_is_by_priority_over_configured_sources(tmp_path: Path) -> None:
    settings = load_settings(
        k8s_secrets_dir=str(tmp_path),
        secrets_file=str(tmp_path / "s.json"),
        vault_url="http://127.0.0.1:8200",
        vault_token="hvs.x",
        aws_secrets_region="eu-west-1",
    )
    assert sources_from_settings(settings).names == ["env", "files", "k8s", "vault", "aws"]
    assert sources_from_settings(load_settings()).names == ["env"]


def test_flowcred_sources_sets_order_and_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWCRED_SOURCES", "k8s, env")
    monkeypatch.setenv("FLOWCRED_K8S_SECRETS_DIR", str(tmp_path))
    assert sources_from_settings(load_settings()).names == ["k8s", "env"]
    assert sources_from_settings(load_settings(), order=["env"]).names == ["env"]


def test_a_listed_source_without_its_settings_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWCRED_SOURCES", "env,vault")
    with pytest.raises(ConfigurationError, match="'vault' but its settings are missing"):
        sources_from_settings(load_settings())


def test_unknown_source_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown source"):
        sources_from_settings(load_settings(sources=["env", "keychain"]))


def test_vault_needs_a_token_or_approle() -> None:
    with pytest.raises(ConfigurationError, match="FLOWCRED_VAULT_TOKEN"):
        sources_from_settings(load_settings(vault_url="http://127.0.0.1:8200"))


def test_env_prefix_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWCRED_ENV_SECRETS_PREFIX", "APP_")
    monkeypatch.setenv("APP_DB_PASSWORD", "from-the-prefixed-variable")
    chain = sources_from_settings(load_settings())
    assert chain.get("db_password").value.reveal() == "from-the-prefixed-variable"
    assert chain.tried("x") == ["env:$APP_X"]


class KeychainSource(SecretSource):
    """A plugin source, as a third-party distribution would ship it."""

    name = "keychain"
    priority = 45.0

    def get(self, secret_name: str) -> Secret | None:
        return Secret("from-the-keychain-plugin") if secret_name == "db_password" else None


def make_keychain(settings: FlowcredSettings) -> SecretSource:
    return KeychainSource()


def broken_plugin(settings: FlowcredSettings) -> SecretSource:
    raise OSError("the keychain daemon is not running")


def _with_plugins(monkeypatch: pytest.MonkeyPatch, *values: str) -> None:
    found = [
        EntryPoint(name=f"plugin{i}", value=value, group=PLUGIN_GROUP)
        for i, value in enumerate(values)
    ]
    monkeypatch.setattr(
        config_module, "entry_points", lambda group: found if group == PLUGIN_GROUP else []
    )


def test_entry_point_plugins_join_the_chain_by_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_plugins(monkeypatch, f"{__name__}:make_keychain")
    monkeypatch.setenv("DB_PASSWORD", "from-env")
    chain = sources_from_settings(load_settings())
    assert chain.names == ["keychain", "env"]
    assert chain.get("db_password").value.reveal() == "from-the-keychain-plugin"
    assert sources_from_settings(load_settings(sources=["env", "keychain"])).names == [
        "env",
        "keychain",
    ]


def test_a_plugin_that_fails_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_plugins(monkeypatch, f"{__name__}:broken_plugin")
    with pytest.raises(ConfigurationError, match=r"plugin0.*failed to load: OSError"):
        sources_from_settings(load_settings())
