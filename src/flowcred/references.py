"""Naming rules shared by every caller: tenants, environments, handles and id references.

One module so that the CLI, the REST API and the Python API parse a reference the same way: an
id is ASCII digits only (``str.isdigit`` would also accept ``²``), and a handle never looks like
an id.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator

from flowcred.errors import FieldProblem, InvalidCredential

DEFAULT_TENANT = "default"
MAX_ID = 2**63 - 1  # ids are signed 64-bit database integers
DEFAULT_ENVIRONMENT = "default"
# ``\Z``, not ``$``: ``$`` also matches before a trailing newline, which let "acme\n" through.
HANDLE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}\Z")
TENANT_RE = re.compile(r"^(?:\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})\Z")
#: C0 and C1 control characters and DEL: in a display name they would let a name rewrite a
#: terminal (ESC sequences), forge log lines (CR/LF) or truncate it in C code (NUL).
CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: The handle a name without any ASCII letter or digit gets (before a suffix makes it unique).
FALLBACK_HANDLE = "credential"
#: How many numbered suffixes (``-2`` .. ``-N``) are tried before a hash of the name is used.
MAX_NUMBERED_SUFFIX = 20


def slugify(name: str) -> str:
    """A handle from a display name: lower-case ASCII words joined by ``-``.

    Accents are dropped (NFKD, then ASCII); a name with no ASCII letter or digit left (``Токен``)
    becomes ``credential``. A name made only of digits gets a ``cred-`` prefix, because a handle
    that looks like an integer could not be told apart from a credential id. Different names can
    give the same slug; :func:`handle_candidates` makes a generated handle unique.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:120] or FALLBACK_HANDLE
    return f"cred-{slug}" if is_id_text(slug) else slug


def handle_candidates(name: str) -> Iterator[str]:
    """Handles to try, in order, for a credential named ``name`` (a bounded, stable sequence).

    The slug, then the slug with ``-2`` .. ``-20``, then the slug with a short hash of the name
    (stable: the same name always gives the same one). The caller takes the first that is free
    in the tenant + environment.
    """
    slug = slugify(name)
    yield slug
    for number in range(2, MAX_NUMBERED_SUFFIX + 1):
        yield f"{slug}-{number}"
    yield f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


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
