"""Starting an OAuth authorization from the UI (Save of an OAuth2 config, Re-authorize).

A POST (CSRF-checked) starts the flow through the same :class:`AuthorizationFlow` as ``GET
/api/oauth/{id}/authorize``, audited as the signed-in key, and answers a page that sends the
browser on to the provider: a meta refresh plus a link, because the Content-Security-Policy
allows forms to post only to this site and browsers apply that to a form's redirects too. The
provider's redirect comes back to ``/api/oauth/callback``, which sends a browser on to
``/ui/oauth/done`` (:mod:`flowcred.api.routes.oauth`).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from flowcred.api.deps import get_broker
from flowcred.api.routes.oauth import authorization_flow
from flowcred.errors import InvalidCredential
from flowcred.web.auth import UiUser
from flowcred.web.templating import render


def start_authorization(request: Request, user: UiUser, credential_id: int) -> Response:
    """Start the grant for ``credential_id`` and answer the page that continues to the
    provider. Errors (not an OAuth type, no client id, ...) propagate as flowcred errors."""
    caller = user.caller
    record = caller.view.credentials.get(credential_id, tenant=caller.tenant_filter())
    url = authorization_flow(request).start(
        record.id, caller=caller.view, tenant=caller.tenant_filter()
    )
    try:
        spec = get_broker(request).catalog.get(record.type)
        provider = spec.provider or spec.title
    except InvalidCredential:
        provider = "the provider"
    return render(
        request,
        "authorize_redirect.html",
        {"record": record, "url": url, "provider": provider, "keep_flash": True},
    )
