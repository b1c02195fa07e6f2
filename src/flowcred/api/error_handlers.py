"""One mapping from flowcred's error tree to HTTP, and 422s that never echo what was sent.

FastAPI's default validation response repeats the offending input (``input``, ``ctx``); a
``secretValue`` of the wrong type would then come straight back in the body. These handlers
answer with field locations and messages only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from flowcred.audit.chain import AuditChainBroken
from flowcred.audit.recorder import AuditWriteFailed
from flowcred.errors import (
    AccessDenied,
    ConfigurationError,
    ConflictError,
    CredentialExpired,
    CredentialNotFound,
    CredentialTypeMismatch,
    DecryptionFailed,
    FlowcredError,
    InvalidCredential,
    StoreError,
)

log = logging.getLogger("flowcred.api")

# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[FlowcredError], int], ...] = (
    (CredentialNotFound, 404),
    (InvalidCredential, 422),
    (CredentialTypeMismatch, 422),
    (AccessDenied, 403),
    (ConflictError, 409),
    (CredentialExpired, 409),
    (AuditWriteFailed, 503),
    (StoreError, 503),
    (ConfigurationError, 503),
    (DecryptionFailed, 500),
    (AuditChainBroken, 500),
)


def status_for(exc: FlowcredError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _body(exc: FlowcredError, status: int) -> dict[str, object]:
    if isinstance(exc, CredentialNotFound):
        # Another tenant's id and an unknown id get the same words (no existence oracle).
        return {"detail": "credential not found", "errors": []}
    if isinstance(exc, InvalidCredential):
        return {
            "detail": "invalid request",
            "errors": [{"field": p.field, "message": p.message} for p in exc.problems],
        }
    if status >= 500:
        return {"detail": "the request could not be completed; see the server log", "errors": []}
    return {"detail": str(exc), "errors": []}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FlowcredError)
    async def flowcred_error(_request: Request, exc: FlowcredError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            # The message names ids and classes only; redaction masks anything registered.
            log.error("request failed: %s: %s", type(exc).__name__, exc)
        return JSONResponse(_body(exc, status), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for error in exc.errors():
            loc = [
                str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")
            ]
            errors.append({"field": ".".join(loc) or "body", "message": str(error.get("msg", ""))})
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)
