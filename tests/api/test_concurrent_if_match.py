"""Optimistic concurrency over HTTP: N clients rotate one credential with the same ``If-Match``.

Per round every client sends ``PUT /api/credentials/{id}/secret`` with ``If-Match: <version>`` at
the same moment (a barrier releases them). Exactly one may win (200); all others must get 409, none
a 5xx or a silent lost update. Over several rounds the final version is 1 + the number of wins,
and the stored secret is the winner's. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

CLIENTS = 8
ROUNDS = 5


def test_same_if_match_has_exactly_one_winner_per_version(any_db_api_env: Any) -> None:
    _run(any_db_api_env)


def _run(env: Any) -> None:
    created = env.client.post(
        "/api/credentials",
        json={
            "name": "Contended",
            "type": "api_key",
            "tenantId": "acme",
            "secret": {"api_key": "initial-value-000"},
        },
        headers=env.headers("developer", "acme"),
    )
    assert created.status_code == 201, created.text
    cid = created.json()["credentialId"]
    url = f"/api/credentials/{cid}/secret"
    barrier = threading.Barrier(CLIENTS)
    results: dict[int, list[tuple[int, int, str]]] = {r: [] for r in range(ROUNDS)}
    versions: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        role = ("developer", "acme") if index % 2 else ("admin", "*")
        try:
            with env.new_client() as client:
                for rnd in range(ROUNDS):
                    if index == 0:
                        meta = client.get(f"/api/credentials/{cid}", headers=env.admin())
                        versions.append(meta.json()["currentVersion"])
                    barrier.wait(timeout=60)
                    version = versions[rnd]
                    value = f"value-r{rnd}-c{index}-xxxx"
                    response = client.put(
                        url,
                        json={"secretValue": value},
                        headers=env.headers(*role, **{"If-Match": f'"{version}"'}),
                    )
                    with lock:
                        results[rnd].append((response.status_code, version, value))
                    barrier.wait(timeout=60)  # everyone done before the next read
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    wins = 0
    report = []
    last_winner = None
    for rnd in range(ROUNDS):
        statuses = Counter(status for status, _, _ in results[rnd])
        report.append(f"round {rnd}: {dict(statuses)}")
        winners = [value for status, _, value in results[rnd] if status == 200]
        wins += len(winners)
        if winners:
            last_winner = winners[-1]
        assert len(results[rnd]) == CLIENTS
        assert statuses[200] == 1 and statuses[409] == CLIENTS - 1, report
    final = env.client.get(f"/api/credentials/{cid}", headers=env.admin()).json()
    assert wins == ROUNDS
    assert final["currentVersion"] == 1 + wins, (final, report)
    assert versions == list(range(1, ROUNDS + 1))
    assert env.broker.provider(tenant="acme").get_password(cid) == last_winner
    history = env.client.get(f"/api/credentials/{cid}/versions", headers=env.admin()).json()
    assert [v["version"] for v in history] == list(range(1 + wins, 0, -1))
