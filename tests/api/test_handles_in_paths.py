"""Item 17: handles in REST paths, ETag / If-None-Match on GET, no-store on resolve."""

from __future__ import annotations

from typing import Any


def _stripe(api_env: Any, environment: str = "default") -> Any:
    return api_env.broker.credentials.create(
        name="Stripe",
        type="api_key",
        tenant="acme",
        environment=environment,
        secret={"api_key": f"sk_test_handles_{environment}_0001"},
    )


def test_every_credential_route_accepts_a_handle(api_env: Any) -> None:
    record = _stripe(api_env)
    admin = api_env.headers("admin", "acme")
    worker = api_env.headers("worker", "acme")
    assert api_env.client.get("/api/credentials/stripe", headers=admin).json()["credentialId"] == (
        record.id
    )
    assert api_env.client.get("/api/credentials/stripe/versions", headers=admin).status_code == 200
    r = api_env.client.patch("/api/credentials/stripe", json={"name": "Stripe 2"}, headers=admin)
    assert r.status_code == 200 and r.json()["name"] == "Stripe 2"
    r = api_env.client.put(
        "/api/credentials/stripe/secret",
        json={"secretValue": "sk_test_handles_rotated_0002"},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["currentVersion"] == 2
    r = api_env.client.post("/api/credentials/stripe/rollback", json={"version": 1}, headers=admin)
    assert r.status_code == 200, r.text
    r = api_env.client.post("/api/credentials/stripe/resolve", headers=worker)
    assert r.status_code == 200 and r.json()["credentialId"] == record.id
    # Delete protection holds by handle as by id: bound → 409, forced → 204.
    r = api_env.client.put("/api/bindings/nightly", json={"references": ["stripe"]}, headers=admin)
    assert r.status_code == 200, r.text
    assert api_env.client.delete("/api/credentials/stripe", headers=admin).status_code == 409
    r = api_env.client.delete("/api/credentials/stripe?force=true", headers=admin)
    assert r.status_code == 204
    assert api_env.client.get("/api/credentials/stripe", headers=admin).status_code == 404


def test_a_handle_is_looked_up_in_the_environment_query_parameter(api_env: Any) -> None:
    dev = _stripe(api_env)
    prod = _stripe(api_env, "prod")
    worker = api_env.headers("worker", "acme")
    r = api_env.client.post("/api/credentials/stripe/resolve?environment=prod", headers=worker)
    assert r.status_code == 200 and r.json()["credentialId"] == prod.id
    r = api_env.client.post("/api/credentials/stripe/resolve", headers=worker)
    assert r.json()["credentialId"] == dev.id
    r = api_env.client.post("/api/credentials/stripe/resolve?environment=qa", headers=worker)
    assert r.status_code == 404


def test_a_handle_of_another_tenant_is_not_found(api_env: Any) -> None:
    _stripe(api_env)
    r = api_env.client.get("/api/credentials/stripe", headers=api_env.headers("admin", "globex"))
    assert r.status_code == 404
    # A platform key names the tenant of a handle with tenantId.
    r = api_env.client.get("/api/credentials/stripe?tenantId=acme", headers=api_env.admin())
    assert r.status_code == 200


def test_a_non_ascii_digit_in_a_path_is_refused_cleanly(api_env: Any) -> None:
    r = api_env.client.get("/api/credentials/²", headers=api_env.admin())
    assert r.status_code in (404, 422)


def test_get_sends_an_etag_and_honours_if_none_match(api_env: Any) -> None:
    _stripe(api_env)
    admin = api_env.headers("admin", "acme")
    first = api_env.client.get("/api/credentials/stripe", headers=admin)
    etag = first.headers["etag"]
    assert etag.startswith('"1-')
    again = api_env.client.get("/api/credentials/stripe", headers={**admin, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and again.content == b""
    api_env.client.patch("/api/credentials/stripe", json={"name": "Renamed"}, headers=admin)
    changed = api_env.client.get(
        "/api/credentials/stripe", headers={**admin, "If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    # The GET ETag is also an If-Match precondition for rotate.
    r = api_env.client.put(
        "/api/credentials/stripe/secret",
        json={"secretValue": "sk_test_handles_rotated_0003"},
        headers={**admin, "If-Match": changed.headers["etag"]},
    )
    assert r.status_code == 200, r.text


def test_resolve_answers_are_not_cacheable(api_env: Any) -> None:
    record = _stripe(api_env)
    r = api_env.client.post(
        f"/api/credentials/{record.id}/resolve", headers=api_env.headers("worker", "acme")
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
