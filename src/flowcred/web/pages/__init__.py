"""The web UI's pages, one module per area; each exports ``router`` (a ``UiRoute`` router).

:data:`ROUTERS` is the order they are included in (sign-in first: it owns ``/`` and ``/ui``).
"""

from __future__ import annotations

from fastapi import APIRouter

from flowcred.web.pages import credential_list, signin

ROUTERS: tuple[APIRouter, ...] = (signin.router, credential_list.router)
