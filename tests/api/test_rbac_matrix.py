"""The REST API's access rules as one table: every route, every caller, every target (DESIGN §4).

Each row of :data:`RBAC_TABLE` is (route, caller, target) → expected status, derived from the role
rules alone:

* no key or a bad key → 401 (with ``WWW-Authenticate``);
* a role the route does not admit → 403;
* another tenant's credential, or an id that does not exist → 404, with the same body for both;
* creating or registering in another tenant → 403 (there is no object to hide);
* otherwise the route's success status.

Roles: admin everything in its tenant; developer view, create, edit, rotate, test (no delete);
viewer metadata only; worker resolve only; ``GET /api/types`` for all. A platform key (tenant
``*``) reaches every tenant.

The matrix runs once per module (a few hundred requests) and three tests read its results: the
statuses, that a denied request changed nothing stored, and that every denial is on the audit
chain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from flowcred.api.deps import FailedKeyLimiter
from flowcred.audit.log import AuditFilter

MISSING_ID = 987_654
MISSING_EVENT = 10**9
NOT_FOUND_BODY = {"detail": "credential not found", "errors": []}

ALL = frozenset({"admin", "developer", "viewer", "worker"})
VIEW = frozenset({"admin", "developer", "viewer"})
EDIT = frozenset({"admin", "developer"})
ADMIN = frozenset({"admin"})
RESOLVE = frozenset({"admin", "worker"})


@dataclass(frozen=True)
class Route:
    """One route of DESIGN §4 as implemented.

    ``scope``: ``credential`` (a path id: targets acme / globex / missing), ``tenant`` (a tenant
    named in the body: targets acme / globex), ``event`` (an audit event id: existing / missing;
    the existing one is an acme event, which a tenant admin of globex may not verify at) or
    ``global`` (one target).
    """

    name: str
    method: str
    path: str
    roles: frozenset[str]
    ok: int
    scope: str
    mutates: bool = False
    body: Callable[[str, int], Any] | None = None


ROUTES: tuple[Route, ...] = (
    Route(
        "create",
        "POST",
        "/api/credentials",
        EDIT,
        201,
        "tenant",
        mutates=True,
        body=lambda target, n: {
            "name": f"rbac created {n}",
            "type": "api_key",
            "tenantId": target,
            "secret": {"api_key": f"rbac-created-{n:06d}"},
        },
    ),
    Route("list", "GET", "/api/credentials", VIEW, 200, "global"),
    Route("get", "GET", "/api/credentials/{id}", VIEW, 200, "credential"),
    Route(
        "patch",
        "PATCH",
        "/api/credentials/{id}",
        EDIT,
        200,
        "credential",
        mutates=True,
        body=lambda target, n: {"name": f"renamed {n}", "config": {"key_name": "X-Renamed"}},
    ),
    Route("delete", "DELETE", "/api/credentials/{id}", ADMIN, 204, "credential", mutates=True),
    Route("versions", "GET", "/api/credentials/{id}/versions", VIEW, 200, "credential"),
    Route(
        "rotate",
        "PUT",
        "/api/credentials/{id}/secret",
        EDIT,
        200,
        "credential",
        mutates=True,
        body=lambda target, n: {"secretValue": f"rbac-rotated-{n:06d}"},
    ),
    Route(
        "rollback",
        "POST",
        "/api/credentials/{id}/rollback",
        EDIT,
        200,
        "credential",
        mutates=True,
        body=lambda target, n: {"version": 1},
    ),
    Route(
        "resolve",
        "POST",
        "/api/credentials/{id}/resolve",
        RESOLVE,
        200,
        "credential",
        body=lambda target, n: {"executionId": f"rbac-{n}"},
    ),
    # The seeded credentials have no test_url, so an admitted live test answers 422 naming
    # config.test_url (the route's own contract) — any 401/403/404 would still be a mismatch.
    Route("test", "POST", "/api/credentials/{id}/test", EDIT, 422, "credential"),
    # An unsaved body without test_url: an admitted caller gets the 422 naming config.test_url.
    Route(
        "test-unsaved",
        "POST",
        "/api/credentials/test",
        EDIT,
        422,
        "tenant",
        body=lambda target, n: {
            "name": f"rbac unsaved {n}",
            "type": "api_key",
            "tenantId": target,
            "secret": {"api_key": f"rbac-unsaved-{n:06d}"},
        },
    ),
    Route("types", "GET", "/api/types", ALL, 200, "global"),
    Route(
        "put-bindings",
        "PUT",
        "/api/bindings/rbac-flow",
        EDIT,
        200,
        "tenant",
        mutates=True,
        # References must name credentials of the tenant (issue 8, item 5); an empty list is
        # always valid, which keeps this row about who may call, not what is bound.
        body=lambda target, n: {"references": [], "tenantId": target},
    ),
    Route("list-bindings", "GET", "/api/bindings", EDIT, 200, "global"),
    Route("audit-list", "GET", "/api/audit-events?limit=5", ADMIN, 200, "global"),
    Route("audit-verify", "GET", "/api/audit-events/{event}/verify", ADMIN, 200, "event"),
)

KEYED_CALLERS = tuple((role, tenant) for role in sorted(ALL) for tenant in ("*", "acme", "globex"))
CALLERS: tuple[tuple[str, str] | str, ...] = (*KEYED_CALLERS, "no key", "bad key")
TARGETS = {
    "credential": ("acme", "globex", "missing"),
    "tenant": ("acme", "globex"),
    "event": ("existing", "missing"),
    "global": ("-",),
}


def expected_status(route: Route, caller: tuple[str, str] | str, target: str) -> int:
    """The status the role rules give, and nothing else (no knowledge of the code)."""
    if isinstance(caller, str):
        return 401
    role, tenant = caller
    if role not in route.roles:
        return 403
    reaches = tenant == "*" or tenant == target
    if route.scope == "credential":
        return route.ok if target != "missing" and reaches else 404
    if route.scope == "tenant":
        return route.ok if reaches else 403
    if route.scope == "event":
        # A tenant admin verifies only at its own tenant's events (hardening item 15).
        return route.ok if target == "existing" and tenant in ("*", "acme") else 404
    return route.ok


@dataclass(frozen=True)
class Row:
    route: Route
    caller: tuple[str, str] | str
    target: str
    expected: int

    def label(self) -> str:
        who = self.caller if isinstance(self.caller, str) else f"{self.caller[0]}@{self.caller[1]}"
        return f"{self.route.method} {self.route.name} as {who} on {self.target}"


RBAC_TABLE: list[Row] = [
    Row(route, caller, target, expected_status(route, caller, target))
    for route in ROUTES
    for caller in CALLERS
    for target in TARGETS[route.scope]
]


@dataclass
class Outcome:
    row: Row
    status: int
    body: Any
    headers: dict[str, str]
    changed: list[str] = field(default_factory=list)
    audit: list[tuple[str, str, str]] = field(default_factory=list)


def _snapshot(env: Any, ids: dict[str, int]) -> dict[str, Any]:
    """What a request could change: both credentials (record, versions, secret), the list of
    credentials and the bindings."""
    broker = env.broker
    snap: dict[str, Any] = {}
    for tenant, cid in ids.items():
        record, versions = broker.credentials.describe(cid, tenant=tenant)
        snap[tenant] = (
            record.name,
            record.config,
            record.current_version,
            record.updated_at,
            [(v.version, v.created_at, v.current) for v in versions],
            broker.provider(tenant=tenant).get_password(cid),
        )
    snap["credentials"] = sorted(r.id for r in broker.credentials.list())
    snap["bindings"] = sorted(
        (b.flow, b.tenant, tuple(map(str, b.references))) for b in broker.bindings.list()
    )
    return snap


def _run_matrix(env: Any) -> list[Outcome]:
    fixed = {"acme": env.seed("acme").id, "globex": env.seed("globex").id}
    acme_event = env.broker.audit.list(AuditFilter(tenant="acme"), limit=1)[0].id
    outcomes = []
    for n, row in enumerate(RBAC_TABLE):
        route = row.route
        ids = fixed
        if route.mutates and route.scope == "credential":
            # Fresh credentials for each row that may change or delete one.
            ids = {"acme": env.seed("acme").id, "globex": env.seed("globex").id}
        cid = ids.get(row.target, MISSING_ID)
        path = route.path.replace("{id}", str(cid))
        path = path.replace(
            "{event}", str(acme_event) if row.target == "existing" else str(MISSING_EVENT)
        )
        headers: dict[str, str] = {}
        if row.caller == "bad key":
            headers = {"X-API-Key": "fck_aaaaaaaaaaaa_" + "A" * 43}
        elif isinstance(row.caller, tuple):
            headers = env.headers(*row.caller)
        env.app.state.key_limiter = FailedKeyLimiter()  # 401 rows must not turn into 429s
        body = route.body(row.target, n) if route.body else None
        before = _snapshot(env, ids) if route.mutates else None
        last = env.broker.audit.last_id()
        response = env.client.request(route.method, path, headers=headers, json=body)
        events = env.broker.audit.list(AuditFilter(), after_id=last, limit=1000)
        outcome = Outcome(
            row=row,
            status=response.status_code,
            body=response.json() if response.content else None,
            headers=dict(response.headers),
            audit=[(e.event_type, e.action, e.result) for e in events],
        )
        if before is not None and response.status_code >= 400:
            after = _snapshot(env, ids)
            outcome.changed = [k for k in before if before[k] != after[k]]
        outcomes.append(outcome)
    return outcomes


@pytest.fixture(scope="module")
def rbac_outcomes(module_api_env: Any) -> list[Outcome]:
    """Run the whole table once against one app (SQLite)."""
    return _run_matrix(module_api_env)


def _report(title: str, lines: list[str]) -> str:
    shown = "\n".join(f"  {line}" for line in lines[:80])
    more = f"\n  ... and {len(lines) - 80} more" if len(lines) > 80 else ""
    return f"{title}: {len(lines)} mismatch(es)\n{shown}{more}"


def test_table_covers_every_route_role_and_target() -> None:
    """The table has every route, caller and target once, and its expectations are not trivial."""
    assert len({(r.route.name, r.caller, r.target) for r in RBAC_TABLE}) == len(RBAC_TABLE)
    assert {r.route.name for r in RBAC_TABLE} == {route.name for route in ROUTES}
    assert len(ROUTES) == 16
    statuses = Counter(r.expected for r in RBAC_TABLE)
    assert {401, 403, 404} <= set(statuses)
    assert statuses[401] == 2 * sum(len(TARGETS[route.scope]) for route in ROUTES)


def test_every_row_gets_the_expected_status(rbac_outcomes: list[Outcome]) -> None:
    mismatches = []
    for o in rbac_outcomes:
        problems = []
        if o.status != o.row.expected:
            problems.append(f"got {o.status}, expected {o.row.expected} ({o.body})")
        if o.status == 401 and "www-authenticate" not in {k.lower() for k in o.headers}:
            problems.append("401 without WWW-Authenticate")
        if o.status == 404 and o.row.route.scope == "credential" and o.body != NOT_FOUND_BODY:
            problems.append(f"404 body {o.body!r} differs from an unknown id's")
        mismatches += [f"{o.row.label()}: {p}" for p in problems]
    print(f"RBAC table: {len(rbac_outcomes)} rows, {len(mismatches)} mismatch(es)")
    assert not mismatches, _report("RBAC matrix", mismatches)


def test_other_tenant_and_unknown_id_look_the_same(rbac_outcomes: list[Outcome]) -> None:
    """For one caller and route, a foreign credential and a missing id give identical answers."""
    by_key = {(o.row.route.name, o.row.caller, o.row.target): o for o in rbac_outcomes}
    mismatches = []
    compared = 0
    for (name, caller, target), o in by_key.items():
        if target != "globex" or not isinstance(caller, tuple) or caller[1] != "acme":
            continue
        missing = by_key.get((name, caller, "missing"))
        if missing is None:
            continue
        compared += 1
        same_headers = {k: v for k, v in o.headers.items() if k.lower() != "date"} == {
            k: v for k, v in missing.headers.items() if k.lower() != "date"
        }
        if (o.status, o.body) != (missing.status, missing.body) or not same_headers:
            mismatches.append(
                f"{name} as {caller}: foreign {o.status} {o.body} vs missing "
                f"{missing.status} {missing.body}"
            )
    assert compared >= 30
    assert not mismatches, _report("foreign vs missing", mismatches)


def test_denied_requests_change_nothing(rbac_outcomes: list[Outcome]) -> None:
    checked = [o for o in rbac_outcomes if o.row.route.mutates and o.status >= 400]
    assert len(checked) > 100
    changed = [f"{o.row.label()} ({o.status}) changed {o.changed}" for o in checked if o.changed]
    assert not changed, _report("denied but changed", changed)


def _expected_denial_event(o: Outcome) -> tuple[str, str] | None:
    if o.status == 401:
        return ("api_key", "authentication_failed")
    if o.status == 403 and o.row.caller != "no key":
        caller = o.row.caller
        assert isinstance(caller, tuple)
        if caller[0] not in o.row.route.roles:
            return ("api_key", "access_denied")
        return ("*", "access_denied")  # another tenant named in the body: any denial event
    if o.status == 404 and o.row.target == "globex":
        return ("credential", "access_denied")
    return None


def test_every_denial_is_audited(rbac_outcomes: list[Outcome]) -> None:
    missing = []
    counted = Counter()
    for o in rbac_outcomes:
        want = _expected_denial_event(o)
        if want is None:
            continue
        counted[want] += 1
        found = [
            e for e in o.audit if e[2] == "denied" and e[1] == want[1] and want[0] in ("*", e[0])
        ]
        if not found:
            missing.append(f"{o.row.label()} ({o.status}): no {want} event; saw {o.audit}")
    assert counted[("api_key", "authentication_failed")] > 0
    assert counted[("api_key", "access_denied")] > 0
    assert counted[("credential", "access_denied")] > 0
    assert not missing, _report("denials without an audit event", missing)
