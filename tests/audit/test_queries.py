"""Audit queries: every filter, pagination and export return exactly the expected events.

A store is driven through a known script of operations under a manual clock (one minute per
step), so every event's type, action, result, actor, tenant, resource, execution id and time is
known in advance. Each filter is compared against that independent expectation -- not against
another query -- on SQLite and PostgreSQL, through ``AuditLog.list`` and ``flowcred audit list
--json``; exports are checked to round-trip to the same events.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flowcred.audit import Actor, AuditFilter
from flowcred.broker import Broker, open_broker
from flowcred.cli.main import app
from flowcred.clock import ManualClock
from flowcred.errors import CredentialNotFound, InvalidCredential, VersionConflict
from flowcred.settings import load_settings

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=1)
ME = Actor.os_user()
CI = Actor("api_key", "key-7", "ci key")
RUNNER = Actor("service", "flow-runner", "Flow Runner")


@dataclass(frozen=True)
class Expected:
    id: int
    event_type: str
    action: str
    result: str
    actor: str
    tenant: str | None
    resource_id: str | None
    execution_id: str | None

    @property
    def at(self) -> datetime:
        return START + (self.id - 1) * STEP


@dataclass
class Scripted:
    broker: Broker
    url: str
    expected: list[Expected]

    def ids(self, keep: Callable[[Expected], bool]) -> list[int]:
        return [e.id for e in self.expected if keep(e)]


@pytest.fixture
def scripted(database_url: str, tmp_path: Path) -> Iterator[Scripted]:
    clock = ManualClock(START)
    settings = load_settings(home=tmp_path / "home", database_url=database_url)
    broker = open_broker(settings=settings, clock=clock)
    try:
        yield Scripted(broker, database_url, drive(broker, clock))
    finally:
        broker.close()


def drive(broker: Broker, clock: ManualClock) -> list[Expected]:
    """One event per step, one minute apart; returns what each event must say."""
    ci = broker.acting_as(CI, source="10.1.2.3")
    runner = broker.acting_as(RUNNER, source="10.0.0.9")
    out: list[Expected] = []

    def step(
        call: Callable[[], Any],
        event_type: str,
        action: str,
        result: str,
        actor: Actor,
        tenant: str | None,
        resource: object,
        execution: str | None = None,
        raises: type[BaseException] | None = None,
    ) -> Any:
        value: Any = None
        if raises is None:
            value = call()
        else:
            with pytest.raises(raises):
                call()
        n = len(out) + 1
        rid = None if resource is None else str(resource)
        out.append(Expected(n, event_type, action, result, actor.id, tenant, rid, execution))
        clock.advance(STEP.total_seconds())
        return value

    c = "credential"
    a = step(
        lambda: broker.credentials.create(
            name="acme a", type="api_key", tenant="acme", secret_value="sk_acme_a_0123456789"
        ),
        c,
        "created",
        "success",
        ME,
        "acme",
        1,
    )
    g = step(
        lambda: ci.credentials.create(
            name="globex g", type="api_key", tenant="globex", secret_value="sk_globex_0123456789"
        ),
        c,
        "created",
        "success",
        CI,
        "globex",
        2,
    )
    assert (a.id, g.id) == (1, 2)
    acme = runner.provider(tenant="acme")
    step(
        lambda: acme.resolve(1, execution_id="run-1"),
        c,
        "resolved",
        "success",
        RUNNER,
        "acme",
        1,
        "run-1",
    )
    step(
        lambda: acme.get_password(1, execution_id="run-2"),
        c,
        "password_read",
        "success",
        RUNNER,
        "acme",
        1,
        "run-2",
    )
    step(
        lambda: acme.resolve("missing", execution_id="run-3"),
        c,
        "resolved",
        "failure",
        RUNNER,
        "acme",
        "missing",
        "run-3",
        raises=CredentialNotFound,
    )
    step(
        lambda: acme.resolve(2, execution_id="run-4"),
        c,
        "access_denied",
        "denied",
        RUNNER,
        "acme",
        2,
        "run-4",
        raises=CredentialNotFound,
    )
    step(
        lambda: ci.credentials.rotate(1, secret_value="sk_acme_a_rotated_01"),
        c,
        "rotated",
        "success",
        CI,
        "acme",
        1,
    )
    step(
        lambda: ci.credentials.rotate(1, secret_value="sk_acme_stale_0001", expected_version=1),
        c,
        "rotated",
        "failure",
        CI,
        None,
        1,
        raises=VersionConflict,
    )
    step(
        lambda: broker.credentials.list(tenant="globex"), c, "listed", "success", ME, "globex", None
    )
    step(lambda: broker.rotate_keys(), "kek", "rotated", "success", ME, None, 2)
    step(
        lambda: runner.provider(tenant="globex").resolve(2, execution_id="run-1"),
        c,
        "resolved",
        "success",
        RUNNER,
        "globex",
        2,
        "run-1",
    )
    step(lambda: broker.credentials.get(1, tenant="acme"), c, "viewed", "success", ME, "acme", 1)
    step(
        lambda: ci.credentials.delete(2, tenant="globex"), c, "deleted", "success", CI, "globex", 2
    )
    return out


def as_expected(event: Any) -> Expected:
    return Expected(
        event.id,
        event.event_type,
        event.action,
        event.result,
        event.actor.id,
        event.tenant,
        event.resource_id,
        event.execution_id,
    )


def test_the_script_produced_the_expected_chain(scripted: Scripted) -> None:
    events = scripted.broker.audit.list(limit=1000)
    assert [as_expected(e) for e in events] == scripted.expected
    assert [e.created_at for e in events] == [x.at for x in scripted.expected]
    assert scripted.broker.audit.verify().total_checked == len(scripted.expected)


# (name, filter, which expected events match) -- the predicate is the independent oracle.
FILTERS: list[tuple[str, AuditFilter, Callable[[Expected], bool]]] = [
    ("event_type kek", AuditFilter(event_type="kek"), lambda e: e.event_type == "kek"),
    ("action rotated", AuditFilter(action="rotated"), lambda e: e.action == "rotated"),
    (
        "credential rotated",
        AuditFilter(event_type="credential", action="rotated"),
        lambda e: e.event_type == "credential" and e.action == "rotated",
    ),
    ("result failure", AuditFilter(result="failure"), lambda e: e.result == "failure"),
    ("result denied", AuditFilter(result="denied"), lambda e: e.result == "denied"),
    ("resource 1 (int)", AuditFilter(resource_id=1), lambda e: e.resource_id == "1"),
    ("resource 2 (str)", AuditFilter(resource_id="2"), lambda e: e.resource_id == "2"),
    ("resource handle", AuditFilter(resource_id="missing"), lambda e: e.resource_id == "missing"),
    ("actor ci", AuditFilter(actor="key-7"), lambda e: e.actor == "key-7"),
    ("actor runner", AuditFilter(actor="flow-runner"), lambda e: e.actor == "flow-runner"),
    ("actor me", AuditFilter(actor=ME.id), lambda e: e.actor == ME.id),
    ("tenant acme", AuditFilter(tenant="acme"), lambda e: e.tenant == "acme"),
    ("tenant globex", AuditFilter(tenant="globex"), lambda e: e.tenant == "globex"),
    ("execution run-1", AuditFilter(execution_id="run-1"), lambda e: e.execution_id == "run-1"),
    ("since step 5", AuditFilter(since=START + 4 * STEP), lambda e: e.id >= 5),
    ("until step 3", AuditFilter(until=START + 2 * STEP), lambda e: e.id <= 3),
    (
        "since 4 until 9",
        AuditFilter(since=START + 3 * STEP, until=START + 8 * STEP),
        lambda e: 4 <= e.id <= 9,
    ),
    (
        "since between steps",
        AuditFilter(since=START + 3 * STEP + timedelta(microseconds=1)),
        lambda e: e.id >= 5,
    ),
    (
        "since in another zone",
        AuditFilter(since=(START + 9 * STEP).astimezone(timezone(timedelta(hours=-5)))),
        lambda e: e.id >= 10,
    ),
    (
        "tenant acme failures by runner",
        AuditFilter(tenant="acme", result="failure", actor="flow-runner"),
        lambda e: e.tenant == "acme" and e.result == "failure" and e.actor == "flow-runner",
    ),
    ("no match", AuditFilter(tenant="nobody"), lambda e: False),
    ("unknown action", AuditFilter(action="exploded"), lambda e: False),
]


@pytest.mark.parametrize(("name", "flt", "keep"), FILTERS, ids=[f[0] for f in FILTERS])
def test_filter(
    scripted: Scripted, name: str, flt: AuditFilter, keep: Callable[[Expected], bool]
) -> None:
    expected = scripted.ids(keep)
    got = [e.id for e in scripted.broker.audit.list(flt, limit=1000)]
    assert got == expected, name
    newest = [e.id for e in scripted.broker.audit.list(flt, limit=1000, newest_first=True)]
    assert newest == expected[::-1], name
    exported = io.StringIO()
    assert scripted.broker.audit.export_jsonl(exported, flt) == len(expected)
    assert [json.loads(line)["id"] for line in exported.getvalue().splitlines()] == expected


def test_filters_that_select_a_few_are_not_vacuous(scripted: Scripted) -> None:
    """Each filter's oracle selects a proper, non-empty subset where it should (so a filter
    that ignores its argument and returns everything, or nothing, fails above)."""
    total = len(scripted.expected)
    for name, _flt, keep in FILTERS:
        n = len(scripted.ids(keep))
        if name in ("no match", "unknown action"):
            assert n == 0
        else:
            assert 0 < n < total, name


def test_pagination_oldest_first(scripted: Scripted) -> None:
    log = scripted.broker.audit
    all_ids = scripted.ids(lambda e: True)
    for size in (1, 2, 5):
        seen: list[int] = []
        after: int | None = None
        for _ in range(len(all_ids) + 2):
            page = log.list(after_id=after, limit=size)
            assert len(page) <= size
            seen.extend(e.id for e in page)
            if len(page) < size:
                break
            after = page[-1].id
        assert seen == all_ids, size
    assert [e.id for e in log.list(after_id=4, limit=3)] == [5, 6, 7]
    assert log.list(after_id=len(all_ids), limit=10) == []
    # Pagination within a filter: acme events after the 3rd one.
    acme = scripted.ids(lambda e: e.tenant == "acme")
    page = log.list(AuditFilter(tenant="acme"), after_id=acme[2], limit=2)
    assert [e.id for e in page] == acme[3:5]


def test_pagination_newest_first(scripted: Scripted) -> None:
    log = scripted.broker.audit
    all_ids = scripted.ids(lambda e: True)
    assert [e.id for e in log.list(limit=3, newest_first=True)] == all_ids[::-1][:3]
    # Newest first, after_id means "older than": page backwards through the chain.
    seen: list[int] = []
    before: int | None = None
    for _ in range(len(all_ids) + 2):
        page = log.list(after_id=before, limit=4, newest_first=True)
        seen.extend(e.id for e in page)
        if len(page) < 4:
            break
        before = page[-1].id
    assert seen == all_ids[::-1]
    runner = scripted.ids(lambda e: e.actor == "flow-runner")
    page = log.list(AuditFilter(actor="flow-runner"), after_id=runner[-1], newest_first=True)
    assert [e.id for e in page] == runner[:-1][::-1]


@pytest.mark.parametrize("limit", [0, -1, 1001, 10_000])
def test_limit_outside_1_to_1000_is_refused(scripted: Scripted, limit: int) -> None:
    with pytest.raises(InvalidCredential) as info:
        scripted.broker.audit.list(limit=limit)
    assert [p.field for p in info.value.problems] == ["limit"]


def test_limit_bounds_are_accepted(scripted: Scripted) -> None:
    assert len(scripted.broker.audit.list(limit=1)) == 1
    assert len(scripted.broker.audit.list(limit=1000)) == len(scripted.expected)


# -- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli(scripted: Scripted, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    monkeypatch.setenv("FLOWCRED_DATABASE_URL", scripted.url)
    runner = CliRunner()

    def run(args: list[str], code: int = 0) -> Any:
        result = runner.invoke(app, args)
        assert result.exit_code == code, (args, result.exit_code, result.output)
        return result

    return run


def iso(value: datetime) -> str:
    return value.isoformat()


CLI_FILTERS: list[tuple[list[str], Callable[[Expected], bool]]] = [
    (["--event-type", "kek"], lambda e: e.event_type == "kek"),
    (["--action", "rotated"], lambda e: e.action == "rotated"),
    (["--result", "denied"], lambda e: e.result == "denied"),
    (["--resource-id", "1"], lambda e: e.resource_id == "1"),
    (["--actor", "key-7"], lambda e: e.actor == "key-7"),
    (["--tenant", "globex"], lambda e: e.tenant == "globex"),
    (["--execution-id", "run-1"], lambda e: e.execution_id == "run-1"),
    (["--since", iso(START + 4 * STEP)], lambda e: e.id >= 5),
    (["--until", "2026-03-01T12:02:00"], lambda e: e.id <= 3),  # naive: UTC
    (["--since", "2026-03-01T07:05:00-05:00"], lambda e: e.id >= 6),
    (
        ["--tenant", "acme", "--result", "success", "--actor", "flow-runner"],
        lambda e: e.tenant == "acme" and e.result == "success" and e.actor == "flow-runner",
    ),
    (["--action", "rotated", "--after", "7"], lambda e: e.action == "rotated" and e.id > 7),
]


@pytest.mark.parametrize(("args", "keep"), CLI_FILTERS, ids=[" ".join(a) for a, _ in CLI_FILTERS])
def test_cli_audit_list_filters(
    scripted: Scripted, cli: Callable[..., Any], args: list[str], keep: Callable[[Expected], bool]
) -> None:
    out = cli(["audit", "list", "--json", *args]).stdout
    data = json.loads(out)
    assert [d["id"] for d in data] == scripted.ids(keep)
    for d in data:
        assert as_expected_dict(d) == scripted.expected[d["id"] - 1]


def as_expected_dict(d: dict[str, Any]) -> Expected:
    return Expected(
        d["id"],
        d["eventType"],
        d["action"],
        d["result"],
        d["actor"]["id"],
        d["tenant"],
        d["resourceId"],
        d["executionId"],
    )


def test_cli_audit_list_limit_and_bad_input(scripted: Scripted, cli: Callable[..., Any]) -> None:
    data = json.loads(cli(["audit", "list", "--json", "--limit", "2", "--after", "3"]).stdout)
    assert [d["id"] for d in data] == [4, 5]
    cli(["audit", "list", "--json", "--limit", "0"], code=2)
    cli(["audit", "list", "--json", "--limit", "1001"], code=2)
    cli(["audit", "list", "--since", "yesterday"], code=2)
    cli(["audit", "export", "--format", "csv"], code=2)


def test_export_round_trips(scripted: Scripted, cli: Callable[..., Any]) -> None:
    log = scripted.broker.audit
    events = log.list(limit=1000)
    buffer = io.StringIO()
    assert log.export_jsonl(buffer) == len(events)
    lines = buffer.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [e.to_dict() for e in events]
    cli_lines = cli(["audit", "export", "--format", "jsonl"]).stdout.splitlines()
    assert cli_lines == lines
    listed = json.loads(cli(["audit", "list", "--json", "--limit", "1000"]).stdout)
    assert listed == [json.loads(line) for line in lines]
    # The exported events still form the chain: each links to the previous one's hash.
    previous = "00" * 32
    for n, line in enumerate(lines, start=1):
        d = json.loads(line)
        assert d["id"] == n
        assert d["previousHash"] == previous
        previous = d["hash"]
        assert as_expected_dict(d) == scripted.expected[n - 1]
        assert d["createdAt"] == scripted.expected[n - 1].at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # A filtered export is exactly the filtered list.
    filtered = cli(["audit", "export", "--tenant", "acme"]).stdout.splitlines()
    assert [json.loads(line)["id"] for line in filtered] == scripted.ids(
        lambda e: e.tenant == "acme"
    )
