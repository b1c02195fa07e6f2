"""One HTTPS call to a provider's verification endpoint, with the failures people act on.

The messaging channels (Slack, SendGrid, Twilio, Vonage, FCM, APNs) and the REST-based cloud
tests (BigQuery, Cloud Storage, Snowflake's login request) all do the same thing: build a URL
from a configurable base (``api_base_url``, defaulting to the provider's real endpoint, so a
contract test can point it at a loopback server), send one request with the credential, and
read a JSON answer. This module owns the parts they share:

* the base URL comes from config, must be ``http`` or ``https`` and loses its trailing slash;
* redirects are never followed, so the credential never reaches a host other than the one
  configured (and checked by the runner's destination policy);
* a network failure becomes :class:`~flowcred.connectors.base.ConnectionTestError` with a
  fixed phrase from :mod:`flowcred.connectors.failures`; the URL (which may carry an
  account SID or project id) and httpx's own text are never part of the message;
* ``http2`` is opt-in per call: APNs requires HTTP/2, which httpx negotiates by ALPN over TLS
  (the ``h2`` package); over plain ``http://`` (a loopback test server) httpx speaks HTTP/1.1.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from flowcred.connectors.base import ConnectionTestError, TestTarget
from flowcred.connectors.failures import TIMED_OUT, network_reason

USER_AGENT = "flowcred-connection-test"


def base_url(target: TestTarget, default: str, field: str = "api_base_url") -> str:
    """``target.config[field]`` (or ``default`` when unset), checked and without a trailing
    slash. Raises :class:`ConnectionTestError` naming the field when it is not an http(s) URL."""
    value = target.config.get(field) or default
    if not isinstance(value, str):
        raise ConnectionTestError(f"{field} must be a URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectionTestError(f"{field} must be an http:// or https:// URL with a host")
    return value.rstrip("/")


def check_secret_destination(url: str) -> None:
    """Hold a URL that comes from the *secret* (a key file's ``token_uri``) to the runner's
    destination policy, which only sees config fields.

    Raises :class:`~flowcred.errors.DestinationRefused` (the runner reports it like a refused
    config destination). Uses :func:`flowcred.connectors.runner.current_policy` when the runner
    is installed; without it (a family run on its own, as in the contract tests) there is no
    policy to apply.
    """
    try:
        runner = importlib.import_module("flowcred.connectors.runner")
    except ImportError:
        return
    runner.current_policy().check_url(url)


def path_part(value: str) -> str:
    """``value`` quoted to be one path segment (no ``/``, ``?`` or ``#`` survives)."""
    return quote(value, safe="")


def send(
    method: str,
    url: str,
    *,
    timeout: float,
    what: str,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
    http2: bool = False,
) -> httpx.Response:
    """Send one request and return the response, whatever its status.

    ``what`` names the far end in failure messages ("Slack", "the token endpoint"). Raises
    :class:`ConnectionTestError` for a failure before any response arrived.
    """
    all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    if http2:
        try:
            import h2  # noqa: F401  (httpx's HTTP/2 needs it; an optional extra)
        except ImportError:
            raise ConnectionTestError(
                f"{what} needs HTTP/2: pip install 'flowcred[connectors]' (it provides h2)"
            ) from None
    try:
        with httpx.Client(
            timeout=httpx.Timeout(timeout), follow_redirects=False, http2=http2
        ) as client:
            return client.request(
                method,
                url,
                headers=all_headers,
                auth=auth,
                params=params,
                json=json_body,
                data=form,
            )
    except httpx.TimeoutException:
        raise ConnectionTestError(f"{what} did not answer: {TIMED_OUT}") from None
    except httpx.HTTPError as exc:
        reason = network_reason(exc) or f"request failed ({type(exc).__name__})"
        raise ConnectionTestError(f"cannot reach {what}: {reason}") from None


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or ``{}`` when the body is not one."""
    try:
        parsed = json.loads(response.content or b"null")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def short(value: Any, limit: int = 120) -> str:
    """A provider-supplied word or phrase, made safe to quote in one line of a message."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unexpected_status(what: str, response: httpx.Response) -> ConnectionTestError:
    """The error for a status the endpoint's documentation does not list."""
    if response.is_redirect:
        return ConnectionTestError(
            f"{what} answered with a redirect (HTTP {response.status_code}), which is not "
            "followed: check the base URL"
        )
    if response.status_code == 429:
        return ConnectionTestError(f"{what} is rate limiting requests (HTTP 429); try later")
    if response.status_code >= 500:
        return ConnectionTestError(f"{what} had a server error (HTTP {response.status_code})")
    return ConnectionTestError(f"{what} answered HTTP {response.status_code}")
