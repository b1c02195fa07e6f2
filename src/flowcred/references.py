"""Naming rules shared by every caller: tenants, environments, handles and id references.

One module so that the CLI, the REST API and the Python API parse a reference the same way: an
id is ASCII digits only (``str.isdigit`` would also accept ``²``), and a handle never looks like
an id.
"""

from __future__ import annotations

import re
import unicodedata

from flowcred.errors import FieldProblem, InvalidCredential

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
    return f"cred-{slug}" if is_id_text(slug) else slug


_ID_TEXT_RE = re.compile(r"[0-9]+")


def is_id_text(text: str) -> bool:
    """True when ``text`` is an id written in ASCII digits only.

    ``str.isdigit`` also accepts ``²``, ``٣`` and other Unicode digits, which ``int()`` then
    refuses or reads differently; every caller that tells an id from a handle uses this instead.
    """
    return _ID_TEXT_RE.fullmatch(text) is not None


def parse_ref(ref: object) -> int | str:
    """A reference as an int id or a str handle, the same way for every caller.

    An ``int`` (not a ``bool``) or ASCII-digit text is an id; other text is a handle. Raises
    :class:`~flowcred.errors.InvalidCredential` for anything else (no value is echoed). An id
    outside ``1..MAX_ID`` is returned as is: it names no credential, and callers answer
    not-found for it.
    """
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise InvalidCredential([FieldProblem("ref", "must be an int id or a str handle")])
    if isinstance(ref, int):
        return ref
    if is_id_text(ref):
        # More than 19 digits is past MAX_ID anyway; not parsing it keeps int() off huge input.
        return int(ref) if len(ref) <= 19 else MAX_ID + 1
    if not ref:
        raise InvalidCredential([FieldProblem("ref", "must not be empty")])
    return ref
