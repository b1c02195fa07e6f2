"""The ``http`` family: GET the credential's ``test_url`` with its material applied.

Serves every catalog type whose ``test.kind`` is ``http`` (``api_key`` in a header, query
parameter or cookie, ``bearer_token``, ``basic_auth``): the material is placed exactly as a
resolve places it (:func:`flowcred.catalog.request_placement.place`), so the test proves what
a flow will send. A 2xx answer means the credential works.

Redirects: each hop is checked against the destination policy again; a redirect within the
same origin (scheme, host, port) is followed with the credential (at most
:data:`MAX_REDIRECTS`), and a redirect to another origin is *not* followed: the test stops and
reports where it was sent, so the credential never reaches a host it was not configured for.
Vendors' own verification endpoints (Slack ``auth.test``, ...) are their families' business,
not this module's: only a configured ``test_url`` is called.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from flowcred.catalog import default_catalog
from flowcred.catalog.request_placement import place
from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.runner import current_policy
from flowcred.errors import FieldProblem, InvalidCredential

MAX_REDIRECTS = 5
#: The message of a 200 answer (other 2xx answers name their status: "... (HTTP 204)").
ACCEPTED = "credential accepted"
_STATUS_RE = re.compile(r"\bHTTP (\d{3})\b")


def http_status(ok: bool, message: str) -> int | None:
    """The HTTP status a result of this family got: named in the message ("... HTTP 401 ..."),
    or 200 for :data:`ACCEPTED`; None for other families' results."""
    found = _STATUS_RE.search(message)
    if found:
        return int(found.group(1))
    return 200 if ok and message == ACCEPTED else None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _why(status: int) -> str:
    if status in (401, 403):
        return "authentication failed: the server did not accept the credential"
    if status == 404:
        return "not found: check test_url"
    if status >= 500:
        return "server error"
    return "unexpected answer"


@register("http")
class HttpTest(ConnectionTest):
    """GET ``config.test_url`` with the credential; 2xx passes."""

    live_types = frozenset({"api_key", "basic_auth", "bearer_token"})

    live_tested = True

    def check(self, target: TestTarget, timeout: float) -> str:
        url = target.config.get("test_url")
        if not isinstance(url, str) or not url:
            raise InvalidCredential(
                [FieldProblem("config.test_url", "no live test for this type: set test_url")]
            )
        ctype = default_catalog().get(target.type)
        secret = {name: value.reveal() for name, value in target.secret.items()}
        placement = place(ctype, target.config, secret)
        policy = current_policy()
        start = _origin(url)
        try:
            # A client per test, so the credential's cookies live exactly as long as the call.
            with httpx.Client(
                timeout=httpx.Timeout(timeout),
                follow_redirects=False,
                cookies=placement.cookies,
                trust_env=False,
            ) as client:
                answer = self._get(client, url, placement.headers, placement.query)
                for _ in range(MAX_REDIRECTS):
                    if not answer.is_redirect:
                        break
                    location = answer.headers.get("location", "")
                    url = urljoin(str(answer.url), location)
                    policy.check_url(url)
                    if _origin(url) != start:
                        raise ConnectionTestError(
                            f"redirected (HTTP {answer.status_code}) to another host "
                            f"({_origin(url)[1]}); not followed with the credential"
                        )
                    answer = self._get(client, url, placement.headers, placement.query)
                else:
                    if answer.is_redirect:
                        raise ConnectionTestError(f"more than {MAX_REDIRECTS} redirects")
        except httpx.TimeoutException:
            raise ConnectionTestError(f"timed out after {timeout:g} s") from None
        except httpx.ConnectError as exc:
            text = str(exc).lower()
            if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
                raise ConnectionTestError(f"host not found: {start[1]}") from None
            raise ConnectionTestError(f"connection refused by {start[1]}:{start[2]}") from None
        except httpx.HTTPError as exc:
            raise ConnectionTestError(f"request failed: {type(exc).__name__}") from None
        status = answer.status_code
        if 200 <= status < 300:
            return ACCEPTED if status == 200 else f"{ACCEPTED} (HTTP {status})"
        raise ConnectionTestError(f"rejected with HTTP {status} ({_why(status)})")

    @staticmethod
    def _get(client: httpx.Client, url: str, headers: dict[str, str], query: dict[str, str]) -> Any:
        # Merged into the URL's own query: ``params=`` would replace it (test_url=...?a=1).
        target = httpx.URL(url).copy_merge_params(query) if query else httpx.URL(url)
        return client.get(target, headers=headers)
