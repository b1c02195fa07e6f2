"""``POST /api/credentials/{id}/test`` and ``POST /api/credentials/test``: Test Connection.

The stored credential's test and the test of an unsaved create body (a form testing before
saving). Both are sync routes, so FastAPI runs them in its thread pool: the runner's blocking
work (DNS, the wait on the family's bounded thread) never runs on the event loop.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from flowcred.api.deps import Editor, deny_tenant
from flowcred.api.routes.credentials import CredentialRef, tenant_for
from flowcred.api.routing import ApiRoute
from flowcred.api.schemas import ERROR_RESPONSES, CredentialCreate, TestResult
from flowcred.connectors import base as connector_base
from flowcred.connectors.credential_test import run_stored_test, run_unsaved_test
from flowcred.connectors.http import http_status
from flowcred.errors import FieldProblem, InvalidCredential

router = APIRouter(
    prefix="/api/credentials",
    tags=["credentials"],
    responses=ERROR_RESPONSES,
    route_class=ApiRoute,
)


def test_answer(result: connector_base.TestResult) -> TestResult:
    """The answer shape of every Test Connection (REST and the web UI's script)."""
    return TestResult(
        ok=result.ok,
        status=http_status(result.ok, result.message),
        message=result.message,
        latencyMs=round(result.latency_ms, 1),
        checkedAt=result.checked_at,
    )


@router.post("/{credential_id}/test", response_model=TestResult)
def test_credential(target: CredentialRef, request: Request, caller: Editor) -> TestResult:
    """Live test against the credential's system with its family's test (``http``: a GET to
    ``test_url``; databases, brokers, ...: a real login), bounded in time, destinations checked
    against the SSRF policy. Sets the status to active or error; audited once, with the outcome.
    A failed test answers 200 with ``ok: false``; a type without a live test, or without the
    config it needs (``test_url``), answers 422."""
    tenant = tenant_for(caller, request, target)
    return test_answer(
        run_stored_test(caller.view, target.ref, tenant=tenant, environment=target.environment)
    )


@router.post("/test", response_model=TestResult)
def test_unsaved_credential(body: CredentialCreate, request: Request, caller: Editor) -> TestResult:
    """Test a credential before saving it (the create body); stores nothing. Audited once as
    ``tested`` without a resource id. The caller sends the secret itself, so no stored secret
    can be sent to a destination the caller chose."""
    if body.type == "messaging":
        if not body.channel:
            raise InvalidCredential([FieldProblem("channel", "is required when type is messaging")])
        type_name = body.channel
    else:
        type_name = body.type
    tenant = body.tenantId or (caller.key.tenant if not caller.platform else "default")
    if not caller.owns(tenant):
        deny_tenant(caller, request, tenant)
    return test_answer(
        run_unsaved_test(
            caller.view,
            type_name=type_name,
            config=body.config,
            secret=body.secret,
            secret_value=body.secretValue,
            tenant=tenant,
        )
    )
