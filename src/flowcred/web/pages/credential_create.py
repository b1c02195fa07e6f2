"""Create an auth config: family, then type, then the form generated from the catalog; Test
connection on the unsaved values; Save (OAuth2: then authorize).

Routes (editors only: admin, developer; a viewer is refused with an audited 403 on every one):

* ``GET /ui/credentials/new`` — the family chooser; ``?family=F`` — that family's types
  (searchable); ``?type=T`` — the form for type ``T`` (404 page for an unknown type).
* ``POST /ui/credentials/new`` — create through the signed-in caller's broker view, exactly as
  ``POST /api/credentials`` does (tenant: the key's own, ``default`` for a platform key). The
  broker validates; its problems come back next to their fields (422) with the non-secret values
  kept and every secret input empty. Success: flash and 303 to the detail page, or, for an
  authorization-code OAuth type, the page that continues to the provider.
* ``POST /ui/credentials/test`` (JSON, for ``app.js``) — Test Connection of the unsaved values
  through :func:`~flowcred.connectors.credential_test.run_unsaved_test`, answered like
  ``POST /api/credentials/test``; stores nothing.

No secret typed into the form is ever written back into a page or a JSON answer: secret inputs
are rendered without a value, and errors and test messages name fields, never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from flowcred.api.deps import Caller, get_broker
from flowcred.api.routes.connection_tests import test_answer
from flowcred.api.routes.oauth import authorization_flow
from flowcred.catalog import Catalog, CredentialType
from flowcred.connectors.credential_test import run_unsaved_test
from flowcred.connectors.runner import family_for
from flowcred.errors import FlowcredError, HandleConflict, InvalidCredential, UnknownCredentialType
from flowcred.web import forms
from flowcred.web.auth import EDIT_ROLES, UiUser, User, UserForm, require
from flowcred.web.pages.credential_list import FAMILY_LABELS
from flowcred.web.pages.oauth_start import start_authorization
from flowcred.web.routing import UiRoute, error_page
from flowcred.web.templating import render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

NEW = "/ui/credentials/new"

#: The generic, hand-configured OAuth 2.0 type. Its catalog family is ``custom`` (it is not a
#: provider), but people look for it among the OAuth2 providers, so that list shows it first.
GENERIC_OAUTH2 = "oauth2"

#: One line under each family on the chooser.
FAMILY_BLURBS: dict[str, str] = {
    "oauth2": "Sign in at a provider (Google, Microsoft, GitHub, …); flowcred keeps and "
    "refreshes the tokens.",
    "connector": "Databases, message brokers, file storage, enterprise systems and API "
    "services, with their own login forms.",
    "custom": "An API key, a bearer token, basic authentication or an OAuth 2.0 client "
    "configured by hand, for any HTTP API.",
    "messaging": "Slack, email (SMTP, SendGrid), SMS (Twilio, Vonage) and push "
    "notifications (FCM, APNs).",
    "service_account": "A cloud service account key that flowcred turns into access tokens.",
}

CATEGORY_LABELS: dict[str, str] = {
    "databases": "Database",
    "message_brokers": "Message broker",
    "file_storage": "File storage",
    "enterprise": "Enterprise system",
    "api_services": "API service",
}

#: The page's own inputs and their lengths (``maxlength`` hints; the broker is the authority).
_COMMON_LIMITS = {"name": 256, "environment": 64, "handle": 128}

STEPS = ("Family", "Type", "Details")


# -- rules the pages show (they decide only what is offered; the broker decides the rest) ----


def family_types(catalog: Catalog, family: str) -> list[CredentialType]:
    """The types listed under ``family``, by title; OAuth2 providers start with the generic
    hand-configured OAuth 2.0 type."""
    types = sorted((t for t in catalog if t.family == family), key=lambda t: t.title.lower())
    if family == "oauth2" and GENERIC_OAUTH2 in catalog:
        generic = catalog.get(GENERIC_OAUTH2)
        types = [generic, *(t for t in types if t.name != generic.name)]
    return types


def has_live_test(ctype: CredentialType) -> bool:
    """A live Test Connection exists for the type: a connector family serves its ``test.kind``
    (the same rule the broker's test applies; a type without one is refused there)."""
    return family_for(ctype) is not None


def authorizes(ctype: CredentialType) -> bool:
    """Saving the type is followed by the OAuth authorization-code grant: the type has an
    ``oauth`` block with that grant and an authorization URL to send the browser to — the
    catalog's template, an issuer to discover it from, or the config field of that name (the
    generic type), as :class:`~flowcred.runtime.authorization.AuthorizationFlow` resolves it."""
    spec = ctype.oauth
    if spec is None or spec.grant != "authorization_code":
        return False
    names = {f.name for f in ctype.fields}
    return bool(spec.authorization_url or spec.issuer or {"authorization_url", "issuer"} & names)


def create_tenant(caller: Caller) -> str:
    """The tenant a new config goes to: the key's own; ``default`` for a platform key (as
    ``POST /api/credentials`` without ``tenantId``)."""
    return "default" if caller.platform else caller.key.tenant


# -- pages ------------------------------------------------------------------------------------


def _steps(current: int, family: str | None) -> list[dict[str, Any]]:
    hrefs = [NEW, f"{NEW}?family={family}" if family else None, None]
    return [
        {"label": label, "href": hrefs[i] if i < current else None, "current": i == current}
        for i, label in enumerate(STEPS)
    ]


def _not_found(request: Request) -> Response:
    return error_page(request, 404, "Not found", "There is no credential type with that name.")


def _family_page(request: Request, catalog: Catalog) -> Response:
    families = []
    for value, label in FAMILY_LABELS.items():
        count = len(family_types(catalog, value))
        if count:
            families.append(
                {
                    "value": value,
                    "label": label,
                    "blurb": FAMILY_BLURBS.get(value, ""),
                    "count": count,
                }
            )
    return render(
        request,
        "credential_new_family.html",
        {"active": "credentials", "families": families, "steps": _steps(0, None)},
    )


def _type_page(request: Request, catalog: Catalog, family: str) -> Response:
    items = []
    for ctype in family_types(catalog, family):
        category = CATEGORY_LABELS.get(ctype.category or "", "")
        sub = " · ".join(p for p in (ctype.provider, category) if p and p != ctype.title)
        items.append(
            {
                "name": ctype.name,
                "title": ctype.title,
                "sub": sub,
                "description": ctype.description,
                "testable": has_live_test(ctype),
                "search": " ".join(
                    (ctype.title, ctype.name, ctype.provider or "", category, *ctype.aliases)
                ),
            }
        )
    return render(
        request,
        "credential_new_type.html",
        {
            "active": "credentials",
            "family": family,
            "family_label": FAMILY_LABELS[family],
            "items": items,
            "steps": _steps(1, family),
        },
    )


def _form_page(
    request: Request,
    ctype: CredentialType,
    *,
    common: Mapping[str, str],
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The form for ``ctype``. ``values`` fill the non-secret inputs only; the secret inputs
    are drawn empty whatever was submitted (forms.field_views guarantees it)."""
    errors = errors or {}
    family = GENERIC_OAUTH2 if ctype.name == GENERIC_OAUTH2 else ctype.family
    with_oauth = authorizes(ctype)
    redirect_uri = authorization_flow(request).redirect_uri if with_oauth else ""
    return render(
        request,
        "credential_form.html",
        {
            "active": "credentials",
            "ctype": ctype,
            "family_label": FAMILY_LABELS.get(family, family),
            "config_fields": forms.field_views(ctype, values=values, errors=errors, secret=False),
            "secret_fields": forms.field_views(ctype, errors=errors, secret=True),
            "common": {k: common.get(k, "") for k in _COMMON_LIMITS},
            "limits": _COMMON_LIMITS,
            "errors": errors,
            "can_test": has_live_test(ctype),
            "authorizes": with_oauth,
            "redirect_uri": redirect_uri,
            "steps": _steps(2, family),
        },
        status_code=status_code,
    )


@router.get("/ui/credentials/new")
async def new_credential(
    request: Request, user: User, family: str | None = None, type: str | None = None
) -> Response:
    await require(request, user, EDIT_ROLES)
    catalog = get_broker(request).catalog
    if type is not None:
        try:
            ctype = catalog.get(type)
        except UnknownCredentialType:
            return _not_found(request)
        return _form_page(request, ctype, common={"environment": "default"})
    if family is not None:
        if family not in FAMILY_LABELS:
            return error_page(request, 404, "Not found", "There is no such family of types.")
        return _type_page(request, catalog, family)
    return _family_page(request, catalog)


# -- create -----------------------------------------------------------------------------------


def _text(form: FormData, name: str) -> str:
    raw = form.get(name)
    return raw.strip() if isinstance(raw, str) else ""


def _form_type(catalog: Catalog, form: FormData) -> CredentialType | None:
    name = _text(form, "type")
    if not name:
        return None
    try:
        return catalog.get(name)
    except UnknownCredentialType:
        return None


@router.post("/ui/credentials/new")
async def create_credential(request: Request, user_form: UserForm) -> Response:
    user, form = user_form
    await require(request, user, EDIT_ROLES)
    ctype = _form_type(get_broker(request).catalog, form)
    if ctype is None:
        return _not_found(request)
    common = {k: _text(form, k) for k in _COMMON_LIMITS}
    config, secret = forms.submitted(ctype, form)
    caller = user.caller

    def create() -> Any:
        return caller.view.credentials.create(
            name=common["name"],
            type=ctype.name,
            tenant=create_tenant(caller),
            environment=common["environment"] or "default",
            handle=common["handle"] or None,
            config=config,
            secret=secret or None,
        )

    try:
        record = await run_in_threadpool(create)
    except InvalidCredential as exc:
        return _form_page(
            request,
            ctype,
            common=common,
            values=config,
            errors=forms.field_errors(exc, ctype),
            status_code=422,
        )
    except HandleConflict:
        return _form_page(
            request,
            ctype,
            common=common,
            values=config,
            errors={"handle": "is already used by another auth config in this environment"},
            status_code=409,
        )
    user.session.add_flash("ok", f"Saved {record.name}.")
    if authorizes(ctype):
        return await _authorize(request, user, record.id)
    return RedirectResponse(f"/ui/credentials/{record.id}", status_code=303)


async def _authorize(request: Request, user: UiUser, credential_id: int) -> Response:
    """Continue a saved OAuth config to its provider. The config exists whatever happens
    next, so a failure to start (e.g. discovery is down) lands on its page with the reason."""
    try:
        return await run_in_threadpool(start_authorization, request, user, credential_id)
    except FlowcredError as exc:
        user.session.add_flash("error", f"Could not start the authorization: {exc}")
        return RedirectResponse(f"/ui/credentials/{credential_id}", status_code=303)


# -- test connection (unsaved) ----------------------------------------------------------------


@router.post("/ui/credentials/test")
async def test_unsaved(request: Request, user_form: UserForm) -> Response:
    user, form = user_form
    await require(request, user, EDIT_ROLES)
    ctype = _form_type(get_broker(request).catalog, form)
    if ctype is None:
        return JSONResponse(
            {"detail": "There is no credential type with that name.", "errors": {}},
            status_code=422,
        )
    if not has_live_test(ctype):
        return JSONResponse(
            {"detail": f"{ctype.title} has no live connection test.", "errors": {}},
            status_code=422,
        )
    config, secret = forms.submitted(ctype, form)
    caller = user.caller

    def test() -> Any:
        return run_unsaved_test(
            caller.view,
            type_name=ctype.name,
            config=config,
            secret=secret or None,
            secret_value=None,
            tenant=create_tenant(caller),
        )

    try:
        result = await run_in_threadpool(test)
    except InvalidCredential as exc:
        return JSONResponse(
            {"detail": str(exc), "errors": forms.field_errors(exc, ctype)}, status_code=422
        )
    return JSONResponse(test_answer(result).model_dump(mode="json"))
