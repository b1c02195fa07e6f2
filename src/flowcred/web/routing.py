"""The route class of every ``/ui`` page: errors become pages, never JSON or a stack trace.

* :class:`~flowcred.web.auth.SignInRequired` → 303 to ``/ui/login?next=<this page>`` (a
  script's request, which asks for JSON, gets 401 instead);
* :class:`~flowcred.web.auth.UiForbidden`, CSRF refusals, ``AccessDenied`` → 403 page;
* ``CredentialNotFound`` → 404 page, exactly like an id that does not exist;
* any other flowcred error → its REST status (:func:`flowcred.api.error_handlers.status_for`)
  with its message, which by the error tree's contract never holds a secret.

Routes that re-render a form with field errors catch ``InvalidCredential`` themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from flowcred.api.error_handlers import status_for
from flowcred.errors import AccessDenied, CredentialNotFound, FlowcredError
from flowcred.web.auth import SignInRequired, UiForbidden
from flowcred.web.security import CsrfRefused
from flowcred.web.templating import render


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return render(request, "error.html", {"title": title, "message": message}, status_code=status)


class UiRoute(APIRoute):
    """An APIRoute whose failures are answered as pages of the UI."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except SignInRequired:
                if wants_json(request) or request.method != "GET":
                    if wants_json(request):
                        return JSONResponse({"detail": "sign in again"}, status_code=401)
                    return RedirectResponse("/ui/login", status_code=303)
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                return RedirectResponse("/ui/login?next=" + quote(target, safe=""), status_code=303)
            except UiForbidden as exc:
                return error_page(request, 403, "Not allowed", exc.message)
            except CsrfRefused:
                return error_page(
                    request,
                    403,
                    "Form expired",
                    "This form was not sent from this page, or it has expired. "
                    "Go back, reload the page and try again.",
                )
            except CredentialNotFound:
                return error_page(
                    request, 404, "Not found", "There is no auth config with that id here."
                )
            except AccessDenied as exc:
                return error_page(request, 403, "Not allowed", str(exc))
            except FlowcredError as exc:
                return error_page(request, status_for(exc), "Could not do that", str(exc))
            except RequestValidationError:
                return error_page(request, 400, "Bad request", "The request was not understood.")
            except HTTPException as exc:
                if exc.status_code == 404:
                    return error_page(request, 404, "Not found", "There is no such page.")
                return error_page(request, exc.status_code, "Could not do that", str(exc.detail))

        return handler
