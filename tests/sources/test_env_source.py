"""The environment source: the contract, and the name -> variable rule a user relies on."""

from __future__ import annotations

import pytest

from flowcred.errors import SecretNotFound
from flowcred.sources.base import SecretSource
from flowcred.sources.chain import SourceChain
from flowcred.sources.env import EnvSource, variable_for
from flowcred.testing.source_contract import SecretSourceContract, canary


class TestEnvSource(SecretSourceContract):
    broken_source_possible = False

    @pytest.fixture(autouse=True)
    def _monkeypatch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def make_source(self, secrets: dict[str, str]) -> SecretSource:
        for name, value in secrets.items():
            self.monkeypatch.setenv(variable_for(name, "CT_"), value)
        return EnvSource(prefix="CT_")


@pytest.mark.parametrize(
    ("name", "prefix", "variable"),
    [
        ("gcp_client_id", "", "GCP_CLIENT_ID"),
        ("stripe#api-key", "", "STRIPE_API_KEY"),
        ("apps/sales.token", "APP_", "APP_APPS_SALES_TOKEN"),
    ],
)
def test_name_to_variable_rule(name: str, prefix: str, variable: str, monkeypatch) -> None:
    value = canary()
    monkeypatch.setenv(variable, value)
    found = EnvSource(prefix=prefix).get(name)
    assert found is not None and found.reveal() == value


def test_empty_variable_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPTY_ONE", "")
    assert EnvSource().get("empty_one") is None


def test_miss_names_the_variable_it_wanted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCP_REFRESH_TOKEN", raising=False)
    with pytest.raises(SecretNotFound) as caught:
        SourceChain([EnvSource()]).get("gcp_refresh_token")
    assert "$GCP_REFRESH_TOKEN" in str(caught.value)
    assert caught.value.tried == ("env:$GCP_REFRESH_TOKEN",)
