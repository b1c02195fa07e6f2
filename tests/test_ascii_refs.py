"""Issue 8, item 5: only ASCII digits make an id, and bindings name credentials that exist.

``str.isdigit()`` accepts ``²``; ``int("²")`` then raises ``ValueError``. Before the fix a binding
holding ``"²"`` made every credential read and delete of its tenant answer 500, and
``flowcred resolve ²`` printed a traceback.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flowcred.broker import Broker
from flowcred.cli.main import app
from flowcred.errors import CredentialNotFound, InvalidCredential
from flowcred.store.bindings import BindingStore


def _raw_bindings(broker: Broker) -> BindingStore:
    """The SQL-only binding store, which writes without the broker's rules (as old rows were)."""
    store = getattr(broker, "_binding_store", None) or broker.bindings
    assert isinstance(store, BindingStore)
    return store


SECRET = {"api_key": "ascii-refs-secret-000001"}


def _create(broker: Broker, tenant: str = "acme", name: str = "Stripe") -> int:
    return broker.credentials.create(name=name, type="api_key", tenant=tenant, secret=SECRET).id


@pytest.mark.parametrize("text", ["²", "١٢", "٣", "1²", "①", "\U0001d7d9"])
def test_non_ascii_digits_are_not_id_text(text: str) -> None:
    from flowcred.references import is_id_text, parse_ref

    assert text.isdigit() or not text.isascii()
    assert not is_id_text(text)
    assert parse_ref(text) == text  # a handle (which names no credential)


def test_ascii_digits_parse_as_ids() -> None:
    from flowcred.references import parse_ref

    assert parse_ref("42") == 42 and parse_ref(7) == 7 and parse_ref("stripe") == "stripe"
    assert parse_ref("9" * 400) == 2**63  # past MAX_ID, never int() of huge text
    with pytest.raises(InvalidCredential):
        parse_ref(True)


def test_python_api_treats_superscript_as_unknown_handle(broker: Broker) -> None:
    _create(broker)
    with pytest.raises(CredentialNotFound):
        broker.credentials.get("²", tenant="acme")
    with pytest.raises(CredentialNotFound):
        broker.credentials.delete("²", tenant="acme")
    with pytest.raises(CredentialNotFound):
        broker.provider(tenant="acme").resolve("²")


def test_cli_resolve_superscript_is_one_clean_line() -> None:
    result = CliRunner().invoke(app, ["resolve", "²"])
    assert result.exit_code == 2, result.exception
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not found" in lines[0]


def test_bindings_refuse_unknown_references_naming_them(broker: Broker) -> None:
    cid = _create(broker)
    other = _create(broker, tenant="globex", name="Globex")
    with pytest.raises(InvalidCredential) as caught:
        broker.bindings.set("flow-a", [cid, "missing-handle", other, 999], tenant="acme")
    message = str(caught.value)
    assert "missing-handle" in message and str(other) in message and "999" in message
    assert broker.bindings.list() == []
    bound = broker.bindings.set("flow-a", [cid, "stripe", str(cid)], tenant="acme")
    assert bound.references == [cid, "stripe"]  # "1" and 1 are the same reference


def test_bindings_refuse_superscript_and_platform_tenant(broker: Broker) -> None:
    _create(broker)
    with pytest.raises(InvalidCredential, match="references"):
        broker.bindings.set("flow-a", ["²"], tenant="acme")
    with pytest.raises(InvalidCredential, match="tenantId"):
        broker.bindings.set("flow-a", [], tenant="*")


def test_a_stored_superscript_binding_never_breaks_reads_or_deletes(broker: Broker) -> None:
    """A row written before the fix (through the store, bypassing the rules) matches nothing."""
    cid = _create(broker)
    _raw_bindings(broker).put("old-flow", "acme", ["²", "\u0661"])
    assert broker.bindings.connections([broker.credentials.get(cid)]) == {cid: 0}
    assert broker.credentials.delete(cid, tenant="acme").id == cid
