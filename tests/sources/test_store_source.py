"""flowcred's own store as a secret source: ``handle`` and ``handle#field``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowcred.broker import Broker, open_broker
from flowcred.catalog import Catalog, CredentialType, default_catalog
from flowcred.clock import ManualClock
from flowcred.settings import load_settings
from flowcred.sources.base import SecretSource
from flowcred.sources.flowcred_store import StoreSource
from flowcred.testing.source_contract import SecretSourceContract, canary


@pytest.fixture
def store_broker(tmp_path: Path) -> Iterator[Broker]:
    clock = ManualClock(datetime(2026, 12, 1, tzinfo=UTC))
    broker = open_broker(
        settings=load_settings(home=str(tmp_path / "store-home")), clock=clock, catalog=_CATALOG
    )
    yield broker
    broker.close()


class TestStoreSource(SecretSourceContract):
    @pytest.fixture(autouse=True)
    def _broker(self, store_broker: Broker) -> None:
        self.broker = store_broker

    def make_source(self, secrets: dict[str, str]) -> SecretSource:
        for name, value in secrets.items():
            # A free-text secret type: the catalog's own types refuse multi-line passwords,
            # which is their rule, not the source's.
            self.broker.credentials.create(
                name=name, handle=name, type="free_text", secret={"text": value}
            )
        return StoreSource(self.broker.provider())

    def make_broken_source(self) -> SecretSource:
        # The credential exists but cannot be handed out (past its expiry): an error, never
        # "not here" (the chain must not fall through to a stale copy elsewhere).
        self.broker.credentials.create(
            name="alpha_token",
            handle="alpha_token",
            type="smtp",
            config=_SMTP,
            secret={"password": canary()},
            expires_at=self.broker.clock.now() + timedelta(seconds=60),
        )
        assert isinstance(self.broker.clock, ManualClock)
        self.broker.clock.advance(120)
        return StoreSource(self.broker.provider())


_SMTP = {"host": "smtp.example.org", "username": "robot"}
_FREE_TEXT = CredentialType.model_validate(
    {
        "name": "free_text",
        "title": "Free text",
        "family": "custom",
        "description": "Test type: one multi-line text secret.",
        "fields": [{"name": "text", "kind": "text", "secret": True, "required": True}],
    }
)
_CATALOG = Catalog([*((t, "default") for t in default_catalog()), (_FREE_TEXT, "test")])


def test_handle_hash_field_reads_one_field(store_broker: Broker) -> None:
    password = canary()
    store_broker.credentials.create(
        name="mail", handle="mail", type="smtp", config=_SMTP, secret={"password": password}
    )
    source = StoreSource(store_broker.provider())
    assert source.get("mail#password").reveal() == password  # type: ignore[union-attr]
    assert source.get("mail#username").reveal() == "robot"  # type: ignore[union-attr]
    assert source.get("mail#absent") is None
    assert source.get("absent_handle") is None


def test_other_tenants_credentials_are_not_found(store_broker: Broker) -> None:
    store_broker.credentials.create(
        name="mail",
        handle="mail",
        type="smtp",
        tenant="acme",
        config=_SMTP,
        secret={"password": canary()},
    )
    assert StoreSource(store_broker.provider(tenant="other")).get("mail") is None
    assert StoreSource(store_broker.provider(tenant="acme")).get("mail") is not None
