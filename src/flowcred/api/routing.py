"""The route class of every ``/api`` router: who is calling first, then what they sent.

FastAPI reads and parses the body before it runs a route's dependencies, so a malformed body
without a key answered 422 and anyone could probe the schema without a key. :class:`ApiRoute`
changes the order for every route at once:

1. authenticate (401 / 429) and check the role (403), both audited as before;
2. refuse query parameters the route does not declare (422): a misspelt filter used to be
   ignored and the list answered with everything;
3. only then read and validate the body and run the route.

A request that names a credential (a ``credential_id`` in its path) and is refused at step 2 or
3 with 422, 413 or 400 leaves one audit event with result ``failure`` for that credential, as
every refusal by the broker already does. Errors the broker raises are audited there, so they
are not audited again here.

Field names in refusals follow the catalog's rule (:func:`flowcred.api.error_handlers.shown_field`):
a key that does not look like an identifier is not repeated, since it may be a pasted secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from flowcred.api.deps import Caller, RoleCheck, authenticate, get_broker
from flowcred.api.error_handlers import validation_problems
from flowcred.audit.events import CREDENTIAL
from flowcred.references import MAX_ID

# The audit action of a refused request, by route (endpoint function) name.
_ACTIONS = {
    "get_credential": "viewed",
    "list_versions": "viewed",
    "update_credential": "updated",
    "rotate_secret": "rotated",
    "rollback_secret": "rolled_back",
    "delete_credential": "deleted",
    "resolve_credential": "resolved",
    "test_credential": "tested",
}
_AUDITED_STATUSES = frozenset({400, 413, 422})
_REF_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


def _walk(dependant: Dependant) -> list[Dependant]:
    out, todo = [], [dependant]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(current.dependencies)
    return out


def declared_query_names(dependant: Dependant) -> frozenset[str]:
    """Every query parameter name (alias) the route or one of its dependencies declares."""
    return frozenset(field.alias for current in _walk(dependant) for field in current.query_params)


def _role_check(dependant: Dependant) -> RoleCheck | None:
    for current in _walk(dependant):
        if isinstance(current.call, RoleCheck):
            return current.call
    return None


class ApiRoute(APIRoute):
    """An APIRoute that authenticates before reading the body and refuses unknown query names."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        declared = declared_query_names(self.dependant)
        role_check = _role_check(self.dependant)
        action = _ACTIONS.get(self.name)

        async def handler(request: Request) -> Response:
            caller: Caller | None = None
            if role_check is not None:
                caller = await authenticate(request)
                await role_check(caller, request)
            try:
                unknown = [name for name in request.query_params if name not in declared]
                if unknown:
                    raise RequestValidationError(
                        [
                            {"type": "extra_forbidden", "loc": ("query", name), "msg": ""}
                            for name in dict.fromkeys(unknown)
                        ]
                    )
                return await original(request)
            except RequestValidationError as exc:
                if caller is not None and action is not None:
                    fields = [p["field"] for p in validation_problems(exc)]
                    await _audit_refusal(request, caller, action, 422, fields)
                raise
            except HTTPException as exc:
                if (
                    caller is not None
                    and action is not None
                    and exc.status_code in _AUDITED_STATUSES
                ):
                    await _audit_refusal(request, caller, action, exc.status_code, [])
                raise

        return handler


async def _audit_refusal(
    request: Request, caller: Caller, action: str, status: int, fields: list[str]
) -> None:
    """One ``failure`` event for the credential the path names (fields as shown to the client)."""
    raw = str(request.path_params.get("credential_id", ""))
    if not raw:
        return
    # A path that is no id or handle at all is not repeated (it may be anything pasted).
    ref: int | str | None = None
    if raw.isascii() and raw.isdigit():
        ref = int(raw)
    elif _REF_RE.match(raw):
        ref = raw
    tenant = caller.tenant_filter()
    if tenant is None and isinstance(ref, int) and 0 < ref <= MAX_ID:
        tenant = await run_in_threadpool(get_broker(request).tenant_of, ref)
    details: dict[str, Any] = {
        "attempted": action,
        "error": "InvalidRequest" if status == 422 else "RequestRefused",
        "status": status,
    }
    if fields:
        details["fields"] = sorted(set(fields))
    await run_in_threadpool(
        get_broker(request).audit_event,
        caller.view.access,
        CREDENTIAL,
        action,
        "failure",
        tenant=tenant,
        resource_type=CREDENTIAL,
        resource_id=ref,
        details=details,
    )
