"""Many resolve requests in flight at once, on one event loop, as a busy worker fleet sends them.

The resolve route is async: a cached credential is answered on the event loop and its audit event
joins a group commit through a future settled by another thread. This drives it with 90
concurrent requests (httpx over the ASGI interface, all on the test's own loop) mixing a tenant's
worker key, a platform worker key and a wrong-tenant request, and checks what a user would:

* every 200 carries the right credential's secret, every wrong-tenant request gets the plain 404;
* the trail holds exactly one event per request, with its execution id, actor and result
  (``success`` or ``denied``), and the chain verifies.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import httpx

from flowcred.audit import AuditFilter

PER_KIND = 30
REQUEST_TIMEOUT = 60.0


def test_concurrent_resolves_each_get_their_answer_and_one_event(any_db_api_env: Any) -> None:
    _run(any_db_api_env)


def _run(env: Any) -> None:
    acme = env.seed("acme", secret={"api_key": "acme-secret-0001"})
    globex = env.seed("globex", secret={"api_key": "globex-secret-0002"})
    first_event = env.broker.audit.last_id() + 1
    # (execution id, key headers, credential id, expected status, expected secret)
    plan: list[tuple[str, dict[str, str], int, int, str | None]] = []
    for n in range(PER_KIND):
        plan.append((f"own-{n}", env.headers("worker", "acme"), acme.id, 200, "acme-secret-0001"))
        plan.append(
            (f"platform-{n}", env.headers("worker", "*"), globex.id, 200, "globex-secret-0002")
        )
        plan.append((f"foreign-{n}", env.headers("worker", "acme"), globex.id, 404, None))

    async def send(
        client: httpx.AsyncClient, item: tuple[str, dict[str, str], int, int, str | None]
    ) -> tuple[str, int, dict[str, Any]]:
        execution_id, headers, cid, _, _ = item
        response = await client.post(
            f"/api/credentials/{cid}/resolve", json={"executionId": execution_id}, headers=headers
        )
        return execution_id, response.status_code, response.json()

    async def all_requests() -> list[tuple[str, int, dict[str, Any]]]:
        transport = httpx.ASGITransport(app=env.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://flowcred.test"
        ) as client:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                return await asyncio.gather(*(send(client, item) for item in plan))

    answers = {
        execution_id: (status, body) for execution_id, status, body in asyncio.run(all_requests())
    }
    for execution_id, _, cid, status, secret in plan:
        got_status, body = answers[execution_id]
        assert got_status == status, (execution_id, got_status, body)
        if secret is not None:
            assert body["credentialId"] == cid
            assert body["fields"]["api_key"] == secret
        else:
            assert "globex-secret" not in str(body)

    events = env.broker.audit.list(after_id=first_event - 1, limit=1000)
    by_execution = collections.Counter(e.execution_id for e in events)
    assert by_execution == {item[0]: 1 for item in plan}, "not exactly one event per request"
    for event in events:
        kind = (event.execution_id or "").split("-")[0]
        expected = {"own": ("resolved", "success"), "platform": ("resolved", "success")}
        assert (event.action, event.result) == expected.get(kind, ("access_denied", "denied"))
        assert event.actor.kind == "api_key"
    denied = env.broker.audit.list(AuditFilter(result="denied"), after_id=first_event - 1)
    assert len(denied) == PER_KIND
    assert env.broker.audit.verify().is_valid
