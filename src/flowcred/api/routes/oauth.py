"""``/api/oauth``: start an authorization-code grant and receive the provider's redirect.

* ``GET /api/oauth/{credential_id}/authorize`` (admin, developer; id or handle like every
  ``{id}`` route) answers ``302`` to the provider's authorization URL, or ``200``
  ``{"authorizationUrl": ...}`` with ``?redirect=false`` or ``Accept: application/json`` (for a
  UI that opens the URL itself).
* ``GET /api/oauth/callback`` is the redirect URI. It needs no API key: the browser arrives
  from the provider, and the one-time state is the authority (the initiating caller is in the
  audit event). It accepts the parameters providers add (``scope``, ``session_state``, ``iss``,
  ...) and refuses any other. Success redirects to ``FLOWCRED_OAUTH_DONE_URL`` (with
  ``?credential=ID&status=authorized``); without it a browser (``Accept: text/html``) is sent
  to the web UI's ``/ui/oauth/done`` (``?status=refused&reason=...`` on a refusal) and any
  other client gets ``{"credentialId", "status"}``; a refusal is ``400`` naming the reason,
  never the code or the state.

The :class:`~flowcred.runtime.authorization.AuthorizationFlow` is ``app.state.oauth_flow``
(``create_app(..., oauth_flow=...)``), else the broker's default flow.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from flowcred.api.deps import Editor, client_address, get_broker
from flowcred.api.routes.credentials import CredentialRef
from flowcred.api.routing import ApiRoute
from flowcred.api.schemas import ERROR_RESPONSES
from flowcred.runtime.authorization import (
    AuthorizationFlow,
    AuthorizationRefused,
    default_flow,
)

router = APIRouter(
    prefix="/api/oauth", tags=["oauth"], responses=ERROR_RESPONSES, route_class=ApiRoute
)

#: The callback path, exempt from the API key (no role) and from the HTTPS requirement.
CALLBACK_PATH = "/api/oauth/callback"
#: Where a browser goes after the callback when FLOWCRED_OAUTH_DONE_URL is not set.
UI_DONE_PATH = "/ui/oauth/done"

_Param = Annotated[str | None, Query(max_length=4096, include_in_schema=False)]


def authorization_flow(request: Request) -> AuthorizationFlow:
    """``app.state.oauth_flow``, or the broker's default flow (built once per app)."""
    flow: AuthorizationFlow | None = getattr(request.app.state, "oauth_flow", None)
    if flow is None:
        flow = request.app.state.oauth_flow = default_flow(get_broker(request))
    return flow


def _browser(request: Request) -> bool:
    """A person's browser (it asks for HTML first), not a script or a test client."""
    accept = request.headers.get("accept", "")
    return accept.startswith("text/html")


def _wants_json(request: Request, redirect: bool) -> bool:
    if not redirect:
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@router.get(
    "/{credential_id}/authorize",
    status_code=302,
    responses={200: {"description": "`{authorizationUrl}` (with `redirect=false`)"}},
)
def authorize(
    request: Request,
    caller: Editor,
    target: CredentialRef,
    redirect: Annotated[bool, Query(description="false: answer JSON, not a 302.")] = True,
) -> Response:
    """Start an OAuth authorization for the credential: 302 to the provider's consent page."""
    url = authorization_flow(request).start(
        target.ref,
        caller=caller.view,
        tenant=target.scope(caller),
        environment=target.environment,
    )
    if _wants_json(request, redirect):
        return JSONResponse({"authorizationUrl": url}, headers={"Cache-Control": "no-store"})
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


@router.get("/callback", responses={302: {"description": "to FLOWCRED_OAUTH_DONE_URL"}})
def callback(
    request: Request,
    state: _Param = None,
    code: _Param = None,
    error: _Param = None,
    error_description: _Param = None,
    error_uri: _Param = None,
    scope: _Param = None,
    session_state: _Param = None,
    iss: _Param = None,
    authuser: _Param = None,
    hd: _Param = None,
    prompt: _Param = None,
) -> Response:
    """The provider's redirect (no API key): complete the authorization ``state`` names."""
    flow = authorization_flow(request)
    settings = get_broker(request).settings
    to_ui = not settings.oauth_done_url and settings.ui_enabled and _browser(request)
    try:
        done = flow.complete(state, code, error, source=client_address(request))
    except AuthorizationRefused as exc:
        if to_ui:
            query = urlencode({"status": "refused", "reason": exc.reason})
            return RedirectResponse(f"{UI_DONE_PATH}?{query}", status_code=303)
        body: dict[str, object] = {"detail": str(exc), "reason": exc.reason, "errors": []}
        if exc.oauth_error is not None:
            body["oauthError"] = exc.oauth_error
        return JSONResponse(body, status_code=400, headers={"Cache-Control": "no-store"})
    if to_ui:
        query = urlencode({"credential": done.credential_id, "status": "authorized"})
        return RedirectResponse(f"{UI_DONE_PATH}?{query}", status_code=303)
    done_url = settings.oauth_done_url
    if done_url:
        query = urlencode({"credential": done.credential_id, "status": "authorized"})
        separator = "&" if urlsplit(done_url).query else "?"
        return RedirectResponse(done_url + separator + query, status_code=302)
    return JSONResponse(
        {"credentialId": done.credential_id, "status": "authorized"},
        headers={"Cache-Control": "no-store"},
    )


__all__ = ["CALLBACK_PATH", "router"]
