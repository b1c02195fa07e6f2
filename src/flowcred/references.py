"""Naming rules shared by every caller: tenants, environments, handles and id references.

One module so that the CLI, the REST API and the Python API parse a reference the same way: an
id is ASCII digits only (``str.isdigit`` would also accept ``²``), and a handle never looks like
an id.
"""

from __future__ import annotations

import re
import unicodedata

DEFAULT_TENANT = "default"
MAX_ID = 2**63 - 1  # ids are signed 64-bit database integers
DEFAULT_ENVIRONMENT = "default"
HANDLE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
TENANT_RE = re.compile(r"^(?:\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})$")


def slugify(name: str) -> str:
    """A handle from a display name: lower-case ASCII words joined by ``-``.

    A name made only of digits gets a ``cred-`` prefix, because a handle that looks like an
    integer could not be told apart from a credential id.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:120] or "credential"
    return f"cred-{slug}" if slug.isdigit() else slug
