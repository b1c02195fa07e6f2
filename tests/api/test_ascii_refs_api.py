"""Issue 8, item 5 over REST: bindings name credentials of the tenant; ``²`` is no id.

Before the fix ``PUT /api/bindings/f {"references": ["²"]}`` answered 200, after which every
credential read of the tenant answered 500; unknown references and a platform key without a tenant
were accepted.
"""

from __future__ import annotations

from typing import Any


def test_rest_bindings_superscript_is_422_and_reads_stay_200(api_env: Any) -> None:
    acme = api_env.headers("admin", "acme")
    cid = api_env.seed("acme").id
    put = api_env.client.put("/api/bindings/f", json={"references": ["²"]}, headers=acme)
    assert put.status_code == 422, put.text
    assert put.json()["errors"][0]["field"] == "references[0]"
    assert api_env.client.get(f"/api/credentials/{cid}", headers=acme).status_code == 200
    assert api_env.client.get("/api/credentials", headers=acme).status_code == 200


def test_rest_bindings_unknown_references_are_422_naming_them(api_env: Any) -> None:
    acme = api_env.headers("admin", "acme")
    cid = api_env.seed("acme").id
    put = api_env.client.put(
        "/api/bindings/f", json={"references": [cid, "nope-handle", 424242]}, headers=acme
    )
    assert put.status_code == 422, put.text
    message = put.json()["errors"][0]["message"]
    assert "nope-handle" in message and "424242" in message and f"{cid}," not in message
    ok = api_env.client.put("/api/bindings/f", json={"references": [cid]}, headers=acme)
    assert ok.status_code == 200 and ok.json()["references"] == [cid]


def test_rest_platform_admin_must_name_the_tenant(api_env: Any) -> None:
    cid = api_env.seed("acme").id
    put = api_env.client.put("/api/bindings/f", json={"references": [cid]}, headers=api_env.admin())
    assert put.status_code == 422 and put.json()["errors"][0]["field"] == "tenantId"
    by_body = api_env.client.put(
        "/api/bindings/f", json={"references": [cid], "tenantId": "acme"}, headers=api_env.admin()
    )
    assert by_body.status_code == 200 and by_body.json()["tenantId"] == "acme"
    by_query = api_env.client.put(
        "/api/bindings/g?tenantId=acme", json={"references": [cid]}, headers=api_env.admin()
    )
    assert by_query.status_code == 200 and by_query.json()["tenantId"] == "acme"
    gone = api_env.client.delete("/api/bindings/g?tenantId=acme", headers=api_env.admin())
    assert gone.status_code == 204
    assert [b.flow for b in api_env.broker.bindings.list()] == ["f"]
