"""One auth config: its config (secrets only as set / not set), versions, status history and audit
events, and Test connection. The other actions (Edit, Rotate secret, Roll back, Re-authorize,
Delete) are in :mod:`flowcred.web.pages.credential_actions`.

Every read goes through the signed-in caller's broker view with the key's tenant filter, so
another tenant's id is answered exactly like a missing one (404), and the reads are audited as
that key. The page is given records, the catalog's field specs and the *names* of the secret
fields that hold a value (:meth:`~flowcred.credential_reads.CredentialReads.secret_fields_set`),
never a secret value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from flowcred.api.deps import get_broker
from flowcred.api.routes.connection_tests import test_answer
from flowcred.api.routes.oauth import authorization_flow
from flowcred.audit import AuditFilter
from flowcred.audit.events import CREDENTIAL, TOKEN, AuditEvent
from flowcred.catalog.schema import CredentialType
from flowcred.connectors.credential_test import run_stored_test
from flowcred.connectors.runner import family_for
from flowcred.errors import CredentialNotFound, FlowcredError, InvalidCredential
from flowcred.records import Credential
from flowcred.web.auth import EDIT_ROLES, UiUser, User, UserForm, require
from flowcred.web.forms import field_views
from flowcred.web.pages.credential_list import FAMILY_LABELS, STATUS_LABELS, status_key
from flowcred.web.routing import UiRoute, wants_json
from flowcred.web.templating import render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

#: The events the "Status history" section shows: (event type, action).
STATUS_EVENTS: tuple[tuple[str, str], ...] = (
    (CREDENTIAL, "tested"),
    (TOKEN, "authorized"),
    (TOKEN, "refreshed"),
    (TOKEN, "refresh_failed"),
)
HISTORY_LIMIT = 20
AUDIT_LIMIT = 50

GRANT_LABELS = {
    "active": "Authorized",
    "not_authorized": "Not authorized",
    "expired": "Authorization expired",
}


def credential_id_of(text: str) -> int:
    """The id a path names: ASCII digits only (a handle or anything else names nothing here)."""
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        raise CredentialNotFound(text[:32])
    return int(text)


def detail_url(credential_id: int) -> str:
    return f"/ui/credentials/{credential_id}"


@dataclass(frozen=True)
class Shown:
    """A credential as its pages need it: the record and its type (None when the catalog no
    longer has the type)."""

    record: Credential
    spec: CredentialType | None

    @property
    def type_title(self) -> str:
        return self.spec.title if self.spec is not None else self.record.type

    @property
    def family_label(self) -> str:
        return FAMILY_LABELS.get(self.record.family, self.record.family)


def type_of(request: Request, record: Credential) -> CredentialType | None:
    try:
        return get_broker(request).catalog.get(record.type)
    except InvalidCredential:
        return None


def find(request: Request, user: UiUser, credential_id: int) -> Shown:
    """The credential through the caller's view (audited ``viewed``; 404 for another tenant's)."""
    record = user.caller.view.credentials.get(credential_id, tenant=user.caller.tenant_filter())
    return Shown(record, type_of(request, record))


def has_live_test(spec: CredentialType | None) -> bool:
    return spec is not None and family_for(spec) is not None


def _message(event: AuditEvent) -> str:
    details = event.details
    for key in ("message", "oauthError", "error"):
        value = details.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def status_history(request: Request, record: Credential) -> list[AuditEvent]:
    """The credential's tested / authorized / refresh events, newest first (one indexed query
    per kind, so page views, which add ``viewed`` events, never crowd them out)."""
    audit = get_broker(request).audit
    events: list[AuditEvent] = []
    for event_type, action in STATUS_EVENTS:
        events.extend(
            audit.list(
                AuditFilter(
                    event_type=event_type,
                    action=action,
                    resource_type=CREDENTIAL,
                    resource_id=record.id,
                    tenant=record.tenant,
                ),
                limit=HISTORY_LIMIT,
                newest_first=True,
            )
        )
    events.sort(key=lambda e: e.id, reverse=True)
    return events[:HISTORY_LIMIT]


def audit_events(request: Request, record: Credential) -> list[AuditEvent]:
    return get_broker(request).audit.list(
        # resource_type too: a flow may be named "5", and its events are not credential 5's.
        AuditFilter(resource_type=CREDENTIAL, resource_id=record.id, tenant=record.tenant),
        limit=AUDIT_LIMIT,
        newest_first=True,
    )


def _config_rows(shown: Shown, set_fields: list[str] | None) -> list[dict[str, Any]]:
    """One row per field: a config value as text, a secret field as set / not set only."""
    record = shown.record
    rows: list[dict[str, Any]] = []
    if shown.spec is None:
        return [
            {"label": k, "name": k, "secret": False, "value": str(v)}
            for k, v in sorted(record.config.items())
        ]
    views = {v.name: v for v in field_views(shown.spec, values=record.config)}
    for spec in shown.spec.fields:
        view = views[spec.name]
        if spec.secret:
            state = "unknown" if set_fields is None else spec.name in set_fields
            rows.append({"label": view.label, "name": spec.name, "secret": True, "set": state})
        else:
            shown_value = view.value or (f"{view.default} (default)" if view.default else "—")
            rows.append(
                {"label": view.label, "name": spec.name, "secret": False, "value": shown_value}
            )
    return rows


def detail_context(request: Request, user: UiUser, credential_id: int) -> dict[str, Any]:
    """Everything the detail page shows (blocking: run it in a worker thread)."""
    view = user.caller.view
    tenant = user.caller.tenant_filter()
    record, versions = view.credentials.describe(credential_id, tenant=tenant)
    shown = Shown(record, type_of(request, record))
    try:
        set_fields: list[str] | None = view.credentials.secret_fields_set(record.id, tenant=tenant)
    except FlowcredError:
        set_fields = None  # audited by the broker; the page still shows the rest
    flows = view.bindings.flows_using(record)
    grant = None
    authorizable = authorization_flow(request).uses_authorization_code(record)
    if authorizable:
        state = get_broker(request).tokens.status(record.id, record.tenant).state
        grant = {"state": state, "label": GRANT_LABELS.get(state, state)}
    return {
        "active": "credentials",
        "shown": shown,
        "record": record,
        "status": status_key(record),
        "status_label": STATUS_LABELS[status_key(record)],
        "versions": versions,
        "config_rows": _config_rows(shown, set_fields),
        "flows": flows,
        "history": [(e, _message(e)) for e in status_history(request, record)],
        "events": audit_events(request, record) if user.is_admin else [],
        "can_test": has_live_test(shown.spec),
        "can_authorize": authorizable,
        "grant": grant,
    }


@router.get("/ui/credentials/{credential_id}")
async def credential_detail(request: Request, user: User, credential_id: str) -> Response:
    cid = credential_id_of(credential_id)
    context = await run_in_threadpool(detail_context, request, user, cid)
    return render(request, "credential_detail.html", context)


def _problems_text(exc: InvalidCredential) -> str:
    return "; ".join(f"{p.field} {p.message}" for p in exc.problems)


@router.post("/ui/credentials/{credential_id}/test")
async def test_credential(request: Request, user_form: UserForm, credential_id: str) -> Response:
    """Test connection of the stored config: JSON for the page's script (as the REST route
    answers), or for a plain form post a flash and back to the page."""
    user, _form = user_form
    await require(request, user, EDIT_ROLES)
    cid = credential_id_of(credential_id)

    def work() -> Any:
        shown = find(request, user, cid)
        return run_stored_test(user.caller.view, shown.record.id, tenant=shown.record.tenant)

    try:
        result = await run_in_threadpool(work)
    except InvalidCredential as exc:
        if wants_json(request):
            errors = {p.field: p.message for p in exc.problems}
            return JSONResponse({"detail": _problems_text(exc), "errors": errors}, status_code=422)
        user.session.add_flash("error", "The test could not run: " + _problems_text(exc))
        return RedirectResponse(detail_url(cid), status_code=303)
    if wants_json(request):
        return JSONResponse(test_answer(result).model_dump(mode="json"))
    if result.ok:
        user.session.add_flash("ok", f"Connection works: {result.message}")
    else:
        user.session.add_flash("error", f"Connection failed: {result.message}")
    return RedirectResponse(detail_url(cid), status_code=303)
