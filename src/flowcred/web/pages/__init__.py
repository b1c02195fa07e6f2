"""The web UI's pages, one module per area; each exports ``router`` (a ``UiRoute`` router).

:data:`ROUTERS` is the order they are included in: sign-in first (it owns ``/`` and ``/ui``),
and ``/ui/credentials/new`` before ``/ui/credentials/{id}``.
"""

from __future__ import annotations

from fastapi import APIRouter

from flowcred.web.pages import (
    api_keys_page,
    audit_page,
    credential_actions,
    credential_create,
    credential_delete,
    credential_detail,
    credential_list,
    signin,
    types_page,
)

ROUTERS: tuple[APIRouter, ...] = (
    signin.router,
    credential_list.router,
    credential_create.router,
    credential_detail.router,
    credential_actions.router,
    credential_delete.router,
    audit_page.router,
    api_keys_page.router,
    types_page.router,
)
