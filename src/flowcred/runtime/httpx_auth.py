"""``provider.httpx_auth(ref)``: an :class:`httpx.Auth` that applies a credential to requests.

Each request resolves the credential (a cache hit in steady use; for an OAuth type an access
token valid for at least the margin) and adds its headers, query parameters and cookies. If
the API answers 401, the credential is resolved once more with a forced token refresh and the
request is retried once; a second 401 is returned as it is.

Credentials go only to the origin the auth was bound to (the first request's scheme, host and
port, or ``origin=``): a request to any other origin is sent without them. httpx follows
redirects inside a single auth step, and on a redirect to another origin it drops the
``Authorization`` header (which is where OAuth tokens and Basic credentials travel); with the
default ``follow_redirects=False`` a redirect is handed back to the caller and nothing is
re-sent. A credential type that places its secret in another header, the query or a cookie
should be used without ``follow_redirects=True``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING

import httpx

from flowcred.runtime.material import CredentialMaterial

if TYPE_CHECKING:
    from flowcred.runtime.credential_provider import CredentialProvider
    from flowcred.runtime.provider import Ref


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host, port)


class FlowcredAuth(httpx.Auth):
    """Applies one credential; sync and async. Holds a reference, never a secret."""

    def __init__(
        self,
        provider: CredentialProvider,
        ref: Ref,
        *,
        execution_id: str | None = None,
        origin: str | None = None,
    ) -> None:
        self._provider = provider
        self._ref = ref
        self._execution_id = execution_id
        self._origin = _origin(httpx.URL(origin)) if origin else None

    def __repr__(self) -> str:
        return f"FlowcredAuth(ref={self._ref!r})"

    def _allowed(self, request: httpx.Request) -> bool:
        here = _origin(request.url)
        if self._origin is None:
            self._origin = here
        return here == self._origin

    @staticmethod
    def _apply(request: httpx.Request, material: CredentialMaterial) -> httpx.Request:
        for name, value in material.headers.items():
            request.headers[name] = value.reveal()
        if material.query:
            request.url = request.url.copy_merge_params(material.reveal_query())
        if material.cookies:
            jar = httpx.Cookies(material.reveal_cookies())
            jar.set_cookie_header(request)
        return request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._allowed(request):
            yield request
            return
        material = self._provider.resolve(self._ref, execution_id=self._execution_id)
        response = yield self._apply(request, material)
        if response.status_code == 401 and material.fields.get("access_token") is not None:
            fresh = self._provider.refresh(self._ref, execution_id=self._execution_id)
            yield self._apply(request, fresh)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._allowed(request):
            yield request
            return
        material = await self._provider.aresolve(self._ref, execution_id=self._execution_id)
        response = yield self._apply(request, material)
        if response.status_code == 401 and material.fields.get("access_token") is not None:
            fresh = await self._provider.arefresh(self._ref, execution_id=self._execution_id)
            yield self._apply(request, fresh)
