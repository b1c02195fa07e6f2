"""Incoming webhook verification with flowgen's credential files, without flowgen's defects.

:func:`verify` is the contract: ``verify(headers, credentials)`` returns when the request may
pass and raises :class:`~flowcred.errors.WebhookUnauthorized` (carrying the
``WWW-Authenticate`` challenge) when it may not. The rules are flowgen's ``http_endpoint``
rules, kept:

* no credentials configured (``None``, ``{}``, an :class:`HttpCredentials` with neither field,
  an :class:`McpCredentials` with no keys) -> no check, the request passes;
* otherwise a request without ``Authorization`` is refused;
* ``Authorization: Bearer T`` is checked against ``bearer_auth`` only -- never a fall-through
  to ``basic_auth`` -- and for MCP credentials against each of ``api_keys``;
* ``Authorization: Basic B`` is checked against ``basic_auth`` only;
* any other scheme, or more than one ``Authorization`` header, is refused.

and flowgen's defects fixed: comparisons run in constant time (:func:`hmac.compare_digest` over
bytes, and every MCP key is compared even after a match), and a refusal is one
:class:`~flowcred.errors.WebhookUnauthorized` whatever the reason, so the HTTP layers
(:mod:`flowcred.webhook_asgi`) answer the same 401 body for missing and wrong credentials.

Optionally a user-level JWT is required as well (:mod:`flowcred.webhook_jwt`): then both checks
must pass. The shared secret stays in ``Authorization`` (it is what flowgen's
``credentials_path`` describes) and the JWT travels in its own header, ``X-User-Token`` unless
configured otherwise.

:func:`effective_credentials` is flowgen's fallback: an endpoint's own credentials replace the
worker default entirely; fields are never merged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from flowcred.credential_files.http import HttpCredentials, McpCredentials
from flowcred.errors import WebhookUnauthorized
from flowcred.files import kind_for_task, load_credentials

if TYPE_CHECKING:
    from flowcred.webhook_jwt import JwtVerifier

__all__ = [
    "DEFAULT_REALM",
    "WebhookCredentials",
    "challenge_for",
    "check_layout",
    "effective_credentials",
    "is_configured",
    "load_webhook_credentials",
    "verify",
]

log = logging.getLogger("flowcred.webhooks")

DEFAULT_REALM = "flowcred"

#: What an endpoint can be configured with; ``None`` and ``{}`` mean "no credentials".
WebhookCredentials: TypeAlias = HttpCredentials | McpCredentials | Mapping[str, Any] | None

# Headers as any of: a dict, Starlette/httpx ``Headers`` (their ``items()`` repeat duplicates),
# or ASGI's raw ``[(b"name", b"value"), ...]`` list.
HeaderSource: TypeAlias = Mapping[str, str] | Iterable[tuple[bytes, bytes]]


def _typed(credentials: WebhookCredentials) -> HttpCredentials | McpCredentials | None:
    """The credentials as one of the typed formats, ``None`` when nothing is configured."""
    if credentials is None:
        return None
    if isinstance(credentials, HttpCredentials | McpCredentials):
        return credentials
    if isinstance(credentials, Mapping) and not credentials:
        return None
    raise TypeError(
        "webhook credentials must be HttpCredentials, McpCredentials, None or {} "
        f"(load a file with flowcred.files.load_credentials), not {type(credentials).__name__}"
    )


def is_configured(credentials: WebhookCredentials) -> bool:
    """Whether ``credentials`` make any check apply (``None``, ``{}`` and empty files do not)."""
    typed = _typed(credentials)
    if typed is None:
        return False
    if isinstance(typed, McpCredentials):
        return bool(typed.api_keys)
    return typed.configured


def load_webhook_credentials(
    credentials: WebhookCredentials = None,
    credentials_path: str | os.PathLike[str] | None = None,
    kind: str = "http",
) -> WebhookCredentials:
    """``credentials``, or the file at ``credentials_path`` read by
    :func:`flowcred.files.load_credentials` as ``kind`` (``http`` / ``http_endpoint`` or
    ``mcp`` / ``mcp_tool``). Loading happens once, at start; a missing or malformed file raises
    :class:`~flowcred.errors.CredentialsFileError` naming the path (never the content)."""
    if credentials_path is None:
        return credentials
    if credentials is not None:
        raise ValueError("give credentials or credentials_path, not both")
    if kind_for_task(kind) not in ("http", "mcp"):
        raise ValueError(f"webhook credentials files are http or mcp, not {kind!r}")
    loaded = load_credentials(credentials_path, kind)
    assert isinstance(loaded, HttpCredentials | McpCredentials)
    return loaded


def effective_credentials(
    endpoint: WebhookCredentials, worker_default: WebhookCredentials
) -> WebhookCredentials:
    """The endpoint's own credentials when it has any file at all, else the worker default.

    Whole replacement, as flowgen does: an endpoint whose file sets only ``basic_auth`` does not
    inherit the worker's ``bearer_auth``, and an endpoint whose file is ``{}`` (an empty
    :class:`HttpCredentials`) turns the check off for that endpoint. Only ``None`` -- no
    ``credentials_path`` on the endpoint -- falls back.
    """
    return worker_default if endpoint is None else endpoint


def challenge_for(credentials: WebhookCredentials, realm: str = DEFAULT_REALM) -> str:
    """The ``WWW-Authenticate`` value for ``credentials``: the schemes that could succeed.

    It depends on the configuration only, never on what the request sent, so a missing and a
    wrong credential get the same answer.
    """
    typed = _typed(credentials)
    schemes: list[str] = []
    if isinstance(typed, McpCredentials) or (
        isinstance(typed, HttpCredentials) and typed.bearer_auth is not None
    ):
        schemes.append("Bearer")
    if isinstance(typed, HttpCredentials) and typed.basic_auth is not None:
        schemes.append("Basic")
    return ", ".join(f'{scheme} realm="{realm}"' for scheme in schemes or ["Bearer"])


def header_values(headers: HeaderSource, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive), duplicates kept, in order."""
    wanted = name.lower()
    items: Iterable[tuple[Any, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    found: list[str] = []
    for key, value in items:
        key_text = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if key_text.lower() == wanted:
            found.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return found


def _same(presented: bytes, expected: str) -> bool:
    return hmac.compare_digest(presented, expected.encode())


def _bearer_matches(token: bytes, typed: HttpCredentials | McpCredentials) -> bool:
    if not token:
        return False
    if isinstance(typed, McpCredentials):
        matched = False
        for key in typed.api_keys:  # no early exit: the time does not say which key matched
            matched |= _same(token, key.reveal())
        return matched
    return typed.bearer_auth is not None and _same(token, typed.bearer_auth.reveal())


def _basic_matches(encoded: str, typed: HttpCredentials | McpCredentials) -> bool:
    if not isinstance(typed, HttpCredentials) or typed.basic_auth is None:
        return False
    try:
        presented = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{typed.basic_auth.username}:{typed.basic_auth.password.reveal()}"
    return _same(presented, expected)


def _refuse(reason: str, credentials: WebhookCredentials, realm: str) -> WebhookUnauthorized:
    # The reason goes to the log (for the operator), never into the response: the caller sees
    # one answer for every refusal. No header value is ever logged.
    log.info("webhook request refused: %s", reason)
    return WebhookUnauthorized(challenge_for(credentials, realm))


def check_layout(credentials: WebhookCredentials, jwt: JwtVerifier | None) -> None:
    """Refuse (``ValueError``) a JWT in ``Authorization`` when a shared secret needs it too."""
    if (
        jwt is not None
        and jwt.requirement.header.lower() == "authorization"
        and is_configured(credentials)
    ):
        raise ValueError(
            "the user JWT cannot travel in Authorization when the endpoint has a shared secret; "
            "use another header (the default is X-User-Token)"
        )


def verify(
    headers: HeaderSource,
    credentials: WebhookCredentials,
    *,
    jwt: JwtVerifier | None = None,
    realm: str = DEFAULT_REALM,
) -> dict[str, Any] | None:
    """Return if the request satisfies ``credentials`` (and ``jwt``, when given); else raise.

    Raises :class:`~flowcred.errors.WebhookUnauthorized` (``challenge`` is the
    ``WWW-Authenticate`` value), :class:`TypeError` for credentials of an unknown kind and
    :class:`ValueError` for a JWT layout that cannot work (:func:`check_layout`). Returns the
    verified JWT claims when ``jwt`` is given, else ``None``. The shared secret is checked
    first, so a caller without it never makes the verifier fetch a JWKS.
    """
    check_layout(credentials, jwt)
    _verify_shared(headers, credentials, realm)
    if jwt is None:
        return None
    return jwt.claims(headers, challenge=challenge_for(credentials, realm))


def _verify_shared(headers: HeaderSource, credentials: WebhookCredentials, realm: str) -> None:
    """The shared-secret check of :func:`verify` (flowgen's rules, in constant time)."""
    typed = _typed(credentials)
    if typed is None or not is_configured(typed):
        return
    values = header_values(headers, "authorization")
    if not values:
        raise _refuse("no Authorization header", typed, realm)
    if len(values) > 1:
        raise _refuse("more than one Authorization header", typed, realm)
    scheme, _, rest = values[0].partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        if not _bearer_matches(rest.strip().encode(), typed):
            raise _refuse("the bearer token does not match", typed, realm)
        return
    if scheme == "basic":
        if not _basic_matches(rest, typed):
            raise _refuse("the basic credentials do not match", typed, realm)
        return
    raise _refuse("the Authorization scheme is neither Bearer nor Basic", typed, realm)
