"""The audit trail (admin): filters, paging, and Verify chain with its result."""

from __future__ import annotations

from fastapi import APIRouter

from flowcred.web.routing import UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)
