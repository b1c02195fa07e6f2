"""Item 3 of the hardening issue: a caller who may not resolve must not redirect a secret.

A field that says where a secret is sent (a host, a port, a URL, a token endpoint, an issuer) is
marked ``destination`` in the catalog. The broker refuses a change of such a field by a caller
whose :class:`~flowcred.audit.Access` may not resolve, unless the same call carries the secret
again; with the secret, config change and rotation commit together under one audit event.
"""

from __future__ import annotations

import re

import pytest

import flowcred
from flowcred.audit import Access, Actor, AuditFilter
from flowcred.broker import Broker
from flowcred.catalog import default_catalog

# A field whose name says it is a place: host, port, any URL or URI, an endpoint, an issuer, a
# server list, or an account that names the service's host (``<account>.snowflakecomputing.com``).
# (``virtual_host`` and ``trust_server_certificate`` are not places: they do not match.)
DESTINATION_NAME = re.compile(
    r"^(host|hosts|port|urls?|servers|bootstrap_servers)$|_(url|uri)$|^(endpoint|issuer)"
)
HOST_NAMING_ACCOUNTS = {("snowflake", "account"), ("azure_blob", "account_name")}


def _developer(broker: Broker) -> flowcred.broker.BrokerView:
    return broker.acting_as(Actor("api_key", "dev", "developer"), "127.0.0.1", may_resolve=False)


def test_every_field_named_like_a_destination_is_marked() -> None:
    catalog = default_catalog()
    unmarked = [
        f"{name}.{spec.name}"
        for name in catalog.names()
        for spec in catalog.get(name).fields
        if not spec.secret and DESTINATION_NAME.search(spec.name) and not spec.destination
    ]
    assert unmarked == []
    for type_name, field_name in HOST_NAMING_ACCOUNTS:
        assert catalog.get(type_name).field(field_name).destination
    assert [f.name for f in catalog.get("postgres").destination_fields] == ["host", "port"]
    assert {"token_url", "issuer"} <= {
        f.name for f in catalog.get("oauth2_client_credentials").destination_fields
    }


def test_destination_change_without_secret_is_refused_for_a_caller_who_may_not_resolve(
    broker: Broker,
) -> None:
    cred = broker.credentials.create(
        name="Stripe",
        type="api_key",
        config={"test_url": "https://api.example.com/v1/me"},
        secret={"api_key": "sk_live_destination_1"},
    )
    dev = _developer(broker)
    with pytest.raises(flowcred.AccessDenied) as caught:
        dev.credentials.update(cred.id, config={"test_url": "https://evil.example.net/"})
    message = str(caught.value)
    assert "config.test_url" in message
    assert "evil" not in message and "sk_live" not in message
    after = broker.credentials.get(cred.id)
    assert after.config["test_url"] == "https://api.example.com/v1/me"
    assert after.current_version == 1
    denied = broker.audit.list(AuditFilter(action="access_denied", result="denied"))
    assert len(denied) == 1
    assert "evil" not in str(denied[0].details) and "sk_live" not in str(denied[0].details)


def test_destination_change_with_the_secret_is_a_rotation_in_one_write(broker: Broker) -> None:
    cred = broker.credentials.create(
        name="DB",
        type="postgres",
        config={"host": "db.internal", "database": "app", "username": "svc"},
        secret={"password": "old-password-1"},
    )
    dev = _developer(broker)
    updated = dev.credentials.update(
        cred.id, config={"host": "db2.internal"}, secret={"password": "new-password-2"}
    )
    assert updated.config["host"] == "db2.internal"
    assert updated.current_version == 2
    assert broker.provider().get_password(cred.id) == "new-password-2"
    events = broker.audit.list(AuditFilter(action="updated", result="success"))
    assert len(events) == 1
    assert events[0].details["version"] == 2
    assert "secret" in events[0].details["changed"]


def test_other_changes_need_no_secret_and_resolvers_need_none(broker: Broker) -> None:
    cred = broker.credentials.create(
        name="OAuth",
        type="oauth2_client_credentials",
        config={"token_url": "https://auth.example.com/token", "client_id": "app"},
        secret={"client_secret": "cs-123456"},
    )
    dev = _developer(broker)
    # Not a destination: allowed without the secret.
    dev.credentials.update(cred.id, name="OAuth renamed", config={"scopes": "read write"})
    # Unchanged destination value: allowed.
    dev.credentials.update(cred.id, config={"token_url": "https://auth.example.com/token"})
    with pytest.raises(flowcred.AccessDenied):
        dev.credentials.update(cred.id, config={"token_url": "https://evil.example.net/token"})
    # The Python API's own actor (and any view that may resolve) changes it freely.
    record = broker.credentials.update(
        cred.id, config={"token_url": "https://auth2.example.com/token"}
    )
    assert record.config["token_url"] == "https://auth2.example.com/token"
    assert record.current_version == 1


def test_access_may_resolve_by_default() -> None:
    assert Access(Actor.os_user()).may_resolve is True
