"""Item 15 (first sentence): a refused authenticated request naming a credential is audited once.

422 (body or query validation, a bad If-Match), 413 (declared or streamed), 400 (an unreadable
body) and 409 (a stale If-Match) each leave exactly one event with result ``failure`` for the
credential, as 401/403/404 already leave theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flowcred.audit.log import AuditFilter

Send = Callable[[Any, int], Any]


def _events(api_env: Any, cid: int) -> list[Any]:
    return api_env.broker.audit.list(AuditFilter(resource_id=str(cid)), limit=1000)


CASES: dict[str, tuple[int, Send]] = {
    "422 unknown body key": (
        422,
        lambda env, cid: env.client.patch(
            f"/api/credentials/{cid}", json={"nmae": "x"}, headers=env.admin()
        ),
    ),
    "422 malformed JSON": (
        422,
        lambda env, cid: env.client.put(
            f"/api/credentials/{cid}/secret",
            content=b"{",
            headers=env.admin(**{"Content-Type": "application/json"}),
        ),
    ),
    "422 rollback version true": (
        422,
        lambda env, cid: env.client.post(
            f"/api/credentials/{cid}/rollback", json={"version": True}, headers=env.admin()
        ),
    ),
    "422 unknown query parameter": (
        422,
        lambda env, cid: env.client.get(f"/api/credentials/{cid}?bogus=1", headers=env.admin()),
    ),
    "422 bad If-Match": (
        422,
        lambda env, cid: env.client.put(
            f"/api/credentials/{cid}/secret",
            json={"secretValue": "sk_test_refusal_000000002"},
            headers=env.admin(**{"If-Match": '"abc"'}),
        ),
    ),
    "413 declared": (
        413,
        lambda env, cid: env.client.put(
            f"/api/credentials/{cid}/secret",
            content=b"{" + b" " * (env.settings.max_body_bytes + 10) + b"}",
            headers=env.admin(**{"Content-Type": "application/json"}),
        ),
    ),
    "413 streamed": (
        413,
        lambda env, cid: env.client.put(
            f"/api/credentials/{cid}/secret",
            content=iter([b" " * 65536] * (env.settings.max_body_bytes // 65536 + 2)),
            headers=env.admin(**{"Content-Type": "application/json"}),
        ),
    ),
    "400 unreadable body": (
        400,
        lambda env, cid: env.client.patch(
            f"/api/credentials/{cid}",
            content=b'{"name": "\xff\xfe"}',
            headers=env.admin(**{"Content-Type": "application/json"}),
        ),
    ),
    "409 stale If-Match": (
        409,
        lambda env, cid: env.client.put(
            f"/api/credentials/{cid}/secret",
            json={"secretValue": "sk_test_refusal_000000003"},
            headers=env.admin(**{"If-Match": '"7"'}),
        ),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_request_naming_a_credential_leaves_one_failure_event(
    any_db_api_env: Any, case: str
) -> None:
    api_env = any_db_api_env
    status, send = CASES[case]
    cid = api_env.seed("acme").id
    before = len(_events(api_env, cid))
    response = send(api_env, cid)
    assert response.status_code == status, response.text
    new = _events(api_env, cid)[before:]
    assert [(e.result, e.resource_id) for e in new] == [("failure", str(cid))], [
        e.to_dict() for e in new
    ]
    assert new[0].actor.kind == "api_key"
    assert api_env.broker.credentials.get(cid).current_version == 1


def test_refused_request_of_a_tenant_key_is_audited_in_its_tenant(api_env: Any) -> None:
    cid = api_env.seed("acme").id
    before = len(_events(api_env, cid))
    r = api_env.client.patch(
        f"/api/credentials/{cid}", json={"nmae": "x"}, headers=api_env.headers("admin", "acme")
    )
    assert r.status_code == 422
    new = _events(api_env, cid)[before:]
    assert [(e.result, e.tenant, e.details.get("fields")) for e in new] == [
        ("failure", "acme", ["nmae"])
    ]


def test_oversized_body_without_a_key_is_401_and_not_read(api_env: Any) -> None:
    r = api_env.client.post(
        "/api/credentials",
        content=b"{" + b" " * (api_env.settings.max_body_bytes + 10) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 401
