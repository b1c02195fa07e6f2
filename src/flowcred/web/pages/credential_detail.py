"""One auth config: its config (secrets only as set / not set), versions, status history and audit
events, and the actions Edit, Test, Rotate secret, Roll back, Re-authorize and Delete.
"""

from __future__ import annotations

from fastapi import APIRouter

from flowcred.web.routing import UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)
