"""Item 19: /docs and /redoc use local assets only; the OpenAPI declares the X-API-Key scheme."""

from __future__ import annotations

import re
from typing import Any

ASSET_RE = re.compile(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]|url\s*:\s*['"]([^'"]+)['"]""")


def _urls(html: str) -> list[str]:
    return [a or b for a, b in ASSET_RE.findall(html)]


def test_docs_pages_reference_only_local_assets(api_env: Any) -> None:
    for page in ("/docs", "/redoc"):
        r = api_env.client.get(page)
        assert r.status_code == 200, page
        urls = _urls(r.text)
        assert urls, page
        for url in urls:
            assert url.startswith("/"), (page, url)
        assert "http://" not in r.text and "https://" not in r.text, page


def test_docs_assets_are_served_by_the_app(api_env: Any) -> None:
    seen = set()
    for page in ("/docs", "/redoc"):
        for url in _urls(api_env.client.get(page).text):
            if url == "/openapi.json":
                continue
            r = api_env.client.get(url)
            assert r.status_code == 200, url
            assert len(r.content) > 1000, url
            seen.add(url.rsplit("/", 1)[-1])
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"} <= seen


def test_openapi_declares_the_api_key_scheme_on_authenticated_routes(api_env: Any) -> None:
    spec = api_env.client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A flowcred API key (`flowcred apikeys create`).",
    }
    resolve = spec["paths"]["/api/credentials/{credential_id}/resolve"]["post"]
    assert {"ApiKey": []} in resolve["security"]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_docs_can_require_a_key(make_api_env: Any) -> None:
    env = make_api_env(docs_require_key=True)
    for page in ("/docs", "/redoc", "/openapi.json"):
        assert env.client.get(page).status_code == 401, page
        assert env.client.get(page, headers=env.headers("viewer", "acme")).status_code == 200
