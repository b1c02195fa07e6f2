"""DESIGN §5 invariant 1 over HTTP: no planted secret comes back in any response but resolve.

Canary secrets are planted through the API in every way a secret can arrive (Flow Studio
``secretValue``, a ``secret`` object, the JSON text of a composite secret, rotations with either
form), then one session drives every endpoint — successes, 404s, 409s, 413 and 422s in which a
canary is sent in a wrongly typed field, an unknown field or a value that fails validation. Every
response body and every response header is scanned for every canary in every encoding
:class:`~flowcred.testing.canary.CanaryScanner` knows, and so is everything logged meanwhile.
Resolve responses are the one place a secret may appear; they are the positive control.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from flowcred.testing.canary import CanaryScanner


class Session:
    """Sends requests and keeps every response for scanning."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.responses: list[tuple[str, httpx.Response]] = []
        self.resolves: list[tuple[str, httpx.Response]] = []

    def call(
        self,
        method: str,
        path: str,
        *,
        expect: int,
        role: tuple[str, str] = ("admin", "*"),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        response = self.env.client.request(
            method, path, headers={**self.env.headers(*role), **(headers or {})}, **kwargs
        )
        label = f"{method} {path} -> {response.status_code}"
        assert response.status_code == expect, f"{label}: {response.text[:500]}"
        if path.endswith("/resolve") and method == "POST":
            self.resolves.append((label, response))
        else:
            self.responses.append((label, response))
        return response


def _drive_session(env: Any, scanner: CanaryScanner) -> tuple[Session, dict[str, int]]:
    s = Session(env)
    c = {
        label: scanner.plant(label)
        for label in (
            "slack-secretValue",
            "api_key-secret-object",
            "twilio-accountSid",
            "twilio-authToken",
            "basic-password",
            "bearer-token",
            "rotate-secretValue",
            "rotate-secret-object",
            "rotate-twilio-json",
            "rotate-stale-ifmatch",
            "rejected-wrong-type",
            "rejected-unknown-field",
            "rejected-secret-key",
            "rejected-pattern",
            "rejected-json",
            "rejected-config-secret",
            "rejected-too-large",
            "rejected-duplicate-handle",
            "rejected-both-forms",
            "rejected-ifmatch-header",
        )
    }
    ids: dict[str, int] = {}
    creds = "/api/credentials"

    # -- plant ------------------------------------------------------------------------------
    ids["slack"] = s.call(
        "POST",
        creds,
        expect=201,
        json={
            "name": "Acme Slack Bot Token",
            "type": "messaging",
            "channel": "slack",
            "tenantId": "acme",
            "secretValue": f"xoxb-{c['slack-secretValue']}",
        },
    ).json()["credentialId"]
    ids["api_key"] = s.call(
        "POST",
        creds,
        expect=201,
        json={
            "name": "Stripe key",
            "type": "api_key",
            "tenantId": "acme",
            "config": {"key_name": "X-Stripe-Key"},
            "secret": {"api_key": c["api_key-secret-object"]},
        },
    ).json()["credentialId"]
    ids["twilio"] = s.call(
        "POST",
        creds,
        expect=201,
        json={
            "name": "Twilio",
            "type": "messaging",
            "channel": "twilio",
            "tenantId": "acme",
            "secretValue": json.dumps(
                {"accountSid": f"AC{c['twilio-accountSid']}", "authToken": c["twilio-authToken"]}
            ),
        },
    ).json()["credentialId"]
    ids["basic"] = s.call(
        "POST",
        creds,
        expect=201,
        json={
            "name": "Basic",
            "type": "basic_auth",
            "tenantId": "acme",
            "config": {"username": "svc-user"},
            "secret": {"password": c["basic-password"]},
        },
    ).json()["credentialId"]
    ids["bearer"] = s.call(
        "POST",
        creds,
        expect=201,
        role=("developer", "acme"),
        json={"name": "Bearer", "type": "bearer_token", "secretValue": c["bearer-token"]},
    ).json()["credentialId"]
    ids["globex"] = s.call(
        "POST",
        creds,
        expect=201,
        json={
            "name": "Globex key",
            "type": "api_key",
            "tenantId": "globex",
            "secret": {"api_key": "globex-not-a-canary-value"},
        },
    ).json()["credentialId"]

    # rotations: Flow Studio string, secret object, composite JSON
    r = s.call(
        "PUT",
        f"{creds}/{ids['api_key']}/secret",
        expect=200,
        json={"secretValue": c["rotate-secretValue"]},
    )
    assert r.headers["etag"] == '"2"'
    s.call(
        "PUT",
        f"{creds}/{ids['basic']}/secret",
        expect=200,
        json={"secret": {"password": c["rotate-secret-object"]}},
        headers={"If-Match": '"1"'},
    )
    s.call(
        "PUT",
        f"{creds}/{ids['twilio']}/secret",
        expect=200,
        role=("developer", "acme"),
        json={
            "secretValue": json.dumps(
                {"accountSid": "AC" + c["twilio-accountSid"], "authToken": c["rotate-twilio-json"]}
            )
        },
    )

    # -- read everything ----------------------------------------------------------------------
    for role in (("admin", "*"), ("admin", "acme"), ("developer", "acme"), ("viewer", "acme")):
        s.call("GET", creds, expect=200, role=role)
        s.call("GET", f"{creds}?type=api_key&family=custom&status=active", expect=200, role=role)
        for cid in ids.values():
            expect = 404 if role[1] == "acme" and cid == ids["globex"] else 200
            s.call("GET", f"{creds}/{cid}", expect=expect, role=role)
            s.call("GET", f"{creds}/{cid}/versions", expect=expect, role=role)
    s.call("GET", f"{creds}?limit=1&cursor={ids['slack']}", expect=200)
    s.call("GET", "/api/types", expect=200, role=("worker", "acme"))
    s.call("PATCH", f"{creds}/{ids['api_key']}", expect=200, json={"name": "Stripe key 2"})
    s.call(
        "PATCH",
        f"{creds}/{ids['basic']}",
        expect=200,
        json={"config": {"username": "svc-user-2"}},
    )
    s.call("POST", f"{creds}/{ids['api_key']}/rollback", expect=200, json={"version": 1})
    s.call("POST", f"{creds}/{ids['api_key']}/test", expect=422)
    # Slack's test calls auth.test under api_base_url: a closed loopback port here, so the
    # failed test's answer is scanned too (no test leaves loopback).
    s.call(
        "PATCH",
        f"{creds}/{ids['slack']}",
        expect=200,
        json={"config": {"api_base_url": "http://127.0.0.1:9/api"}},
    )
    tested = s.call("POST", f"{creds}/{ids['slack']}/test", expect=200, role=("developer", "acme"))
    assert tested.json()["ok"] is False

    # -- resolve: the one response allowed to carry them (positive control) --------------------
    for cid in ids.values():
        s.call("POST", f"{creds}/{cid}/resolve", expect=200, json={"executionId": "run-1"})
    for cid in (ids["slack"], ids["twilio"], ids["basic"], ids["bearer"]):
        s.call("POST", f"{creds}/{cid}/resolve", expect=200, role=("worker", "acme"))
    s.call("POST", f"{creds}/{ids['globex']}/resolve", expect=404, role=("worker", "acme"))
    s.call("POST", f"{creds}/{ids['slack']}/resolve", expect=403, role=("viewer", "acme"))

    # -- rejected input carrying canaries ----------------------------------------------------
    base = {"name": "Rejected", "type": "api_key", "tenantId": "acme"}
    s.call(
        "POST",
        creds,
        expect=422,
        json={**base, "secretValue": {"nested": c["rejected-wrong-type"]}},
    )
    s.call("POST", creds, expect=422, json={**base, "secret": c["rejected-wrong-type"]})
    s.call(
        "POST",
        creds,
        expect=422,
        json={**base, "secret": {"api_key": "x" * 16}, "password": c["rejected-unknown-field"]},
    )
    s.call(
        "POST",
        creds,
        expect=422,
        json={**base, "secret": {"api_key": "x" * 16, c["rejected-secret-key"]: "v"}},
    )
    s.call(
        "POST",
        creds,
        expect=422,
        json={
            "name": "Bad slack",
            "type": "messaging",
            "channel": "slack",
            "tenantId": "acme",
            "secretValue": c["rejected-pattern"],
        },
    )
    s.call(
        "POST",
        creds,
        expect=422,
        json={
            "name": "Bad twilio",
            "type": "messaging",
            "channel": "twilio",
            "tenantId": "acme",
            "secretValue": '{"accountSid": "AC1", "authToken": "' + c["rejected-json"],
        },
    )
    s.call(
        "POST",
        creds,
        expect=422,
        json={**base, "config": {"api_key": c["rejected-config-secret"]}},
    )
    s.call(
        "POST",
        creds,
        expect=422,
        json={
            **base,
            "secret": {"api_key": c["rejected-both-forms"]},
            "secretValue": c["rejected-both-forms"],
        },
    )
    s.call(
        "PATCH",
        f"{creds}/{ids['api_key']}",
        expect=422,
        json={"config": {"api_key": c["rejected-config-secret"]}},
    )
    s.call(
        "PUT",
        f"{creds}/{ids['api_key']}/secret",
        expect=422,
        json={"secretValue": [c["rejected-wrong-type"]]},
    )
    s.call(
        "PUT",
        f"{creds}/{ids['api_key']}/secret",
        expect=422,
        json={"secretValue": c["rejected-unknown-field"], "token": c["rejected-unknown-field"]},
    )
    s.call(
        "PUT",
        f"{creds}/{ids['slack']}/secret",
        expect=422,
        json={"secretValue": c["rejected-pattern"]},
    )
    s.call(
        "PUT",
        f"{creds}/{ids['api_key']}/secret",
        expect=422,
        json={"secretValue": "fine-value-123"},
        headers={"If-Match": c["rejected-ifmatch-header"]},
    )
    s.call(
        "POST",
        creds,
        expect=413,
        content=json.dumps({**base, "secretValue": c["rejected-too-large"] * 40_000}),
        headers={"Content-Type": "application/json"},
    )
    s.call(
        "PUT",
        f"{creds}/{ids['api_key']}/secret",
        expect=409,
        json={"secretValue": c["rotate-stale-ifmatch"]},
        headers={"If-Match": '"2"'},  # version 2 was rotated away from by the rollback
    )
    s.call(
        "POST",
        creds,
        expect=409,
        json={
            "name": "Stripe key",
            "handle": "stripe-key",
            "type": "api_key",
            "tenantId": "acme",
            "secret": {"api_key": c["rejected-duplicate-handle"]},
        },
    )
    s.call("GET", f"{creds}/987654", expect=404)
    s.call("PUT", f"{creds}/987654/secret", expect=404, json={"secretValue": "whatever-1234"})
    s.call(
        "PUT",
        f"{creds}/{ids['globex']}/secret",
        expect=404,
        role=("admin", "acme"),
        json={"secretValue": c["rotate-stale-ifmatch"]},
    )

    # -- bindings, delete, audit ----------------------------------------------------------------
    s.call(
        "PUT",
        "/api/bindings/flow-a",
        expect=200,
        role=("admin", "acme"),
        json={"references": [ids["slack"], "stripe-key"]},
    )
    s.call("GET", "/api/bindings", expect=200)
    s.call("DELETE", f"{creds}/{ids['slack']}", expect=409, role=("admin", "acme"))
    s.call("DELETE", f"{creds}/{ids['slack']}?force=true", expect=204, role=("admin", "acme"))
    s.call("DELETE", f"{creds}/{ids['slack']}", expect=404)
    cursor = None
    pages = 0
    while True:
        query = "/api/audit-events?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = s.call("GET", query, expect=200).json()
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages >= 1
    s.call("GET", "/api/audit-events?eventType=credential&result=failure", expect=200)
    last = env.broker.audit.last_id()
    s.call("GET", f"/api/audit-events/{last}/verify", expect=200)
    s.call("GET", "/health", expect=200)
    s.call("GET", "/openapi.json", expect=200)
    return s, ids


def _scan_response(scanner: CanaryScanner, label: str, response: httpx.Response) -> None:
    scanner.scan_bytes(f"{label} body", response.content)
    for name, value in response.headers.multi_items():
        scanner.scan_text(f"{label} header {name}", f"{name}: {value}")


def test_no_canary_in_any_response_or_log_but_resolve(
    api_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    scanner = CanaryScanner()
    caplog.set_level(logging.DEBUG)
    session, _ids = _drive_session(api_env, scanner)

    for label, response in session.responses:
        _scan_response(scanner, label, response)
    scanner.scan_text("caplog text", caplog.text)
    for record in caplog.records:
        scanner.scan_text(f"log record {record.name}", record.getMessage())
        scanner.scan_text(f"log record args {record.name}", repr(record.args))
        if record.exc_text:
            scanner.scan_text(f"log exc {record.name}", record.exc_text)

    # Positive control: resolve hands out the planted secrets, and the scanner sees them.
    resolved = b"".join(r.content for _, r in session.resolves)
    for label in (
        "slack-secretValue",
        "api_key-secret-object",
        "twilio-accountSid",
        "rotate-twilio-json",
        "rotate-secret-object",
        "bearer-token",
    ):
        assert scanner.contains(resolved.decode(), label), f"resolve did not return {label}"
    assert len(session.responses) > 80
    print(
        f"canary scan: {len(scanner.canaries)} canaries, {len(session.responses)} responses, "
        f"{len(scanner.scanned)} captures, {len(scanner.hits)} hits"
    )
    scanner.assert_clean()


def test_scanner_would_catch_a_leaked_header_or_body(api_env: Any) -> None:
    """The scanning helper itself finds a canary placed in a body or a header."""
    scanner = CanaryScanner()
    value = scanner.plant("probe")
    leaky = httpx.Response(200, headers={"X-Leak": value}, content=b'{"ok": 1}')
    _scan_response(scanner, "probe header", leaky)
    assert [h.where for h in scanner.hits] == ["probe header header x-leak"]
    leaky = httpx.Response(200, content=json.dumps({"v": value}).encode())
    _scan_response(scanner, "probe body", leaky)
    assert len(scanner.hits) == 2
