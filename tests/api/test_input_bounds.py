"""Items 9 and 10 (REST): integers bounded, booleans are not integers, nothing typed echoed back."""

from __future__ import annotations

from typing import Any

from flowcred.audit.log import AuditFilter

PASTED = "sk_live_51Hpasted0Secret0As0A0Key0000000000"


def _rotated(api_env: Any) -> int:
    record = api_env.seed("acme")
    api_env.broker.credentials.rotate(record.id, secret={"api_key": "seed-key-rotated-0000001"})
    return int(record.id)


def test_rollback_version_beyond_64_bits_is_422_not_500(api_env: Any) -> None:
    cid = _rotated(api_env)
    for version in (2**70, 2**63):
        r = api_env.client.post(
            f"/api/credentials/{cid}/rollback", json={"version": version}, headers=api_env.admin()
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "version"
    assert api_env.broker.credentials.get(cid).current_version == 2


def test_rollback_version_true_is_not_version_one(api_env: Any) -> None:
    cid = _rotated(api_env)
    for version in (True, "1", 1.0):
        r = api_env.client.post(
            f"/api/credentials/{cid}/rollback", json={"version": version}, headers=api_env.admin()
        )
        assert r.status_code == 422, (version, r.text)
    assert api_env.broker.credentials.get(cid).current_version == 2


def test_ids_in_paths_beyond_64_bits_answer_404_cleanly(api_env: Any) -> None:
    for ref in (str(2**63), str(2**70), "9" * 40):
        for method, suffix in (("GET", ""), ("GET", "/versions"), ("POST", "/resolve")):
            r = api_env.client.request(
                method, f"/api/credentials/{ref}{suffix}", headers=api_env.admin()
            )
            assert r.status_code == 404, (ref, suffix, r.status_code, r.text)
    r = api_env.client.get(f"/api/audit-events/{2**70}/verify", headers=api_env.admin())
    assert r.status_code in (404, 422)


def test_unknown_body_key_that_may_be_a_secret_is_not_echoed(api_env: Any) -> None:
    cid = api_env.seed("acme").id
    body = {"name": "x", PASTED: "1"}
    r = api_env.client.patch(f"/api/credentials/{cid}", json=body, headers=api_env.admin())
    assert r.status_code == 422
    assert PASTED not in r.text
    assert r.json()["errors"] == [{"field": "body", "message": "unknown field (name not shown)"}]
    events = api_env.broker.audit.list(AuditFilter(resource_id=str(cid)), limit=1000)
    assert PASTED not in repr([e.to_dict() for e in events])
    # An identifier-like unknown key is still named, as the catalog does.
    r = api_env.client.patch(f"/api/credentials/{cid}", json={"nmae": "x"}, headers=api_env.admin())
    assert r.json()["errors"] == [{"field": "nmae", "message": "unknown field"}]


def test_unknown_query_name_that_may_be_a_secret_is_not_echoed(api_env: Any) -> None:
    r = api_env.client.get(f"/api/credentials?{PASTED}=1", headers=api_env.admin())
    assert r.status_code == 422
    assert PASTED not in r.text


def test_malformed_json_body_is_reported_as_such(api_env: Any) -> None:
    cid = api_env.seed("acme").id
    r = api_env.client.patch(
        f"/api/credentials/{cid}",
        content=b'{"name": "x",,}',
        headers=api_env.admin(**{"Content-Type": "application/json"}),
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "body", "message": "malformed JSON body"}]


def test_binding_references_are_bounded_strict_integers(api_env: Any) -> None:
    api_env.seed("acme")
    for ref in (2**70, 2**63, True, 0):
        r = api_env.client.put(
            "/api/bindings/flow-a",
            json={"references": [ref], "tenantId": "acme"},
            headers=api_env.admin(),
        )
        assert r.status_code == 422, (ref, r.status_code, r.text)
    assert api_env.broker.bindings.list(tenant="acme") == []
