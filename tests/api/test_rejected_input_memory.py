"""Through the REST API, a refused secret is not kept in memory (issue 8 item 4).

The broker-level tests are in ``tests/test_rejected_input_memory.py``; this one proves the rule
holds for the surface an attacker reaches first, with the process-wide registry the server uses.
"""

from __future__ import annotations

from typing import Any

from flowcred.redaction import default_registry

CREDS = "/api/credentials"


def test_422_create_with_a_huge_secret_does_not_register_it(api_env: Any) -> None:
    registry = default_registry()
    before = len(registry)
    huge = [f"huge-secret-{i}-" + "h" * 300_000 for i in range(3)]
    for i, value in enumerate(huge):
        response = api_env.client.post(
            CREDS,
            headers=api_env.admin(),
            json={"name": f"huge {i}", "type": "api_key", "secret": {"api_key": value}},
        )
        assert response.status_code == 422, response.text
        assert value[:40] not in response.text
        assert {"field": "api_key", "message": "must be at most 64 KiB"} in [
            {"field": e["field"], "message": e["message"]} for e in response.json()["errors"]
        ]
    assert not any(registry.contains_secret(value) for value in huge)
    assert len(registry) == before


def test_rotate_with_a_huge_secret_does_not_register_it(api_env: Any) -> None:
    registry = default_registry()
    cred = api_env.seed()
    before = len(registry)
    value = "huge-rotation-" + "r" * 300_000
    response = api_env.client.put(
        f"{CREDS}/{cred.id}/secret", headers=api_env.admin(), json={"secret": {"api_key": value}}
    )
    assert response.status_code == 422, response.text
    assert not registry.contains_secret(value)
    assert len(registry) == before
