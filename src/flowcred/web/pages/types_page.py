"""The credential-type catalog: every type with its family, category and fields."""

from __future__ import annotations

from fastapi import APIRouter

from flowcred.web.routing import UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)
