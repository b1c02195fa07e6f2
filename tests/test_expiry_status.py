"""Statuses that stay true: a static secret past its ``expires_at`` reads as expired, one within
the window (FLOWCRED_EXPIRING_SOON_DAYS, default 7) as expiring soon -- in the broker, the REST
API and the CLI, on SQLite and PostgreSQL, with time moved by a ManualClock."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.cli._helpers import cli

from flowcred.api.app import create_app
from flowcred.broker import Broker, open_broker
from flowcred.clock import ManualClock
from flowcred.errors import InvalidCredential
from flowcred.records import Credential
from flowcred.settings import load_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DAY = 86400.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


def clocked_broker(
    tmp_path: Path, database_url: str, clock: ManualClock, **settings: Any
) -> Broker:
    return open_broker(
        settings=load_settings(home=tmp_path / "home", database_url=database_url, **settings),
        clock=clock,
    )


@pytest.fixture
def timed(tmp_path: Path, database_url: str, clock: ManualClock) -> Iterator[Broker]:
    broker = clocked_broker(tmp_path, database_url, clock)
    try:
        yield broker
    finally:
        broker.close()


def add(broker: Broker, name: str, expires_in_days: float | None) -> Credential:
    expires = None
    if expires_in_days is not None:
        expires = broker.clock.now() + timedelta(days=expires_in_days)
    return broker.credentials.create(
        name=name,
        type="api_key",
        tenant="acme",
        secret={"api_key": f"k-{name}"},
        expires_at=expires,
    )


def statuses(broker: Broker, **filters: Any) -> dict[str, tuple[str, bool]]:
    return {c.name: (c.status, c.expiring_soon) for c in broker.credentials.list(**filters)}


def test_status_follows_the_clock_through_expiring_soon_to_expired(
    timed: Broker, clock: ManualClock
) -> None:
    cred = add(timed, "soon", 10)
    add(timed, "forever", None)
    assert (cred.status, cred.expiring_soon) == ("active", False)
    clock.advance(3 * DAY + 1)  # 7 days minus a second left: inside the window
    assert (
        timed.credentials.get(cred.id).status,
        timed.credentials.get(cred.id).expiring_soon,
    ) == (
        "active",
        True,
    )
    assert statuses(timed, status="expiring_soon") == {"soon": ("active", True)}
    assert set(statuses(timed, status="active")) == {"soon", "forever"}
    clock.advance(7 * DAY)
    record, _ = timed.credentials.describe(cred.id)
    assert (record.status, record.expiring_soon) == ("expired", False)
    assert statuses(timed, status="expired") == {"soon": ("expired", False)}
    assert statuses(timed, status="expiring_soon") == {}
    assert set(statuses(timed, status="active")) == {"forever"}


def test_expiry_wins_over_a_stored_error_status(timed: Broker, clock: ManualClock) -> None:
    cred = add(timed, "failing", 2)
    timed._store.update(cred.id, status="error")  # as a failed connection test leaves it
    assert statuses(timed) == {"failing": ("error", True)}
    assert statuses(timed, status="error") == {"failing": ("error", True)}
    clock.advance(2 * DAY)
    assert statuses(timed) == {"failing": ("expired", False)}


def test_the_window_is_a_setting(tmp_path: Path, database_url: str, clock: ManualClock) -> None:
    with clocked_broker(tmp_path, database_url, clock, expiring_soon_days=30) as wide:
        add(wide, "in 20 days", 20)
        assert statuses(wide, status="expiring_soon") == {"in 20 days": ("active", True)}
    with clocked_broker(tmp_path, database_url, clock, expiring_soon_days=0) as off:
        add(off, "in 1 hour", 1 / 24)
        assert statuses(off, status="expiring_soon") == {}


def test_the_window_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWCRED_EXPIRING_SOON_DAYS", "14")
    assert load_settings().expiring_soon_days == 14
    monkeypatch.delenv("FLOWCRED_EXPIRING_SOON_DAYS")
    assert load_settings().expiring_soon_days == 7


def test_an_unknown_status_filter_is_refused_naming_the_choices(timed: Broker) -> None:
    with pytest.raises(InvalidCredential, match="expiring_soon"):
        timed.credentials.list(status="expiring")


def test_api_shows_expiring_soon_and_filters_by_status(
    tmp_path: Path, database_url: str, clock: ManualClock
) -> None:
    broker = clocked_broker(tmp_path, database_url, clock)
    try:
        _, key = broker.api_keys.create(role="admin", tenant="*", name="admin")
        soon, later, gone = add(broker, "soon", 3), add(broker, "later", 60), add(broker, "gone", 1)
        clock.advance(1 * DAY)
        with TestClient(create_app(broker.settings, broker=broker)) as client:
            headers = {"X-API-Key": key}

            def names(status: str | None = None) -> dict[str, tuple[str, bool]]:
                params = {} if status is None else {"status": status}
                answer = client.get("/api/credentials", params=params, headers=headers)
                assert answer.status_code == 200, answer.text
                return {c["name"]: (c["status"], c["expiringSoon"]) for c in answer.json()["items"]}

            assert names() == {
                "soon": ("active", True),
                "later": ("active", False),
                "gone": ("expired", False),
            }
            assert names("expiring_soon") == {"soon": ("active", True)}
            assert set(names("active")) == {"soon", "later"}
            assert set(names("expired")) == {"gone"}
            assert names("error") == {}
            one = client.get(f"/api/credentials/{soon.id}", headers=headers).json()
            assert (one["status"], one["expiringSoon"]) == ("active", True)
            assert client.get(f"/api/credentials/{gone.id}", headers=headers).json()["status"] == (
                "expired"
            )
            refused = client.get("/api/credentials", params={"status": "bogus"}, headers=headers)
            assert refused.status_code == 422
        assert later.expiring_soon is False
    finally:
        broker.close()


def test_cli_list_marks_expiring_soon_and_filters(tmp_path: Path) -> None:
    # The CLI runs on the real clock: an expiry 3 days out is inside the default window, and a
    # past expiry is written straight to the store, as it stands once the time has passed.
    with open_broker() as broker:
        soon = add(broker, "soon-one", 3)
        add(broker, "later-one", 60)
        gone = add(broker, "gone-one", 60)
        broker._store.update(gone.id, expires_at=broker.clock.now() - timedelta(minutes=1))
    code, out, err = cli("credentials", "list", "--status", "expiring_soon", "--json")
    assert code == 0, err
    assert [(c["name"], c["expiringSoon"]) for c in json.loads(out)] == [("soon-one", True)]
    code, out, _ = cli("credentials", "list", "--status", "expired", "--json")
    assert [c["name"] for c in json.loads(out)] == ["gone-one"]
    code, out, _ = cli("credentials", "list")
    assert code == 0
    marked = [line for line in out.splitlines() if "(expiring soon)" in line]
    assert len(marked) == 1 and "soon-one" in marked[0]
    code, out, _ = cli("credentials", "show", str(soon.id))
    assert "active (expiring soon)" in out
    code, _, err = cli("credentials", "list", "--status", "bogus")
    assert code != 0 and "expiring_soon" in err
