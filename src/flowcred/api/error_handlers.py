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
from flowcred.catalog.schema import _ECHOABLE_KEY_RE as ECHOABLE_KEY_RE
from flowcred.errors import (
    AccessDenied,
    CircuitOpen,
    ConfigurationError,
    ConflictError,
    CredentialExpired,
    CredentialNotFound,
    CredentialTypeMismatch,
    DecryptionFailed,
    FlowcredError,
    InvalidCredential,
    StoreError,
    TokenRefreshFailed,
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
    # Token errors: a refused grant or client needs a person (409: the credential's state);
    # a token endpoint that failed is an upstream failure (502); a paused one is 503.
    if isinstance(exc, TokenRefreshFailed):
        return 409 if exc.permanent else 502
    if isinstance(exc, CircuitOpen):
        return 503
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
    if isinstance(exc, TokenRefreshFailed):
        # The message names the credential, the endpoint (origin + path) and an RFC 6749
        # error code; never a token or the provider's error_description.
        return {
            "detail": str(exc),
            "errors": [],
            "oauthError": exc.oauth_error,
            "reauthorize": exc.reauthorize,
        }
    if isinstance(exc, CircuitOpen):
        return {"detail": str(exc), "errors": [], "retryAfter": round(max(exc.retry_in, 0))}
    if status >= 500:
        return {"detail": "the request could not be completed; see the server log", "errors": []}
    return {"detail": str(exc), "errors": []}


def shown_field(name: object) -> str | None:
    """``name`` if it may be repeated in a message or audit record, else None.

    The catalog's rule (``flowcred.catalog.schema``): a name typed by a caller is echoed only
    when it looks like an identifier (short, a letter first, no '-' or '.'); real tokens are
    longer or carry separators, so a secret pasted as a key or query name is never repeated.
    """
    if isinstance(name, int) and not isinstance(name, bool):
        return str(name)
    if isinstance(name, str) and ECHOABLE_KEY_RE.match(name):
        return name
    return None


def validation_problems(exc: RequestValidationError) -> list[dict[str, str]]:
    """The problems of a refused request as ``{"field", "message"}``, never echoing input.

    A body that is not JSON is "malformed JSON body" (FastAPI puts the character offset where
    the field name goes); an unknown key or query parameter is "unknown field" / "unknown query
    parameter", named only when :func:`shown_field` allows.
    """
    problems: list[dict[str, str]] = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        where = loc[0] if loc else "body"
        kind = error.get("type", "")
        if kind == "json_invalid":
            problems.append({"field": "body", "message": "malformed JSON body"})
            continue
        if kind == "extra_forbidden":
            # The only name in a location that the caller typed rather than the API declared.
            noun = "query parameter" if where == "query" else "field"
            shown = shown_field(loc[-1]) if len(loc) > 1 else None
            if shown is None:
                problems.append(
                    {"field": str(where), "message": f"unknown {noun} (name not shown)"}
                )
            else:
                path = [str(p) for p in loc[1:-1]] + [shown]
                problems.append({"field": ".".join(path), "message": f"unknown {noun}"})
            continue
        parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
        problems.append({"field": ".".join(parts) or "body", "message": str(error.get("msg", ""))})
    return problems


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FlowcredError)
    async def flowcred_error(_request: Request, exc: FlowcredError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            # The message names ids and classes only; redaction masks anything registered.
            log.error("request failed: %s: %s", type(exc).__name__, exc)
        headers = None
        if isinstance(exc, CircuitOpen):
            headers = {"Retry-After": str(max(1, round(exc.retry_in)))}
        return JSONResponse(_body(exc, status), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": "invalid request", "errors": validation_problems(exc)}, status_code=422
        )
