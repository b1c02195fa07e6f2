"""Passwords out of database URLs and driver messages, before anything is printed or logged.

``FLOWCRED_DATABASE_URL`` often carries a password (``postgresql+psycopg://app:pw@db/flowcred``).
Every place that shows a URL to a person — ``flowcred init``, ``serve`` start-up, error messages,
reprs of settings and brokers, health answers — passes it through :func:`mask_url`; every driver
or SQLAlchemy message that may quote a DSN passes through :func:`mask_text`. The password becomes
``***`` (as in SQLAlchemy's own ``URL.__repr__``); user, host, port and database stay, because
they are what a person needs to see which database is meant.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@host  (the password runs to the last '@' before the path: passwords
# may contain '@' when not percent-encoded, hosts may not).
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*):(?P<pw>[^/?#\s]*)@(?P<host>[^@/?#\s]*)(?=[/?#\s'\"]|$)"
)
# libpq keyword form: password=... or password='...' (also in "invalid dsn" messages).
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_url(url: object) -> str:
    """``url`` as text with any password replaced by ``***``; safe for any output."""
    return mask_text(str(url))


def mask_text(text: str) -> str:
    """``text`` with every URL password and every ``password=`` value replaced by ``***``."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@{m['host']}", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", masked)


__all__ = ["MASK", "mask_text", "mask_url"]
