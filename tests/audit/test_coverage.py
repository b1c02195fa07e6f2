"""Every operation on a credential leaves exactly one audit event, and no event holds a secret.

For each public operation of the Python API (``credentials.create/get/describe/list/update/
rotate/rollback/delete/versions``, ``provider.resolve/get_password/aresolve/aget_password``,
``broker.rotate_keys``) a success and failures (invalid input, unknown reference, another
tenant's credential, a stale ``expected_version``) are each checked to add exactly ONE event with
the right type, action, result, actor, source, tenant, resource id and execution id. Then the same
through the CLI, whose actor is the operating-system user. Finally a canary test plants
recognisable secrets through every path that receives one and scans every stored event body and
the CLI's ``audit list --json`` / ``audit export`` output for them.
"""

from __future__ import annotations

import asyncio
import fcntl
import getpass
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from flowcred.audit import Actor, AuditEvent
from flowcred.broker import Broker, BrokerView, open_broker
from flowcred.cli.main import app
from flowcred.errors import (
    ConflictError,
    CredentialNotFound,
    FlowcredError,
    HandleConflict,
    InvalidCredential,
    UnknownCredentialType,
    VersionConflict,
)
from flowcred.store.kek_versions import ROTATION_LOCK_KEY
from flowcred.testing import CanaryScanner

API_ACTOR = Actor("api_key", "key-7", "ci key")
API_SOURCE = "10.1.2.3"
OS_USER = getpass.getuser()
UNKNOWN_ID = 987_654


# -- helpers ---------------------------------------------------------------------------------


def new_events(broker: Broker, before: int) -> list[AuditEvent]:
    return broker.audit.list(after_id=before, limit=1000)


def audited(
    broker: Broker, call: Callable[[], Any], raises: type[BaseException] | None = None
) -> tuple[AuditEvent, Any]:
    """Run ``call`` (expecting ``raises``, if given) and return the ONE event it added."""
    before = broker.audit.last_id()
    result: Any = None
    if raises is not None:
        with pytest.raises(raises):
            call()
    else:
        result = call()
    added = new_events(broker, before)
    assert len(added) == 1, [(e.event_type, e.action, e.result) for e in added]
    return added[0], result


@dataclass
class Who:
    """The caller: the broker's default actor (OS user, 'local') or an API-key view."""

    name: str
    view: Broker | BrokerView
    actor: Actor
    source: str


def check(
    event: AuditEvent,
    who: Who,
    *,
    action: str,
    result: str,
    tenant: str | None,
    resource_id: str | int | None,
    execution_id: str | None = None,
    event_type: str = "credential",
) -> None:
    got = (
        event.event_type,
        event.action,
        event.result,
        event.actor,
        event.source,
        event.tenant,
        event.resource_id,
        event.execution_id,
    )
    want = (
        event_type,
        action,
        result,
        who.actor,
        who.source,
        tenant,
        None if resource_id is None else str(resource_id),
        execution_id,
    )
    assert got == want
    if event_type == "credential":
        assert event.resource_type == "credential"


@dataclass
class World:
    broker: Broker
    who: Who
    acme: int  # an api_key credential of tenant acme (handle "acme-key")
    globex: int  # an api_key credential of tenant globex


@pytest.fixture(params=["os_user", "api_key"])
def world(request: pytest.FixtureRequest, broker: Broker) -> World:
    if request.param == "os_user":
        who = Who("os_user", broker, Actor("user", OS_USER, OS_USER), "local")
    else:
        who = Who("api_key", broker.acting_as(API_ACTOR, source=API_SOURCE), API_ACTOR, API_SOURCE)
    acme = broker.credentials.create(
        name="acme key", type="api_key", tenant="acme", secret_value="sk_acme_0123456789"
    )
    globex = broker.credentials.create(
        name="globex key", type="api_key", tenant="globex", secret_value="sk_globex_0123456789"
    )
    return World(broker, who, acme.id, globex.id)


# -- Python API ------------------------------------------------------------------------------


def test_create(world: World) -> None:
    b, who, creds = world.broker, world.who, world.who.view.credentials
    event, record = audited(
        b,
        lambda: creds.create(name="New One", type="api_key", tenant="acme", secret_value="s" * 20),
    )
    check(event, who, action="created", result="success", tenant="acme", resource_id=record.id)
    assert event.details == {"type": "api_key", "handle": "new-one", "version": 1}

    event, _ = audited(
        b,
        lambda: creds.create(name=" ", type="api_key", tenant="acme", secret_value="s" * 20),
        raises=InvalidCredential,
    )
    check(event, who, action="created", result="failure", tenant="acme", resource_id=None)
    assert event.details["fields"] == ["name"]

    event, _ = audited(
        b,
        lambda: creds.create(name="x", type="no-such-type", tenant="acme", secret_value="s" * 9),
        raises=UnknownCredentialType,
    )
    check(event, who, action="created", result="failure", tenant="acme", resource_id=None)

    event, _ = audited(
        b,
        # A generated handle gets a suffix when taken; an explicit one conflicts.
        lambda: creds.create(
            name="acme key", type="api_key", tenant="acme", handle="acme-key", secret_value="s" * 9
        ),
        raises=HandleConflict,
    )
    check(event, who, action="created", result="failure", tenant="acme", resource_id=None)
    assert event.details["error"] == "HandleConflict"


def test_get_and_describe_and_versions(world: World) -> None:
    b, who, creds = world.broker, world.who, world.who.view.credentials
    for name, call in (
        ("get", creds.get),
        ("describe", creds.describe),
        ("versions", creds.versions),
    ):
        event, _ = audited(b, lambda call=call: call(world.acme, tenant="acme"))
        check(event, who, action="viewed", result="success", tenant="acme", resource_id=world.acme)

        event, _ = audited(b, lambda call=call: call("acme-key", tenant="acme"))
        check(event, who, action="viewed", result="success", tenant="acme", resource_id=world.acme)

        event, _ = audited(b, lambda call=call: call(UNKNOWN_ID), raises=CredentialNotFound)
        check(event, who, action="viewed", result="failure", tenant=None, resource_id=UNKNOWN_ID)

        event, _ = audited(
            b, lambda call=call: call("no-such-handle", tenant="acme"), raises=CredentialNotFound
        )
        check(
            event,
            who,
            action="viewed",
            result="failure",
            tenant="acme",
            resource_id="no-such-handle",
        )

        # Another tenant's id: answered like an unknown one, audited as an access denied.
        event, _ = audited(
            b, lambda call=call: call(world.globex, tenant="acme"), raises=CredentialNotFound
        )
        check(
            event,
            who,
            action="access_denied",
            result="denied",
            tenant="acme",
            resource_id=world.globex,
        )
        assert event.details["attempted"] == "viewed", name


def test_list(world: World) -> None:
    b, who, creds = world.broker, world.who, world.who.view.credentials
    event, records = audited(b, lambda: creds.list(tenant="acme"))
    assert [r.id for r in records] == [world.acme]
    check(event, who, action="listed", result="success", tenant="acme", resource_id=None)
    assert event.details["count"] == 1

    event, _ = audited(b, lambda: creds.list(type="no-such-type"), raises=UnknownCredentialType)
    check(event, who, action="listed", result="failure", tenant=None, resource_id=None)


def test_update(world: World) -> None:
    b, who, creds = world.broker, world.who, world.who.view.credentials
    event, _ = audited(b, lambda: creds.update(world.acme, tenant="acme", name="renamed"))
    check(event, who, action="updated", result="success", tenant="acme", resource_id=world.acme)
    assert event.details == {"changed": ["name"]}

    event, _ = audited(
        b, lambda: creds.update(world.acme, tenant="acme", name="  "), raises=InvalidCredential
    )
    check(event, who, action="updated", result="failure", tenant="acme", resource_id=world.acme)

    event, _ = audited(
        b,
        lambda: creds.update(world.acme, config={"location": "nowhere-valid"}),
        raises=InvalidCredential,
    )
    check(event, who, action="updated", result="failure", tenant=None, resource_id=world.acme)

    event, _ = audited(b, lambda: creds.update(UNKNOWN_ID, name="x"), raises=CredentialNotFound)
    check(event, who, action="updated", result="failure", tenant=None, resource_id=UNKNOWN_ID)

    event, _ = audited(
        b, lambda: creds.update(world.globex, tenant="acme", name="x"), raises=CredentialNotFound
    )
    check(
        event, who, action="access_denied", result="denied", tenant="acme", resource_id=world.globex
    )
    assert b.credentials.get(world.globex).name == "globex key"


def test_rotate(world: World) -> None:
    b, who, creds = world.broker, world.who, world.who.view.credentials
    event, record = audited(
        b, lambda: creds.rotate(world.acme, tenant="acme", secret_value="sk_acme_rotated_1")
    )
    assert record.current_version == 2
    check(event, who, action="rotated", result="success", tenant="acme", resource_id=world.acme)
    assert event.details == {"from_version": 1, "version": 2}

    event, _ = audited(
        b,
        lambda: creds.rotate(world.acme, secret_value="sk_acme_stale_01", expected_version=1),
        raises=VersionConflict,
    )
    check(event, who, action="rotated", result="failure", tenant=None, resource_id=world.acme)
    assert event.details["error"] == "VersionConflict"

    event, _ = audited(
        b, lambda: creds.rotate(world.acme, secret={"nope": "x"}), raises=InvalidCredential
    )
    check(event, who, action="rotated", result="failure", tenant=None, resource_id=world.acme)

    event, _ = audited(
        b, lambda: creds.rotate(UNKNOWN_ID, secret_value="x" * 12), raises=CredentialNotFound
    )
    check(event, who, action="rotated", result="failure", tenant=None, resource_id=UNKNOWN_ID)

    event, _ = audited(
        b,
        lambda: creds.rotate(world.globex, tenant="acme", secret_value="x" * 12),
        raises=CredentialNotFound,
    )
    check(
        event, who, action="access_denied", result="denied", tenant="acme", resource_id=world.globex
    )
    assert b.credentials.get(world.globex).current_version == 1


def test_rollback(world: World) -> None:
    b, who, creds = world.broker, world.who, world.who.view.credentials
    b.credentials.rotate(world.acme, secret_value="sk_acme_rotated_1")
    event, record = audited(b, lambda: creds.rollback(world.acme, 1, tenant="acme"))
    assert record.current_version == 3
    check(event, who, action="rolled_back", result="success", tenant="acme", resource_id=world.acme)
    assert event.details == {"from_version": 2, "restored_version": 1, "version": 3}

    event, _ = audited(b, lambda: creds.rollback(world.acme, 99), raises=InvalidCredential)
    check(event, who, action="rolled_back", result="failure", tenant=None, resource_id=world.acme)

    event, _ = audited(
        b, lambda: creds.rollback(world.acme, 2, expected_version=2), raises=VersionConflict
    )
    check(event, who, action="rolled_back", result="failure", tenant=None, resource_id=world.acme)

    event, _ = audited(
        b, lambda: creds.rollback(world.globex, 1, tenant="acme"), raises=CredentialNotFound
    )
    check(
        event, who, action="access_denied", result="denied", tenant="acme", resource_id=world.globex
    )


def test_delete(world: World) -> None:
    b, who, creds = world.broker, world.who, world.who.view.credentials
    event, _ = audited(
        b, lambda: creds.delete(world.globex, tenant="acme"), raises=CredentialNotFound
    )
    check(
        event, who, action="access_denied", result="denied", tenant="acme", resource_id=world.globex
    )
    assert b.credentials.get(world.globex).id == world.globex

    event, _ = audited(b, lambda: creds.delete(world.acme, tenant="acme"))
    check(event, who, action="deleted", result="success", tenant="acme", resource_id=world.acme)
    assert event.details == {"type": "api_key", "handle": "acme-key"}

    event, _ = audited(b, lambda: creds.delete(world.acme), raises=CredentialNotFound)
    check(event, who, action="deleted", result="failure", tenant=None, resource_id=world.acme)


@pytest.mark.parametrize("method", ["resolve", "get_password", "aresolve", "aget_password"])
def test_provider_reads(world: World, method: str) -> None:
    b, who = world.broker, world.who
    action = "password_read" if method.endswith("get_password") else "resolved"
    provider = who.view.provider(tenant="acme")
    fn = getattr(provider, method)

    def call(ref: int | str, execution_id: str) -> Any:
        if method.startswith("a"):
            return asyncio.run(fn(ref, execution_id=execution_id))
        return fn(ref, execution_id=execution_id)

    event, result = audited(b, lambda: call(world.acme, "run-1"))
    got = result if isinstance(result, str) else result.fields["api_key"].reveal()
    assert got == "sk_acme_0123456789"
    check(
        event,
        who,
        action=action,
        result="success",
        tenant="acme",
        resource_id=world.acme,
        execution_id="run-1",
    )
    assert event.details == {"version": 1}

    # A second call (a cache hit) is audited again.
    event, _ = audited(b, lambda: call("acme-key", "run-2"))
    check(
        event,
        who,
        action=action,
        result="success",
        tenant="acme",
        resource_id=world.acme,
        execution_id="run-2",
    )

    event, _ = audited(b, lambda: call("missing", "run-3"), raises=CredentialNotFound)
    check(
        event,
        who,
        action=action,
        result="failure",
        tenant="acme",
        resource_id="missing",
        execution_id="run-3",
    )
    event, _ = audited(b, lambda: call(UNKNOWN_ID, "run-4"), raises=CredentialNotFound)
    check(
        event,
        who,
        action=action,
        result="failure",
        tenant="acme",
        resource_id=UNKNOWN_ID,
        execution_id="run-4",
    )
    event, _ = audited(b, lambda: call(world.globex, "run-5"), raises=CredentialNotFound)
    check(
        event,
        who,
        action="access_denied",
        result="denied",
        tenant="acme",
        resource_id=world.globex,
        execution_id="run-5",
    )
    assert event.details["attempted"] == action
    assert "message" not in event.details  # a denial tells nothing about the other tenant


@contextmanager
def rotation_lock_held(broker: Broker) -> Iterator[None]:
    """Hold the database's key-rotation lock, as a concurrent 'keys rotate' would."""
    if broker.engine.dialect.name == "sqlite":
        path = Path(f"{broker.engine.url.database}.keys-rotate.lock")
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield
        finally:
            os.close(fd)
        return
    import psycopg

    url = broker.engine.url.render_as_string(hide_password=False)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        conn.execute(f"SELECT pg_advisory_lock({ROTATION_LOCK_KEY})")
        yield


def test_rotate_keys(broker: Broker) -> None:
    who = Who("os_user", broker, Actor("user", OS_USER, OS_USER), "local")
    broker.credentials.create(name="k", type="api_key", secret_value="sk_0123456789abc")
    event, result = audited(broker, broker.rotate_keys)
    check(
        event,
        who,
        event_type="kek",
        action="rotated",
        result="success",
        tenant=None,
        resource_id=result.primary_version,
    )
    assert event.resource_type == "kek"
    assert event.details == {"rewrapped": 1, "resumed": False}

    with rotation_lock_held(broker):
        event, _ = audited(broker, broker.rotate_keys, raises=ConflictError)
    check(
        event,
        who,
        event_type="kek",
        action="rotated",
        result="failure",
        tenant=None,
        resource_id=None,
    )
    assert event.details["error"] == "ConflictError"
    assert broker.audit.verify().is_valid


@pytest.mark.parametrize("op", ["get", "resolve"])
def test_wrongly_typed_reference_is_audited(broker: Broker, op: str) -> None:
    """'Every call leaves exactly one audit event ... whatever its outcome' (Credentials
    docstring): a reference of the wrong type is a failed call too."""
    call: Callable[[], Any] = (
        (lambda: broker.credentials.get(1.5))  # type: ignore[arg-type]
        if op == "get"
        else (lambda: broker.provider().resolve(1.5, execution_id="run-typed"))  # type: ignore[arg-type]
    )
    before = broker.audit.last_id()
    with pytest.raises((TypeError, FlowcredError)):
        call()
    added = new_events(broker, before)
    assert len(added) == 1, f"{op} with a float reference left {len(added)} audit events"
    assert added[0].result == "failure"


# -- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli(broker: Broker, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run the CLI against the broker fixture's store (same FLOWCRED_HOME, same database)."""
    monkeypatch.setenv("FLOWCRED_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(args: list[str], *, stdin: str | None = None, code: int = 0) -> Any:
        result = runner.invoke(app, args, input=stdin)
        assert result.exit_code == code, (args, result.exit_code, result.output)
        return result

    return run


def cli_event(broker: Broker, run: Callable[[], Any]) -> AuditEvent:
    before = broker.audit.last_id()
    run()
    added = new_events(broker, before)
    assert len(added) == 1, [(e.event_type, e.action, e.result) for e in added]
    event = added[0]
    assert event.actor == Actor("user", OS_USER, OS_USER)
    assert event.source == "local"
    return event


def test_cli_operations_leave_one_event_each(broker: Broker, cli: Callable[..., Any]) -> None:
    def ev(args: list[str], *, stdin: str | None = None, code: int = 0) -> AuditEvent:
        return cli_event(broker, lambda: cli(args, stdin=stdin, code=code))

    e = ev(
        [
            "credentials",
            "add",
            "--type",
            "api_key",
            "--name",
            "Cli Key",
            "--tenant",
            "acme",
            "--secret-stdin",
            "--json",
        ],
        stdin="sk_cli_0123456789\n",
    )
    assert (e.action, e.result, e.tenant) == ("created", "success", "acme")
    cid = int(e.resource_id or 0)
    assert broker.credentials.get(cid).handle == "cli-key"

    e = ev(["credentials", "list", "--tenant", "acme", "--json"])
    assert (e.action, e.result, e.tenant) == ("listed", "success", "acme")
    e = ev(["credentials", "show", str(cid), "--tenant", "acme", "--json"])
    assert (e.action, e.result, e.resource_id) == ("viewed", "success", str(cid))
    e = ev(["credentials", "show", "cli-key", "--tenant", "acme"])
    assert (e.action, e.result, e.resource_id) == ("viewed", "success", str(cid))
    e = ev(["credentials", "rotate", str(cid), "--secret-stdin"], stdin="sk_cli_rotated_42\n")
    assert (e.action, e.result, e.details["version"]) == ("rotated", "success", 2)
    e = ev(["credentials", "rollback", str(cid), "1"])
    assert (e.action, e.result, e.details["version"]) == ("rolled_back", "success", 3)
    assert e.details["restored_version"] == 1
    e = ev(["resolve", "cli-key", "--tenant", "acme"])
    assert (e.action, e.result, e.tenant, e.resource_id) == (
        "resolved",
        "success",
        "acme",
        str(cid),
    )
    e = ev(["keys", "rotate", "--json"])
    assert (e.event_type, e.action, e.result) == ("kek", "rotated", "success")
    e = ev(["credentials", "delete", str(cid), "--yes"])
    assert (e.action, e.result, e.resource_id) == ("deleted", "success", str(cid))

    # Failures: each one event too, with the OS user as actor.
    e = ev(["resolve", "missing"], code=2)
    assert (e.action, e.result, e.resource_id, e.tenant) == (
        "resolved",
        "failure",
        "missing",
        "default",
    )
    e = ev(["credentials", "show", str(cid)], code=2)
    assert (e.action, e.result) == ("viewed", "failure")
    e = ev(["credentials", "rotate", str(cid), "--secret-stdin"], stdin="sk_x_0123456789\n", code=2)
    assert (e.action, e.result) == ("rotated", "failure")
    e = ev(["credentials", "rollback", str(cid), "1"], code=2)
    assert (e.action, e.result) == ("rolled_back", "failure")
    e = ev(["credentials", "delete", str(cid), "--yes"], code=2)
    assert (e.action, e.result) == ("deleted", "failure")
    e = ev(["credentials", "list", "--type", "no-such-type"], code=2)
    assert (e.action, e.result) == ("listed", "failure")
    other = broker.credentials.create(
        name="other", type="api_key", tenant="globex", secret_value="sk_globex_0123456789"
    )
    e = ev(["credentials", "show", str(other.id), "--tenant", "acme"], code=2)
    assert (e.action, e.result, e.resource_id) == ("access_denied", "denied", str(other.id))
    e = ev(["resolve", str(other.id), "--tenant", "acme"], code=2)
    assert (e.action, e.result, e.resource_id) == ("access_denied", "denied", str(other.id))
    e = ev(
        [
            "credentials",
            "add",
            "--type",
            "api_key",
            "--name",
            "other",
            "--handle",
            "other",
            "--tenant",
            "globex",
            "--secret-stdin",
        ],
        stdin="sk_dup_0123456789\n",
        code=1,
    )
    assert (e.action, e.result, e.details["error"]) == ("created", "failure", "HandleConflict")
    e = ev(
        [
            "credentials",
            "rotate",
            str(other.id),
            "--tenant",
            "globex",
            "--expected-version",
            "7",
            "--secret-stdin",
        ],
        stdin="sk_stale_0123456789\n",
        code=1,
    )
    assert (e.action, e.result, e.details["error"]) == ("rotated", "failure", "VersionConflict")
    # Verified by a broker opened now: the fixture's broker still holds the ring from before
    # 'keys rotate' (see test_concurrency.py::test_broker_open_during_a_kek_rotation_can_verify).
    with open_broker(settings=broker.settings) as fresh:
        assert fresh.audit.verify().is_valid


def test_cli_add_with_unknown_type_is_audited(broker: Broker, cli: Callable[..., Any]) -> None:
    """A refused 'credentials add' is a failed create, audited like the Python API's
    ``create(type="no-such-type")`` (which records created/failure)."""
    event = cli_event(
        broker,
        lambda: cli(
            ["credentials", "add", "--type", "no-such-type", "--name", "x", "--secret-stdin"],
            stdin="sk_0123456789\n",
            code=2,
        ),
    )
    assert (event.action, event.result) == ("created", "failure")


# -- canaries --------------------------------------------------------------------------------


def test_canaries_never_reach_an_audit_event(broker: Broker, cli: Callable[..., Any]) -> None:
    scanner = CanaryScanner()
    c_create = scanner.plant("created")
    c_rotate = scanner.plant("rotated")
    c_sid = scanner.plant("twilio-sid")
    c_token = scanner.plant("twilio-token")
    c_invalid = scanner.plant("invalid-slack")
    c_unknown = scanner.plant("unknown-type")
    c_stale = scanner.plant("stale-rotate")
    c_both = scanner.plant("secret-and-value")

    creds = broker.credentials
    api = broker.acting_as(API_ACTOR, source=API_SOURCE)
    key = creds.create(name="canary key", type="api_key", secret={"api_key": c_create})
    api.credentials.rotate(key.id, secret_value=c_rotate)
    twilio = creds.create(
        name="canary twilio",
        type="twilio",
        tenant="acme",
        secret={"accountSid": f"AC{c_sid}", "authToken": c_token},
    )
    with pytest.raises(InvalidCredential):  # slack tokens must start with xoxb-
        creds.create(name="bad slack", type="slack", secret={"token": c_invalid})
    with pytest.raises(UnknownCredentialType):
        creds.create(name="unknown", type="no-such-type", secret_value=c_unknown)
    with pytest.raises(VersionConflict):
        creds.rotate(key.id, secret_value=c_stale, expected_version=1)
    with pytest.raises(InvalidCredential):
        creds.rotate(key.id, secret={"api_key": c_both}, secret_value=c_both)

    provider = broker.provider()
    # Positive controls: the secrets are really stored and handed out where they must be.
    password = provider.get_password(key.id, execution_id="run-1")
    assert password == c_rotate and scanner.contains(password, "rotated")
    composite = broker.provider(tenant="acme").get_password(twilio.id, execution_id="run-2")
    assert scanner.contains(composite, "twilio-token") and scanner.contains(composite, "twilio-sid")
    # A canary passed where no secret belongs, after it was registered as one.
    provider.resolve(key.id, execution_id=c_create)
    asyncio.run(provider.aresolve(key.id, execution_id=c_rotate))
    with pytest.raises(CredentialNotFound):  # a canary as a reference: the message quotes it
        provider.resolve(c_token, execution_id=f"AC{c_sid}")
    creds.update(key.id, name=f"renamed {c_create}")
    # CLI paths that receive a secret.
    cli(["credentials", "rotate", str(key.id), "--secret-stdin"], stdin=f"{c_stale}\n")
    cli(["resolve", str(key.id), "--reveal"])

    with broker.engine.connect() as conn:
        bodies = [str(r[0]) for r in conn.execute(text("SELECT body FROM audit_events"))]
    assert len(bodies) >= 14
    listed = cli(["audit", "list", "--json", "--limit", "1000"]).stdout
    exported = cli(["audit", "export", "--format", "jsonl"]).stdout
    assert len(json.loads(listed)) == len(bodies)
    assert len(exported.splitlines()) == len(bodies)
    # The scanner does see a canary in an event-shaped JSON document (it would catch a leak).
    assert scanner.find(json.dumps({"details": {"x": c_stale}}))

    for n, body in enumerate(bodies):
        scanner.scan_text(f"audit_events.body[{n}]", body)
    scanner.scan_text("flowcred audit list --json", listed)
    scanner.scan_text("flowcred audit export --format jsonl", exported)
    api_events = [e for e in broker.audit.list(limit=1000) if e.actor == API_ACTOR]
    assert [e.action for e in api_events] == ["rotated"]
    scanner.assert_clean()
    # The redacted places are still recognisable as redacted.
    execution_ids = {e.execution_id for e in broker.audit.list(limit=1000)}
    assert "***" in execution_ids
