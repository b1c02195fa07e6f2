"""The Python API of DESIGN §2, on the embedded SQLite default and on real PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import flowcred
from flowcred.broker import Broker, open_broker, slugify
from flowcred.clock import ManualClock
from flowcred.settings import load_settings
from flowcred.store.tables import credentials as credentials_table


def make_api_key(
    broker: Broker, name: str = "Stripe", tenant: str = "default", **kw
) -> flowcred.Credential:
    return broker.credentials.create(
        name=name,
        type="api_key",
        tenant=tenant,
        config={"key_name": "X-API-Key", "location": "header"},
        secret={"api_key": kw.pop("value", "sk_live_first")},
        **kw,
    )


def test_create_returns_metadata_without_secret(broker: Broker) -> None:
    cred = make_api_key(broker)
    assert cred.id >= 1
    assert cred.handle == "stripe"
    assert cred.type == "api_key" and cred.family == "custom"
    assert cred.status == "active" and cred.current_version == 1
    assert "sk_live_first" not in repr(cred) and "sk_live_first" not in json.dumps(cred.to_dict())
    assert cred.config == {"key_name": "X-API-Key", "location": "header", "prefix": ""}


def test_get_password_single_and_composite_as_flow_studio_stores_them(broker: Broker) -> None:
    slack = broker.credentials.create(
        name="Acme Slack Bot Token", type="slack", tenant="acme", secret_value="xoxb-123-abc"
    )
    twilio = broker.credentials.create(
        name="Acme SMS",
        type="twilio",
        tenant="acme",
        secret_value='{"accountSid": "AC123", "authToken": "tok"}',
    )
    provider = broker.provider(tenant="acme")
    assert provider.get_password(slack.id) == "xoxb-123-abc"
    assert json.loads(provider.get_password(twilio.id)) == {
        "accountSid": "AC123",
        "authToken": "tok",
    }
    assert slack.handle == "acme-slack-bot-token"


def test_resolve_by_id_and_handle_places_api_key(broker: Broker) -> None:
    cred = make_api_key(broker)
    provider = broker.provider()
    for ref in (cred.id, "stripe", str(cred.id)):
        material = provider.resolve(ref)
        assert material.reveal_headers() == {"X-API-Key": "sk_live_first"}
        assert repr(material.headers["X-API-Key"]) == "[secure]"
        assert "sk_live_first" not in repr(material)


@pytest.mark.parametrize(
    ("type_name", "config", "secret", "where", "expected"),
    [
        (
            "api_key",
            {"key_name": "api_key", "location": "query"},
            {"api_key": "k123456"},
            "query",
            {"api_key": "k123456"},
        ),
        (
            "api_key",
            {"key_name": "session", "location": "cookie"},
            {"api_key": "k123456"},
            "cookies",
            {"session": "k123456"},
        ),
        (
            "api_key",
            {"key_name": "Authorization", "location": "header", "prefix": "Bearer "},
            {"api_key": "sk_live_1"},
            "headers",
            {"Authorization": "Bearer sk_live_1"},
        ),
        ("bearer_token", {}, {"token": "eyJabc"}, "headers", {"Authorization": "Bearer eyJabc"}),
        (
            "bearer_token",
            {"header_name": "X-Token", "prefix": "Token "},
            {"token": "eyJabc"},
            "headers",
            {"X-Token": "Token eyJabc"},
        ),
        (
            "basic_auth",
            {"username": "Aladdin"},
            {"password": "open sesame"},
            "headers",
            {"Authorization": "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="},
        ),
        ("no_auth", {}, {}, "headers", {}),
    ],
)
def test_static_types_apply_to_requests(
    broker: Broker, type_name: str, config: dict, secret: dict, where: str, expected: dict
) -> None:
    cred = broker.credentials.create(
        name=f"t-{type_name}", type=type_name, config=config, secret=secret
    )
    material = broker.provider().resolve(cred.id)
    got = {
        "headers": material.reveal_headers(),
        "query": material.reveal_query(),
        "cookies": material.reveal_cookies(),
    }
    assert got[where] == expected
    assert sum(len(v) for v in got.values()) == len(expected)


def test_connector_types_resolve_to_typed_fields(broker: Broker) -> None:
    cred = broker.credentials.create(
        name="warehouse",
        type="postgres",
        config={
            "host": "db.internal",
            "port": "5433",
            "database": "sales",
            "username": "etl",
            "ssl_mode": "require",
        },
        secret={"password": "pg-pass-1"},
    )
    material = broker.provider().resolve(cred.id)
    fields = material.reveal_fields()
    assert fields["port"] == 5433 and fields["host"] == "db.internal"
    assert fields["password"] == "pg-pass-1"
    assert repr(material.fields["password"]) == "[secure]"
    assert material.headers == {}


def test_other_tenant_is_answered_like_unknown(broker: Broker) -> None:
    cred = make_api_key(broker, tenant="acme")
    other = broker.provider(tenant="globex")
    with pytest.raises(flowcred.CredentialNotFound) as foreign:
        other.get_password(cred.id)
    with pytest.raises(flowcred.CredentialNotFound) as unknown:
        other.get_password(cred.id + 1000)
    assert type(foreign.value) is type(unknown.value)
    assert str(foreign.value).replace(str(cred.id), "N") == str(unknown.value).replace(
        str(cred.id + 1000), "N"
    )
    with pytest.raises(flowcred.CredentialNotFound):
        broker.credentials.get(cred.id, tenant="globex")
    # The handle lookup is per tenant too.
    with pytest.raises(flowcred.CredentialNotFound):
        other.resolve("stripe")


def test_rotate_keeps_id_and_rollback_restores(broker: Broker) -> None:
    cred = make_api_key(broker)
    provider = broker.provider()
    assert provider.get_password(cred.id) == "sk_live_first"
    rotated = broker.credentials.rotate(cred.id, secret_value="sk_live_second")
    assert rotated.id == cred.id and rotated.current_version == 2
    assert provider.get_password(cred.id) == "sk_live_second"
    back = broker.credentials.rollback(cred.id, 1)
    assert back.current_version == 3  # a new version holding version 1's secret
    assert provider.get_password(cred.id) == "sk_live_first"
    again = broker.credentials.rotate(cred.id, secret_value="sk_live_third")
    assert again.current_version == 4  # new versions never reuse a number
    assert [v.version for v in broker.credentials.versions(cred.id)] == [4, 3, 2, 1]


def test_retention_keeps_last_ten_versions(broker: Broker) -> None:
    cred = make_api_key(broker)
    for i in range(14):
        broker.credentials.rotate(cred.id, secret_value=f"sk_live_{i:03d}")
    versions = [v.version for v in broker.credentials.versions(cred.id)]
    assert versions == list(range(15, 5, -1))
    with pytest.raises(flowcred.InvalidCredential) as exc:
        broker.credentials.rollback(cred.id, 2)
    assert exc.value.problems[0].field == "version"


def test_stale_expected_version_conflicts_and_changes_nothing(broker: Broker) -> None:
    cred = make_api_key(broker)
    broker.credentials.rotate(cred.id, secret_value="sk_live_second", expected_version=1)
    with pytest.raises(flowcred.VersionConflict):
        broker.credentials.rotate(cred.id, secret_value="sk_live_lost", expected_version=1)
    assert broker.provider().get_password(cred.id) == "sk_live_second"
    assert broker.credentials.get(cred.id).current_version == 2


def test_validation_reports_every_problem_and_stores_nothing(broker: Broker) -> None:
    with pytest.raises(flowcred.InvalidCredential) as exc:
        broker.credentials.create(
            name="",
            type="postgres",
            config={"port": "not-a-port", "ssl_mode": "sometimes", "password": "inline-pw-1"},
            secret={},
        )
    fields = {p.field for p in exc.value.problems}
    assert {"name", "port", "ssl_mode", "password"} <= fields
    assert "inline-pw-1" not in str(exc.value)
    assert broker.credentials.list() == []


def test_unknown_type_and_handle_conflict(broker: Broker) -> None:
    with pytest.raises(flowcred.UnknownCredentialType):
        broker.credentials.create(name="x", type="nope", secret={})
    make_api_key(broker)
    # A handle the caller chose conflicts; a generated one would get a suffix instead.
    with pytest.raises(flowcred.HandleConflict):
        make_api_key(broker, handle="stripe")
    # The same handle is fine in another environment or tenant.
    make_api_key(broker, environment="prod")
    make_api_key(broker, tenant="acme")
    assert len(broker.credentials.list()) == 3
    assert len(broker.credentials.list(environment="prod")) == 1


def test_update_merges_config_and_invalidates_cache(broker: Broker) -> None:
    cred = make_api_key(broker)
    provider = broker.provider()
    assert provider.resolve(cred.id).reveal_headers() == {"X-API-Key": "sk_live_first"}
    updated = broker.credentials.update(cred.id, config={"key_name": "X-Other"}, name="Stripe 2")
    assert updated.config["key_name"] == "X-Other" and updated.name == "Stripe 2"
    assert updated.current_version == 1
    assert provider.resolve(cred.id).reveal_headers() == {"X-Other": "sk_live_first"}
    with pytest.raises(flowcred.InvalidCredential):
        broker.credentials.update(cred.id, config={"location": "body"})


def test_delete_removes_everything(broker: Broker) -> None:
    cred = make_api_key(broker)
    provider = broker.provider()
    provider.resolve(cred.id)
    broker.credentials.delete(cred.id)
    with pytest.raises(flowcred.CredentialNotFound):
        provider.resolve(cred.id)
    with pytest.raises(flowcred.CredentialNotFound):
        provider.resolve("stripe")
    with pytest.raises(flowcred.CredentialNotFound):
        broker.credentials.delete(cred.id)


def test_list_filters_and_pagination(broker: Broker) -> None:
    ids = [make_api_key(broker, name=f"key {i}").id for i in range(5)]
    broker.credentials.create(
        name="pg",
        type="postgres",
        config={"host": "h", "database": "d", "username": "u"},
        secret={"password": "p-123456"},
    )
    assert [c.id for c in broker.credentials.list(type="api_key")] == ids
    assert [c.type for c in broker.credentials.list(family="connector")] == ["postgres"]
    page1 = broker.credentials.list(limit=2)
    page2 = broker.credentials.list(limit=2, after_id=page1[-1].id)
    assert [c.id for c in page1 + page2] == ids[:4]


def test_expired_static_secret_is_refused(broker: Broker) -> None:
    past = broker.clock.now() - timedelta(minutes=1)
    # An expiry already past is refused at create, so the credential expires "later": the past
    # time is written straight to the store, as it would stand once the expiry has passed.
    cred = make_api_key(broker)
    broker._store.update(cred.id, expires_at=past)
    assert broker.credentials.get(cred.id).status == "expired"
    with pytest.raises(flowcred.CredentialExpired):
        broker.provider().resolve(cred.id)
    assert [c.status for c in broker.credentials.list(status="expired")] == ["expired"]


async def _aresolve(provider: flowcred.CredentialProvider, ref: int) -> dict[str, str]:
    return (await provider.aresolve(ref)).reveal_headers()


def test_async_twins(broker: Broker) -> None:
    import asyncio

    cred = make_api_key(broker)
    provider = broker.provider()
    assert asyncio.run(_aresolve(provider, cred.id)) == {"X-API-Key": "sk_live_first"}
    assert asyncio.run(provider.aget_password(cred.id)) == "sk_live_first"


def test_slugify() -> None:
    assert slugify("Acme Slack Bot Token") == "acme-slack-bot-token"
    assert slugify("Café  Über API!") == "cafe-uber-api"
    assert slugify("12345") == "cred-12345"
    assert slugify("!!!") == "credential"


# -- cache and last-used behaviour, with a manual clock -------------------------------------


def _clocked(tmp_path: Path, database_url: str, ttl: float) -> tuple[Broker, ManualClock]:
    clock = ManualClock()
    settings = load_settings(
        home=tmp_path / "home",
        database_url=database_url,
        cache_ttl_seconds=ttl,
        last_used_flush_seconds=3600,
    )
    return open_broker(settings=settings, clock=clock), clock


def test_cache_ttl_bounds_staleness_across_processes(tmp_path: Path, database_url: str) -> None:
    """A change made elsewhere (another process) is seen once the TTL has passed."""
    reader, clock = _clocked(tmp_path, database_url, ttl=30)
    writer = open_broker(settings=load_settings(home=tmp_path / "home", database_url=database_url))
    try:
        cred = make_api_key(writer)
        provider = reader.provider()
        assert provider.get_password(cred.id) == "sk_live_first"
        writer.credentials.rotate(cred.id, secret_value="sk_live_second")
        # Within the TTL the reader may still answer from its cache, or may already have been
        # told by the change feed (on PostgreSQL LISTEN/NOTIFY makes that near-immediate): the
        # TTL is a bound on staleness, not a promise of it.
        assert provider.get_password(cred.id) in ("sk_live_first", "sk_live_second")
        clock.advance(31)
        assert provider.get_password(cred.id) == "sk_live_second"
    finally:
        writer.close()
        reader.close()


def test_cache_ttl_zero_disables_caching(tmp_path: Path, database_url: str) -> None:
    reader, _ = _clocked(tmp_path, database_url, ttl=0)
    writer = open_broker(settings=load_settings(home=tmp_path / "home", database_url=database_url))
    try:
        cred = make_api_key(writer)
        assert reader.provider().get_password(cred.id) == "sk_live_first"
        writer.credentials.rotate(cred.id, secret_value="sk_live_second")
        assert reader.provider().get_password(cred.id) == "sk_live_second"
    finally:
        writer.close()
        reader.close()


def test_last_used_is_tracked_in_memory_and_flushed(tmp_path: Path, database_url: str) -> None:
    broker, clock = _clocked(tmp_path, database_url, ttl=30)
    try:
        cred = make_api_key(broker)
        clock.advance(5)
        broker.provider().resolve(cred.id)

        def stored_last_used() -> object:
            with broker.engine.connect() as conn:
                return conn.execute(
                    select(credentials_table.c.last_used_at).where(
                        credentials_table.c.id == cred.id
                    )
                ).scalar_one()

        assert stored_last_used() is None  # resolve wrote nothing
        assert broker.credentials.get(cred.id).last_used_at == clock.now()
        broker._resolver.last_used.flush()
        assert stored_last_used() is not None
    finally:
        broker.close()


@pytest.mark.postgres
def test_open_on_postgres_url_shape(clean_pg_url: str, tmp_path: Path) -> None:
    """flowcred.open() accepts a postgresql+psycopg URL as in DESIGN §2."""
    with flowcred.open(clean_pg_url, home=str(tmp_path / "pg-home")) as broker:
        cred = make_api_key(broker)
        assert broker.provider().get_password(cred.id) == "sk_live_first"
        assert "postgresql" in repr(broker)


def test_running_broker_reads_secrets_rewrapped_by_another_process(
    tmp_path: Path, database_url: str
) -> None:
    """A server keeps resolving after `flowcred keys rotate` ran beside it: the ring reloads
    when a data key names a KEK version the server has not seen yet."""
    settings = load_settings(home=tmp_path / "home", database_url=database_url, cache_ttl_seconds=0)
    server = open_broker(settings=settings)
    try:
        cred = make_api_key(server)
        assert server.provider().get_password(cred.id) == "sk_live_first"
        with open_broker(settings=settings) as operator:
            assert operator.rotate_keys().primary_version == 2
        assert server.kek_version == 1  # not reloaded yet: nothing asked for version 2
        assert server.provider().get_password(cred.id) == "sk_live_first"
        assert server.kek_version == 2
        server.audit.verify()
    finally:
        server.close()
