"""``/docs``, ``/redoc`` and ``/openapi.json``, served with no third-party host involved.

FastAPI's defaults load Swagger UI and ReDoc from a CDN: the pages fail offline, leak every
visit to that CDN, and would need it allowed in a Content-Security-Policy. Here the assets come
from the ``fastapi-offline`` package (Swagger UI bundle and CSS, ReDoc standalone, MIT licensed)
and are served by this app under :data:`ASSETS_URL`; the pages reference nothing else (no Google
fonts either).

The pages are open by default: they describe the API and hold no data. With
``FLOWCRED_DOCS_REQUIRE_KEY=true`` the three answer 401 without a valid ``X-API-Key`` (any
role); a browser then needs something that adds the header (a proxy, a browser extension).
The ``X-API-Key`` security scheme itself is declared by the authentication dependency
(:data:`flowcred.api.deps.API_KEY_SCHEME`), so the Authorize button of Swagger UI works.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from flowcred.api.deps import authenticate

ASSETS_URL = "/docs-assets"
OPENAPI_URL = "/openapi.json"


def assets_dir() -> Path:
    """Where the installed ``fastapi-offline`` keeps Swagger UI and ReDoc."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI, *, require_key: bool) -> None:
    """Serve the OpenAPI document, Swagger UI and ReDoc on ``app`` (built with its docs off)."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")

    async def guard(request: Request) -> None:
        if require_key:
            await authenticate(request)  # 401 / 429, audited like any failed authentication

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        await guard(request)
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        await guard(request)
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": False, "validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        await guard(request)
        return get_redoc_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
