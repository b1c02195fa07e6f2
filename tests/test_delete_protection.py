"""Issue 8, item 2: delete protection is the broker's rule, for every caller.

Before the fix only the REST route checked bindings; ``broker.credentials.delete()`` and
``flowcred credentials delete`` deleted a credential flows still used.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flowcred.audit.log import AuditFilter
from flowcred.broker import Broker
from flowcred.cli.main import app
from flowcred.errors import ConflictError, CredentialNotFound
from flowcred.store.bindings import BindingStore


def _raw_bindings(broker: Broker) -> BindingStore:
    """The SQL-only binding store, which writes without the broker's rules (as old rows were)."""
    store = getattr(broker, "_binding_store", None) or broker.bindings
    assert isinstance(store, BindingStore)
    return store


SECRET = {"api_key": "delete-protection-secret-01"}


def _bound(broker: Broker) -> int:
    cid = broker.credentials.create(name="Stripe", type="api_key", tenant="acme", secret=SECRET).id
    _raw_bindings(broker).put("flow-one", "acme", [cid])
    _raw_bindings(broker).put("flow-two", "acme", ["stripe"])
    return cid


def test_python_api_refuses_to_delete_a_bound_credential(broker: Broker) -> None:
    cid = _bound(broker)
    with pytest.raises(ConflictError) as caught:
        broker.credentials.delete(cid, tenant="acme")
    assert "flow-one" in str(caught.value) and "flow-two" in str(caught.value)
    assert getattr(caught.value, "flows", None) == ("flow-one", "flow-two")
    assert broker.credentials.get(cid).id == cid  # nothing deleted
    failed = broker.audit.list(AuditFilter(action="deleted", result="failure"))
    assert failed and failed[-1].details["error"] == "CredentialInUse"


def test_python_api_forced_delete_is_audited_with_the_flows(broker: Broker) -> None:
    cid = _bound(broker)
    broker.credentials.delete(cid, tenant="acme", force=True)
    with pytest.raises(CredentialNotFound):
        broker.credentials.get(cid)
    event = broker.audit.list(AuditFilter(action="deleted", result="success"))[-1]
    assert event.details["forced"] is True
    assert event.details["flows"] == ["flow-one", "flow-two"]


def test_bindings_of_another_tenant_do_not_protect(broker: Broker) -> None:
    cid = broker.credentials.create(name="Stripe", type="api_key", tenant="acme", secret=SECRET).id
    _raw_bindings(broker).put("globex-flow", "globex", [cid, "stripe"])
    deleted = broker.credentials.delete(cid, tenant="acme")
    assert deleted.id == cid
    event = broker.audit.list(AuditFilter(action="deleted", result="success"))[-1]
    assert "forced" not in event.details


def test_unbound_credential_deletes_without_force(broker: Broker) -> None:
    cid = broker.credentials.create(name="Free", type="api_key", secret=SECRET).id
    assert broker.credentials.delete(cid).id == cid


def test_cli_delete_refuses_then_forces(sqlite_broker: Broker) -> None:
    cid = _bound(sqlite_broker)
    sqlite_broker.close()
    runner = CliRunner()
    refused = runner.invoke(app, ["credentials", "delete", str(cid), "--tenant", "acme", "--yes"])
    assert refused.exit_code == 1
    assert "flow-one" in refused.stderr and "Traceback" not in refused.stderr
    forced = runner.invoke(
        app, ["credentials", "delete", str(cid), "--tenant", "acme", "--yes", "--force"]
    )
    assert forced.exit_code == 0, forced.stderr
    assert f"deleted credential {cid}" in forced.stdout
