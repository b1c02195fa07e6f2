"""Canary secrets: plant recognisable values as secrets, then prove none of them leaks.

DESIGN §5, invariant 1, says no secret value may appear in any output except a resolve: not in a
log line, an exception message, a ``repr``, CLI output without ``--reveal``, an API response or
the database in plaintext. Checking that with the handful of secrets a test happens to print is
weak evidence; a canary test is stronger. It works in three steps:

1. plant a distinct, random, recognisable value (:func:`make_canary`) in every secret field;
2. drive the system through everything a user can do, capturing every byte it emits or stores;
3. search every capture for every canary (:class:`CanaryScanner`), in every encoding a leak is
   likely to take: as is, base64 (standard and URL-safe, padded or not, and at any alignment
   inside a longer base64 stream such as a Basic-auth header), URL-encoded, JSON-escaped, as a
   Python ``repr`` and in hex.

A canary is random, so finding one is never a coincidence, and it is long enough that none of its
encoded forms turns up by chance. Its text uses only URL-safe characters, so it survives every
field validator that accepts a token and can be embedded inside values that must match a pattern
(``xoxb-<canary>``, a PEM block with the canary as a line, a service-account JSON whose
``private_key`` contains it).

Example::

    scanner = CanaryScanner()
    token = scanner.plant("slack-token")
    broker.credentials.create(name="bot", type="slack", secret={"token": f"xoxb-{token}"})
    scanner.scan_text("repr(record)", repr(record))
    scanner.scan_bytes("flowcred.db", Path("flowcred.db").read_bytes())
    scanner.assert_clean()

The canary values themselves are test data, not secrets, so messages may name them; they name
where a canary was found, which one (by label) and in which form, which is what a reader needs.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import quote, quote_plus

__all__ = ["CANARY_PREFIX", "CanaryHit", "CanaryScanner", "derived_forms", "make_canary"]

#: Every canary starts with this, so a human reading a log spots one at a glance.
CANARY_PREFIX = "CANARY"

# Labels become part of the value; anything outside this set is replaced so that the value stays
# URL-safe (and therefore unchanged by URL encoding or JSON escaping, and valid in most fields).
_LABEL_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_LABEL = 40
# 12 random bytes: 96 bits, so two canaries never collide and none is ever guessed by accident.
_RANDOM_BYTES = 12
# Encoded forms shorter than this are not searched: short strings turn up by chance.
_MIN_FORM_LENGTH = 12
_WHITESPACE_RE = re.compile(r"\s+")


def make_canary(label: str) -> str:
    """Return a new random canary value, ``CANARY-<label>-<24 hex digits>``.

    The label says which secret field the canary was planted in, so a hit names its origin. It is
    reduced to ``[A-Za-z0-9_-]`` (other characters become ``_``) and cut to 40 characters; the
    result is at least 32 characters long and uses URL-safe characters only.
    """
    clean = _LABEL_UNSAFE_RE.sub("_", label)[:_MAX_LABEL] or "x"
    return f"{CANARY_PREFIX}-{clean}-{secrets.token_hex(_RANDOM_BYTES)}"


def _base64_in_stream(raw: bytes, *, urlsafe: bool) -> dict[str, str]:
    """The base64 characters that depend on ``raw`` alone, at each of the three alignments.

    When ``raw`` sits inside a longer byte string that is base64-encoded as a whole (``user:pass``
    in a Basic-auth header, a secret inside an encoded JSON document), its encoding starts at a
    byte offset of 0, 1 or 2 modulo 3. At offset ``k`` the first ``ceil(8k/6)`` characters and the
    last one mix in neighbouring bytes; everything between them is fixed by ``raw``, so searching
    for those three substrings finds the value wherever it sits.
    """
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    name = "base64url" if urlsafe else "base64"
    forms: dict[str, str] = {}
    for offset in range(3):
        encoded = encode(b"\x00" * offset + raw).decode("ascii")
        start = -(-offset * 8 // 6)  # ceil(8 * offset / 6)
        end = (offset + len(raw)) * 8 // 6
        forms[f"{name} in a stream (offset {offset})"] = encoded[start:end]
    return forms


def derived_forms(value: str) -> dict[str, str]:
    """Return ``{form name: text}`` for the encodings a leaked ``value`` is likely to take.

    Forms that coincide (URL encoding of a URL-safe value is the value itself) are kept once,
    under the first name; forms shorter than 12 characters are dropped.
    """
    raw = value.encode("utf-8")
    candidates: dict[str, str] = {
        "raw": value,
        "json-escaped": json.dumps(value)[1:-1],
        "json-escaped (non-ascii kept)": json.dumps(value, ensure_ascii=False)[1:-1],
        "python repr": repr(value)[1:-1],
        "url-encoded": quote(value, safe=""),
        "url-encoded (plus for space)": quote_plus(value),
        "base64": base64.b64encode(raw).decode("ascii"),
        "base64 unpadded": base64.b64encode(raw).decode("ascii").rstrip("="),
        "base64url": base64.urlsafe_b64encode(raw).decode("ascii"),
        "base64url unpadded": base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
        **_base64_in_stream(raw, urlsafe=False),
        **_base64_in_stream(raw, urlsafe=True),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
    }
    forms: dict[str, str] = {}
    seen: set[str] = set()
    for name, text in candidates.items():
        if len(text) >= _MIN_FORM_LENGTH and text not in seen:
            seen.add(text)
            forms[name] = text
    return forms


class CanaryHit(NamedTuple):
    """One finding: where a canary was seen, which one (its label) and in which encoded form."""

    where: str
    label: str
    form: str


class CanaryScanner:
    """Holds planted canaries with their derived forms and searches captured output for them.

    Every ``scan_*`` call records its findings in :attr:`hits` and the place it scanned in
    :attr:`scanned`, so a test can assert both that nothing leaked and that it really looked at
    every place it meant to. :meth:`find` searches without recording, for positive controls (an
    output that *must* contain a canary, such as ``resolve --reveal``), which prove the scanner
    would have caught a leak.

    Text is searched as given and, in addition, with all whitespace removed, so a value that a
    terminal or a pretty-printer wrapped over two lines is still found.
    """

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        # label -> [(form name, text form, utf-8 form)]
        self._forms: dict[str, list[tuple[str, str, bytes]]] = {}
        self._hits: list[CanaryHit] = []
        self._scanned: list[str] = []

    def __repr__(self) -> str:
        return (
            f"CanaryScanner(canaries={len(self._values)}, scanned={len(self._scanned)}, "
            f"hits={len(self._hits)})"
        )

    # -- planting --------------------------------------------------------------------------

    def plant(self, label: str) -> str:
        """Make a canary for ``label`` (see :func:`make_canary`), remember it and return it.

        Raises ``ValueError`` if ``label`` is already used: a hit must name one origin.
        """
        value = make_canary(label)
        self.add(label, value)
        return value

    def add(self, label: str, value: str) -> None:
        """Remember an existing ``value`` under ``label`` (for values not made by :meth:`plant`).

        Raises ``ValueError`` if the label is taken or the value is too short to search for
        without false positives.
        """
        if label in self._values:
            raise ValueError(f"canary label {label!r} is already used")
        if len(value) < _MIN_FORM_LENGTH:
            raise ValueError(f"a canary must be at least {_MIN_FORM_LENGTH} characters long")
        self._values[label] = value
        self._forms[label] = [
            (name, text, text.encode("utf-8")) for name, text in derived_forms(value).items()
        ]

    @property
    def canaries(self) -> Mapping[str, str]:
        """Label -> planted value, in planting order."""
        return dict(self._values)

    # -- searching -------------------------------------------------------------------------

    def find(self, text: str) -> list[tuple[str, str]]:
        """Return ``(label, form)`` for every canary form in ``text``; records nothing."""
        squeezed = _WHITESPACE_RE.sub("", text) if _WHITESPACE_RE.search(text) else None
        found: list[tuple[str, str]] = []
        for label, forms in self._forms.items():
            for name, form, _ in forms:
                if form in text:
                    found.append((label, name))
                elif squeezed is not None and form in squeezed:
                    found.append((label, f"{name}, wrapped over lines"))
        return found

    def find_bytes(self, data: bytes) -> list[tuple[str, str]]:
        """Return ``(label, form)`` for every canary form in ``data`` (UTF-8); records nothing."""
        found: list[tuple[str, str]] = []
        for label, forms in self._forms.items():
            for name, _, encoded in forms:
                if encoded in data:
                    found.append((label, name))
        return found

    def contains(self, text: str, label: str) -> bool:
        """Whether any form of the canary ``label`` occurs in ``text`` (for positive controls)."""
        return any(found == label for found, _ in self.find(text))

    def scan_text(self, where: str, text: str) -> list[CanaryHit]:
        """Search ``text``, record and return the hits; ``where`` names the capture in reports."""
        self._scanned.append(where)
        hits = [CanaryHit(where, label, form) for label, form in self.find(text)]
        self._hits.extend(hits)
        return hits

    def scan_bytes(self, where: str, data: bytes) -> list[CanaryHit]:
        """Search raw bytes (a database file, a dump), record and return the hits."""
        self._scanned.append(where)
        hits = [CanaryHit(where, label, form) for label, form in self.find_bytes(data)]
        self._hits.extend(hits)
        return hits

    def scan_object(self, where: str, obj: object) -> list[CanaryHit]:
        """Search both ``repr(obj)`` and ``str(obj)``: the two ways an object reaches a log."""
        return self.scan_text(f"repr({where})", repr(obj)) + self.scan_text(
            f"str({where})", str(obj)
        )

    # -- results ---------------------------------------------------------------------------

    @property
    def hits(self) -> list[CanaryHit]:
        """Every finding so far, in scanning order."""
        return list(self._hits)

    @property
    def scanned(self) -> list[str]:
        """The names of every capture scanned so far, in order."""
        return list(self._scanned)

    def assert_clean(self) -> None:
        """Raise ``AssertionError`` listing every hit (where, which canary, which form), if any."""
        if not self._hits:
            return
        lines = [f"  {hit.where}: canary {hit.label!r} as {hit.form}" for hit in self._hits]
        raise AssertionError(
            f"{len(self._hits)} canary hit(s) in {len(self._scanned)} scanned capture(s):\n"
            + "\n".join(lines)
        )
