"""Checks for the ``format`` of a catalog field: host names, ports, URLs, PEM blocks and so on.

Each check returns a message that completes a sentence starting with the field name, or ``None``
when the value is fine. No message mentions the value, since it may be a secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?\.?$")
_IPV6_RE = re.compile(r"^[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.\-]+)?$")
_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
# RFC 9110 §5.6.2 ``token``: one or more ``tchar``. A header, query-parameter or cookie name
# outside it (a colon, a space, CR/LF) would let a config value inject a header or split a request.
HTTP_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")

# The keys a Google service-account key file needs besides ``"type": "service_account"``.
SERVICE_ACCOUNT_KEYS = ("client_email", "private_key", "private_key_id", "project_id", "token_uri")

# Which formats make sense for which kinds; checked when a catalog file is loaded.
FORMAT_KINDS: dict[str, frozenset[str]] = {
    "hostname": frozenset({"string", "list"}),
    "port": frozenset({"integer"}),
    "url": frozenset({"string", "list"}),
    "email": frozenset({"string", "list"}),
    "host_list": frozenset({"string"}),
    "pem": frozenset({"string", "text"}),
    "service_account_json": frozenset({"text", "json"}),
    "http_token": frozenset({"string"}),
}


def parse_json_object(text: str) -> dict[str, Any] | None:
    """Parse ``text`` as a JSON object; return ``None`` when it is not one.

    The :class:`json.JSONDecodeError` is swallowed here on purpose: it carries the whole input in
    its ``doc`` attribute, and re-raising inside the ``except`` block would chain it onto the
    validation error, where a traceback could print it.
    """
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    return parsed


def _check_hostname(value: str) -> str | None:
    if "://" in value:
        return "must be a host name without a scheme (no http:// or similar)"
    if not value or len(value) > 253 or any(c.isspace() or c == "/" for c in value):
        return "must be a host name or IP address, without spaces or slashes"
    if value.count(":") == 1:
        return "must be a host name without a port; set the port separately"
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if value.count(":") >= 2:
        ok = _IPV6_RE.match(value) is not None
    else:
        ok = _HOSTNAME_RE.match(value) is not None
    return None if ok else "must be a host name or IP address"


def _check_url(value: str) -> str | None:
    message = "must be an http:// or https:// URL with a host"
    if any(c.isspace() for c in value):
        return message
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return message
    if parts.scheme.lower() not in ("http", "https") or not host:
        return message
    return None


def _check_email(value: str) -> str | None:
    return None if _EMAIL_RE.match(value) else "must be an email address"


def _check_host_list(value: str) -> str | None:
    entries = [entry.strip() for entry in value.split(",")]
    for position, entry in enumerate(entries, start=1):
        host, colon, port = entry.rpartition(":")
        ok = (
            bool(colon)
            and port.isascii()
            and port.isdigit()
            and len(port) <= 5
            and 1 <= int(port) <= 65535
            and _check_hostname(host) is None
        )
        if not ok:
            return f"must be a comma-separated list of host:port entries (entry {position} is not)"
    return None


def _check_pem(value: str) -> str | None:
    if "-----BEGIN " in value and "-----END " in value:
        return None
    return "must be a PEM block (-----BEGIN ...----- ... -----END ...-----)"


def _check_service_account(value: Any) -> str | None:
    parsed = value if isinstance(value, Mapping) else parse_json_object(value)
    if parsed is None:
        return "must be a Google service-account key file (a JSON object)"
    problems: list[str] = []
    if parsed.get("type") != "service_account":
        problems.append('"type" must be "service_account"')
    missing = [key for key in SERVICE_ACCOUNT_KEYS if not parsed.get(key)]
    if missing:
        problems.append("missing " + ", ".join(missing))
    not_text = [
        key for key in SERVICE_ACCOUNT_KEYS if key in parsed and not isinstance(parsed[key], str)
    ]
    if not_text:
        problems.append("not strings: " + ", ".join(not_text))
    if not problems and "-----BEGIN " not in parsed["private_key"]:
        problems.append("private_key is not a PEM key")
    if problems:
        return "is not a valid Google service-account key: " + "; ".join(problems)
    return None


def check_http_token(value: str) -> str | None:
    """The problem with ``value`` as a header, query-parameter or cookie name, or ``None``."""
    if isinstance(value, str) and HTTP_TOKEN_RE.match(value):
        return None
    return (
        "must be an HTTP token (RFC 9110): letters, digits and !#$%&'*+-.^_`|~, "
        "without spaces, colons or control characters"
    )


def _check_port(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return None
    return "must be a port number between 1 and 65535"


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "hostname": _check_hostname,
    "port": _check_port,
    "url": _check_url,
    "email": _check_email,
    "host_list": _check_host_list,
    "pem": _check_pem,
    "service_account_json": _check_service_account,
    "http_token": check_http_token,
}


def check_format(fmt: str, value: Any) -> str | None:
    """Check one value against the named format; return a problem message or ``None``.

    ``value`` is a normalised field value: an ``int`` for ``port``, a mapping or JSON text for
    ``service_account_json``, a string otherwise. Raises ``KeyError`` for an unknown format name
    (the catalog schema only admits known ones).
    """
    return _CHECKS[fmt](value)
