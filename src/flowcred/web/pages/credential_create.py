"""Create an auth config: family, then type, then the form generated from the catalog; Test
connection on the unsaved values; Save (OAuth2: then authorize).
"""

from __future__ import annotations

from fastapi import APIRouter

from flowcred.web.routing import UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)
