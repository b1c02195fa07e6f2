"""The shape check of a received secret: what is cheap to refuse before anything is kept.

Every secret the broker receives is registered for log redaction, and registration keeps the
value and about ten encoded forms of it in memory. Input that cannot be a valid secret of its
type is therefore refused *before* registration, by checks that cost no more than the size of
the input they accept, in this order:

1. the form: ``secret`` and ``secret_value`` are not both given; ``secret`` is a mapping,
   ``secret_value`` a string;
2. the size of ``secret_value`` (per value for a single-secret type, per request for a composite
   type, whose ``secretValue`` is the JSON text of the whole secret), before it is parsed;
3. the number of fields, before any field is looked at: a mapping with more keys than the type
   has field names and aliases holds an unknown name, whatever the rest is;
4. the field names: each is a secret field (or alias) of the type;
5. the size of each value (:data:`MAX_SECRET_VALUE_BYTES`) and of all of them together
   (:data:`MAX_SECRET_BYTES`), in UTF-8 bytes.

Only a secret that passes is registered; then the type's own validation (kinds, formats,
required fields) runs on it. The limits are constants, not settings: they are part of what a
credential type accepts, so every process on one database must agree on them, or a create
accepted by one replica would be refused by another.

Problems never quote a value, and never echo an unknown name given on the secret side: whatever
was typed there may be secret material, whatever it looks like. The unknown-name problem is the
one :meth:`CredentialType.validate_secret` reports, so both layers read the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flowcred.catalog import SECRET_VALUE_FIELD, CredentialType
from flowcred.errors import FieldProblem, InvalidCredential

__all__ = ["MAX_SECRET_BYTES", "MAX_SECRET_VALUE_BYTES", "check_secret_shape"]

#: The largest value of one secret field, in UTF-8 bytes (64 KiB). The largest real secrets
#: (PEM chains, service-account JSON, kubeconfigs) are a few KiB.
MAX_SECRET_VALUE_BYTES = 64 * 1024

#: The largest secret of one request, all fields (or the whole ``secretValue``) together, in
#: UTF-8 bytes (256 KiB).
MAX_SECRET_BYTES = 256 * 1024


def check_secret_shape(
    ctype: CredentialType, secret: object, secret_value: object
) -> tuple[dict[str, Any] | None, list[FieldProblem]]:
    """Check the shape of a received secret; return ``(payload, [])`` or ``(None, problems)``.

    ``payload`` is the secret as a dict of field names (as given, aliases included) to values:
    ``secret`` itself, or ``secret_value`` parsed with :meth:`CredentialType.parse_secret_value`.
    It is not validated beyond its shape; pass it to the type's validation next. When neither is
    given the payload is ``{}``. The work done is bounded by the size of what is accepted: an
    oversized mapping is refused on its length alone, an oversized string on its length before
    it is parsed.
    """
    if secret is not None and secret_value is not None:
        return None, [FieldProblem("secret", "give either secret or secret_value, not both")]
    if secret_value is not None:
        return _parse_secret_value(ctype, secret_value)
    if secret is None:
        return {}, []
    problems = _check_mapping(ctype, secret, "secret")
    if problems:
        return None, problems
    assert isinstance(secret, Mapping)  # _check_mapping said so
    return dict(secret), []


def _parse_secret_value(
    ctype: CredentialType, secret_value: object
) -> tuple[dict[str, Any] | None, list[FieldProblem]]:
    if not isinstance(secret_value, str):
        return None, [FieldProblem(SECRET_VALUE_FIELD, "must be a string")]
    # A composite type's secretValue is the JSON text of the whole secret, so it is held to the
    # per-request limit; a single-secret type's is the one value.
    limit = MAX_SECRET_BYTES if ctype.is_composite else MAX_SECRET_VALUE_BYTES
    if _text_bytes(secret_value, limit) > limit:
        return None, [FieldProblem(SECRET_VALUE_FIELD, f"must be at most {_kib(limit)}")]
    try:
        parsed = ctype.parse_secret_value(secret_value)
    except InvalidCredential as exc:
        return None, list(exc.problems)
    problems = _check_mapping(ctype, parsed, SECRET_VALUE_FIELD)
    return (None, problems) if problems else (parsed, [])


def _check_mapping(ctype: CredentialType, secret: object, side: str) -> list[FieldProblem]:
    """The shape problems of a secret given as a mapping (``side`` names it in problems)."""
    if not isinstance(secret, Mapping):
        return [FieldProblem(side, "must be an object of field names to values")]
    if secret and not ctype.secret_fields:
        return [FieldProblem(side, f"must be empty: {ctype.name} has no secret")]
    known = sum(len(spec.names) for spec in ctype.fields)
    if len(secret) > known:
        # More keys than the type has names: at least one is unknown. Said without reading a
        # single key or value, which is what makes a 40,000-key body cost nothing.
        return [
            FieldProblem(
                side,
                f"has {len(secret)} fields but {ctype.name} declares {known} field names "
                f"(names not shown; expected: {_expected(ctype)})",
            )
        ]
    problems: list[FieldProblem] = []
    unknown = False
    total = 0
    for key, value in secret.items():
        canonical = ctype.canonical_field_name(key) if isinstance(key, str) else None
        if canonical is None:
            unknown = True
            continue
        if not ctype.field(canonical).secret:
            problems.append(FieldProblem(canonical, "is not a secret field; pass it in config"))
            continue
        size = _value_bytes(value, MAX_SECRET_VALUE_BYTES)
        if size is None:
            problems.append(FieldProblem(canonical, "must be text or a JSON object"))
        elif size > MAX_SECRET_VALUE_BYTES:
            problems.append(
                FieldProblem(canonical, f"must be at most {_kib(MAX_SECRET_VALUE_BYTES)}")
            )
        else:
            total += size
    if unknown:
        # The problem CredentialType.validate_secret reports for an unknown secret-side name,
        # once for all of them: the names are never repeated.
        problems.insert(
            0, FieldProblem(side, f"unknown field (name not shown; expected: {_expected(ctype)})")
        )
    if total > MAX_SECRET_BYTES:
        problems.append(FieldProblem(side, f"must be at most {_kib(MAX_SECRET_BYTES)} in all"))
    return problems


def _expected(ctype: CredentialType) -> str:
    return ", ".join(spec.name for spec in ctype.secret_fields)


def _text_bytes(text: str, limit: int) -> int:
    """The UTF-8 size of ``text``, or its length when that alone is over ``limit``."""
    length = len(text)
    if length > limit or text.isascii():
        return length
    return len(text.encode("utf-8", "surrogatepass"))


def _value_bytes(value: object, limit: int) -> int | None:
    """The size of one field value as text (JSON for non-strings); ``None`` if it has none."""
    if value is None:
        return 0
    if isinstance(value, str):
        return _text_bytes(value, limit)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return _text_bytes(text, limit)


def _kib(limit: int) -> str:
    return f"{limit // 1024} KiB"
