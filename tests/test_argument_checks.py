"""Item 9 (Python API): wrongly typed arguments raise InvalidCredential naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from flowcred.broker import Broker
from flowcred.errors import InvalidCredential


def _create(broker: Broker, **overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "name": "Stripe",
        "type": "api_key",
        "secret": {"api_key": "sk_test_argcheck_000001"},
    }
    kwargs.update(overrides)
    return broker.credentials.create(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": 5}, "name"),
        ({"type": 7}, "type"),
        ({"secret": "sk_test_plain_string_0001"}, "secret"),
        ({"config": ["base_url", "x"]}, "config"),
        ({"tenant": 3}, "tenant"),
        ({"environment": None}, "environment"),
        ({"secret": None, "secret_value": 12345}, "secret_value"),
        ({"expires_at": "tomorrow"}, "expires_at"),
    ],
)
def test_create_with_wrong_types_raises_invalid_credential(
    sqlite_broker: Broker, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidCredential) as info:
        _create(sqlite_broker, **overrides)
    assert field in {p.field for p in info.value.problems}
    assert "sk_test_plain_string_0001" not in str(info.value)
    assert sqlite_broker.credentials.list() == []


def test_rollback_version_must_be_an_int_not_bool_or_str(sqlite_broker: Broker) -> None:
    record = _create(sqlite_broker)
    for version in (True, "1", 1.0):
        with pytest.raises(InvalidCredential) as info:
            sqlite_broker.credentials.rollback(record.id, version)  # type: ignore[arg-type]
        assert [p.field for p in info.value.problems] == ["version"]


def test_other_methods_check_their_arguments(sqlite_broker: Broker) -> None:
    record = _create(sqlite_broker)
    calls = [
        (lambda: sqlite_broker.credentials.get(1.5), "ref"),  # type: ignore[arg-type]
        (lambda: sqlite_broker.credentials.get(True), "ref"),  # type: ignore[arg-type]
        (lambda: sqlite_broker.credentials.update(record.id, config=[1]), "config"),  # type: ignore[arg-type]
        (lambda: sqlite_broker.credentials.update(record.id, name=5), "name"),  # type: ignore[arg-type]
        (lambda: sqlite_broker.credentials.rotate(record.id, secret="x"), "secret"),  # type: ignore[arg-type]
        (
            lambda: sqlite_broker.credentials.rotate(
                record.id,
                secret={"api_key": "sk_test_argcheck_000002"},
                expected_version=True,  # type: ignore[arg-type]
            ),
            "expected_version",
        ),
        (lambda: sqlite_broker.credentials.list(limit="5"), "limit"),  # type: ignore[arg-type]
        (lambda: sqlite_broker.credentials.delete(record.id, tenant=1), "tenant"),  # type: ignore[arg-type]
        (lambda: sqlite_broker.credentials.versions([record.id]), "ref"),  # type: ignore[arg-type]
    ]
    for call, field in calls:
        with pytest.raises(InvalidCredential) as info:
            call()
        assert field in {p.field for p in info.value.problems}
    # Nothing changed, and well-typed calls (defaults included) still work.
    assert sqlite_broker.credentials.get(record.id).current_version == 1
    sqlite_broker.credentials.update(record.id, name="Stripe live")
