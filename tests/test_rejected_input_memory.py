"""Rejected input is not kept in memory, and cannot unmask the secrets of stored credentials.

Issue 8 item 4: every received secret used to be registered for log redaction before it was
validated, in a registry bounded by count only. These tests drive the broker (the layer every
caller meets) with a registry of their own, so they can read its byte accounting; the REST
counterpart is ``tests/api/test_rejected_input_memory.py``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import flowcred.broker
from flowcred.broker import Broker, open_broker
from flowcred.catalog import CredentialType, default_catalog
from flowcred.catalog.secret_shape import (
    MAX_SECRET_BYTES,
    MAX_SECRET_VALUE_BYTES,
    check_secret_shape,
)
from flowcred.errors import InvalidCredential, UnknownCredentialType
from flowcred.redaction import (
    REDACTED,
    SecretRegistry,
    default_registry,
    install_log_redaction,
)
from flowcred.settings import load_settings

OpenBroker = Callable[..., tuple[Broker, SecretRegistry]]


@pytest.fixture
def open_with_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[OpenBroker]:
    """Open brokers on one SQLite home, each with a fresh registry (a process of its own).

    ``open_broker`` takes the process-wide registry; here it is swapped for the test's, and the
    process-wide one is installed for log redaction again afterwards.
    """
    opened: list[Broker] = []

    def make(**registry_kw: Any) -> tuple[Broker, SecretRegistry]:
        registry = SecretRegistry(**registry_kw)
        monkeypatch.setattr(flowcred.broker, "default_registry", lambda: registry)
        broker = open_broker(settings=load_settings(home=tmp_path / "home"))
        opened.append(broker)
        return broker, registry

    try:
        yield make
    finally:
        for broker in opened:
            broker.close()
        install_log_redaction(default_registry())


def _logged(text: str) -> str:
    """What a handler writes for ``log.warning("%s", text)`` with the installed redaction."""
    logger = logging.getLogger("flowcred.test.rejected_input")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("line: %s", text)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def _oversized(i: int) -> str:
    """A distinct secret just over the per-value limit (a "64 KB secret")."""
    head = f"oversized-{i:05d}-"
    return head + "k" * (MAX_SECRET_VALUE_BYTES + 1 - len(head))


# --- (a) rejected input is refused before it is registered ---------------------------------------


def test_150_rejected_creates_with_a_64k_secret_register_nothing(
    open_with_registry: OpenBroker,
) -> None:
    broker, registry = open_with_registry()
    before = registry.nbytes
    for i in range(150):
        with pytest.raises(InvalidCredential) as info:
            broker.credentials.create(
                name=f"big {i}", type="api_key", secret={"api_key": _oversized(i)}
            )
        assert ("api_key", "must be at most 64 KiB") in [
            (p.field, p.message) for p in info.value.problems
        ]
    assert registry.nbytes == before
    assert not any(registry.contains_secret(_oversized(i)) for i in (0, 75, 149))
    # The Flow Studio form (secretValue) is held to the same limit, before it is parsed.
    with pytest.raises(InvalidCredential):
        broker.credentials.create(name="big sv", type="api_key", secret_value=_oversized(150))
    assert registry.nbytes == before


def test_two_creates_with_40000_values_register_nothing(open_with_registry: OpenBroker) -> None:
    broker, registry = open_with_registry()
    before = registry.nbytes
    for round_ in range(2):
        secret = {f"sk_live_{round_}_{i:06d}": f"value-{round_}-{i:06d}" for i in range(40_000)}
        with pytest.raises(InvalidCredential) as info:
            broker.credentials.create(name=f"wide {round_}", type="api_key", secret=secret)
        # One problem for the lot, naming neither the keys nor the values.
        problems = info.value.problems
        assert [p.field for p in problems] == ["secret"]
        assert "sk_live_" not in str(info.value) and "value-" not in str(info.value)
    assert registry.nbytes == before
    assert not registry.contains_secret("value-0-000000")
    assert not registry.contains_secret("value-1-039999")


def test_shape_check_rejects_a_wide_secret_without_reading_it() -> None:
    """The count is checked on len() alone: no key or value of a 40,000-key body is visited."""

    class Untouchable(dict[str, str]):
        def __iter__(self) -> Any:
            raise AssertionError("keys were read")

        def items(self) -> Any:
            raise AssertionError("items were read")

        def values(self) -> Any:
            raise AssertionError("values were read")

        def keys(self) -> Any:
            raise AssertionError("keys were read")

    wide = Untouchable({f"k{i}": "v" for i in range(40_000)})
    payload, problems = check_secret_shape(default_catalog().get("api_key"), wide, None)
    assert payload is None and [p.field for p in problems] == ["secret"]


def test_unknown_type_create_registers_nothing(open_with_registry: OpenBroker) -> None:
    broker, registry = open_with_registry()
    value = "unknown-type-secret-value-0001"
    with pytest.raises(UnknownCredentialType):
        broker.credentials.create(name="x", type="no_such_type", secret_value=value)
    with pytest.raises(UnknownCredentialType):
        broker.credentials.create(name="x", type="no_such_type", secret={"api_key": value})
    assert registry.nbytes == 0
    assert not registry.contains_secret(value)


def test_unknown_secret_field_name_is_not_echoed_nor_registered(
    open_with_registry: OpenBroker,
) -> None:
    broker, registry = open_with_registry()
    pasted = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
    value = "value-under-a-pasted-key-0001"
    with pytest.raises(InvalidCredential) as info:
        broker.credentials.create(
            name="pasted", type="api_key", secret={"api_key": "the-real-key-0001", pasted: value}
        )
    assert pasted not in str(info.value.problems) and value not in str(info.value.problems)
    assert not registry.contains_secret(value)
    assert not registry.contains_secret("the-real-key-0001")
    # The shape check words it exactly as the type's own validation does.
    ctype = default_catalog().get("api_key")
    _, problems = check_secret_shape(ctype, {pasted: value}, None)
    with pytest.raises(InvalidCredential) as schema_info:
        ctype.validate_secret({pasted: value})
    assert problems[0] in schema_info.value.problems


def test_config_field_in_the_secret_is_named_and_nothing_registered(
    open_with_registry: OpenBroker,
) -> None:
    broker, registry = open_with_registry()
    with pytest.raises(InvalidCredential) as info:
        broker.credentials.create(
            name="mixed", type="api_key", secret={"api_key": "key-value-0001", "prefix": "Bearer "}
        )
    assert ("prefix", "is not a secret field; pass it in config") in [
        (p.field, p.message) for p in info.value.problems
    ]
    assert registry.nbytes == 0


def test_request_limit_covers_all_fields_together() -> None:
    names = [f"part{i}" for i in range(5)]
    ctype = CredentialType.model_validate(
        {
            "name": "five_parts",
            "title": "Five parts",
            "family": "custom",
            "description": "A type with five secret fields.",
            "fields": [{"name": name, "secret": True} for name in names],
        }
    )
    # Each value is within the per-value limit; together they are over the per-request one.
    big = dict.fromkeys(names, "s" * MAX_SECRET_VALUE_BYTES)
    payload, problems = check_secret_shape(ctype, big, None)
    assert payload is None
    assert [(p.field, p.message) for p in problems] == [
        ("secret", "must be at most 256 KiB in all")
    ]
    # A composite secretValue is the whole secret: the per-request limit, before parsing.
    _, problems = check_secret_shape(ctype, None, "{" + " " * MAX_SECRET_BYTES + "}")
    assert [(p.field, p.message) for p in problems] == [("secretValue", "must be at most 256 KiB")]


def test_rotate_with_an_oversized_secret_registers_nothing(open_with_registry: OpenBroker) -> None:
    broker, registry = open_with_registry()
    cred = broker.credentials.create(name="r", type="api_key", secret={"api_key": "first-key-0001"})
    before = registry.nbytes
    with pytest.raises(InvalidCredential):
        broker.credentials.rotate(cred.id, secret={"api_key": _oversized(1)})
    assert registry.nbytes == before
    assert not registry.contains_secret(_oversized(1))


# --- (b) a flood never unmasks a stored credential's secret ----------------------------------


def _flood(broker: Broker) -> None:
    """600 creates whose secret has a valid shape but whose config is wrong (so: rejected after
    registration, as transient input), plus the 40,000-value body."""
    for i in range(600):
        with pytest.raises(InvalidCredential):
            broker.credentials.create(
                name=f"flood {i}",
                type="api_key",
                config={"location": "nowhere"},
                secret={"api_key": f"flood-value-{i:06d}-" + "f" * 40},
            )
    with pytest.raises(InvalidCredential):
        broker.credentials.create(
            name="wide", type="api_key", secret={f"k{i}": f"v-{i:08d}" for i in range(40_000)}
        )


def test_flood_of_rejected_creates_does_not_unmask_a_stored_secret(
    open_with_registry: OpenBroker,
) -> None:
    # A count bound the old registry also had: 600 rejected values (about 5 forms each) are far
    # beyond it, so a single eviction order would drop the stored secret.
    broker, registry = open_with_registry(max_entries=2_000)
    stored = "stored-credential-secret-0001"
    broker.credentials.create(name="stored", type="api_key", secret={"api_key": stored})
    _flood(broker)
    assert _logged(f"token={stored}") == f"line: token={REDACTED}\n"
    assert registry.redact(f"x {stored} x") == f"x {REDACTED} x"


def test_secret_resolved_in_another_process_survives_a_flood(
    open_with_registry: OpenBroker,
) -> None:
    creator, _ = open_with_registry()
    stored = "stored-by-another-process-0001"
    cred = creator.credentials.create(name="other", type="api_key", secret={"api_key": stored})
    # A second process (its own registry) knows the secret only once it resolves it.
    server, registry = open_with_registry(max_entries=2_000)
    assert not registry.contains_secret(stored)
    assert server.provider().get_password(cred.id) == stored
    _flood(server)
    assert _logged(f"token={stored}") == f"line: token={REDACTED}\n"


def test_meaning_rejected_secrets_stay_within_the_transient_budget(
    open_with_registry: OpenBroker,
) -> None:
    broker, registry = open_with_registry(max_transient_bytes=2_000_000)
    stored = "stored-credential-secret-0002"
    broker.credentials.create(name="stored", type="api_key", secret={"api_key": stored})
    pinned = registry.pinned_bytes
    for i in range(150):
        with pytest.raises(InvalidCredential):
            broker.credentials.create(
                name=f"bad config {i}",
                type="api_key",
                config={"location": "nowhere"},
                secret={"api_key": f"{i:05d}" + "m" * 64_000},
            )
        assert registry.transient_bytes <= 2_000_000
    assert registry.pinned_bytes == pinned
    assert registry.redact(stored) == REDACTED


# --- (c) the byte bound holds under a flood of valid registrations ---------------------------


def test_byte_bound_holds_under_a_flood_of_valid_creates(open_with_registry: OpenBroker) -> None:
    broker, registry = open_with_registry(max_pinned_bytes=300_000, max_transient_bytes=300_000)
    for i in range(300):
        broker.credentials.create(
            name=f"valid {i}", type="api_key", secret={"api_key": f"valid-{i:05d}-" + "v" * 2_000}
        )
        assert registry.pinned_bytes <= 300_000
        assert registry.transient_bytes <= 300_000
    assert registry.nbytes <= 600_000
    # The newest stored secrets are the ones kept.
    assert registry.redact(f"valid-{299:05d}-" + "v" * 2_000) == REDACTED


def test_stored_secret_is_pinned_on_create_and_rotate(open_with_registry: OpenBroker) -> None:
    broker, registry = open_with_registry()
    cred = broker.credentials.create(name="p", type="api_key", secret={"api_key": "pinned-0001"})
    assert registry.pinned_bytes > 0 and registry.transient_bytes == 0
    level = registry.pinned_bytes
    broker.credentials.rotate(cred.id, secret={"api_key": "pinned-0002"})
    assert registry.pinned_bytes > level and registry.transient_bytes == 0


def test_a_type_without_secret_refuses_any_secret_field() -> None:
    ctype = default_catalog().get("no_auth")
    payload, problems = check_secret_shape(ctype, {"sk_live_pasted_key_0001": "value"}, None)
    assert payload is None
    assert [(p.field, p.message) for p in problems] == [
        ("secret", "must be empty: no_auth has no secret")
    ]
    assert check_secret_shape(ctype, {}, None) == ({}, [])
