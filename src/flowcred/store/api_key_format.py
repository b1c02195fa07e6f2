"""What an API key is: its raw format, its metadata record, and declaratively provisioned keys.

Split out of :mod:`flowcred.store.api_keys` (which holds the database store and authentication) so
each module stays small; :mod:`flowcred.store.api_keys` re-exports every public name here, and
callers keep importing from there. Nothing in this module touches the database.

A raw key looks like ``fck_<id>_<secret>``:

* ``<id>`` — 12 lowercase base32 characters (``[a-z2-7]``), public: it is the key's name in
  lists, audit events and ``revoke``/``rotate`` commands;
* ``<secret>`` — ``secrets.token_urlsafe(32)``: 43 URL-safe base64 characters of 32 random bytes
  (256 bits).
"""

from __future__ import annotations

import base64
import builtins
import enum
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, get_args

import yaml

from flowcred.errors import ConfigurationError, FieldProblem, InvalidCredential

Role = Literal["admin", "developer", "viewer", "worker"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

KeyState = Literal["active", "expiring_soon", "expired", "revoked"]
KeySource = Literal["database", "bootstrap"]

PLATFORM_TENANT: Final = "*"
KEY_PREFIX: Final = "fck_"
DEFAULT_LIFETIME: Final = timedelta(days=365)
EXPIRING_SOON: Final = timedelta(days=7)
INVALID_KEY_MESSAGE: Final = "invalid API key"
MAX_NAME_LENGTH: Final = 256

ENV_SPEC: Final = "FLOWCRED_API_KEYS"
ENV_FILE: Final = "FLOWCRED_API_KEYS_FILE"

_ID_LENGTH = 12
_TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)
# Ids: ours are 12 base32 characters; bootstrap entries may choose 4-32 of [a-z0-9]. No "_", so
# the first "_" after the prefix ends the id even though the secret may contain "_" itself.
_KEY_ID_RE = re.compile(r"[a-z0-9]{4,32}", re.ASCII)
_RAW_KEY_RE = re.compile(r"fck_([a-z0-9]{4,32})_([A-Za-z0-9_-]{43})", re.ASCII)
MAX_RAW_KEY_LENGTH = 4 + 32 + 1 + 43
_HEX64_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)


class _Default(enum.Enum):
    DEFAULT = "default"


DEFAULT_EXPIRY: Final = _Default.DEFAULT
"""Pass as ``expires_at`` for the default lifetime (:data:`DEFAULT_LIFETIME` from now)."""

Expiry = datetime | None | Literal[_Default.DEFAULT]
"""``DEFAULT_EXPIRY`` (365 days), an aware datetime in the future, or ``None`` for never."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's metadata. It never holds the key or its hash.

    ``tenant`` is ``"*"`` for a platform key (reaches every tenant). ``source`` is ``"database"``
    for keys made by :meth:`ApiKeyStore.create`, ``"bootstrap"`` for keys from configuration.
    """

    id: str
    name: str
    role: Role
    tenant: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    source: KeySource

    def state(self, now: datetime) -> KeyState:
        """``revoked``, ``expired`` (at or past ``expires_at``), ``expiring_soon`` (within 7 days)
        or ``active``. FlowGenX calls ``revoked`` *Inactive*."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None:
            if self.expires_at <= now:
                return "expired"
            if self.expires_at - now <= EXPIRING_SOON:
                return "expiring_soon"
        return "active"

    def usable(self, now: datetime) -> bool:
        """True when the key may authenticate at ``now`` (active or expiring soon)."""
        return self.state(now) in ("active", "expiring_soon")

    def to_dict(self, now: datetime) -> dict[str, Any]:
        """Stable camelCase JSON for the API and ``--json`` output (datetimes as ISO 8601)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "tenant": self.tenant,
            "createdAt": iso(self.created_at),
            "expiresAt": iso(self.expires_at),
            "revokedAt": iso(self.revoked_at),
            "lastUsedAt": iso(self.last_used_at),
            "state": self.state(now),
            "source": self.source,
        }


def hash_key(raw_key: str) -> str:
    """Hex SHA-256 of a raw key, as stored in ``api_keys.key_hash`` and bootstrap entries."""
    return hashlib.sha256(raw_key.encode("utf-8", "surrogatepass")).hexdigest()


def generate_raw_key() -> tuple[str, str]:
    """A fresh ``(key_id, raw_key)``; nothing is stored."""
    key_id = base64.b32encode(secrets.token_bytes(8)).decode("ascii").lower()[:_ID_LENGTH]
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(raw_key: str) -> str | None:
    """The public id of a well-formed raw key, else ``None`` (never raises)."""
    if len(raw_key) > MAX_RAW_KEY_LENGTH:
        return None
    match = _RAW_KEY_RE.fullmatch(raw_key)
    return match.group(1) if match else None


def _tenant_ok(tenant: object) -> bool:
    return isinstance(tenant, str) and (
        tenant == PLATFORM_TENANT or _TENANT_RE.fullmatch(tenant) is not None
    )


def validate_key_fields(*, role: object, tenant: object, name: object) -> None:
    """Raise InvalidCredential listing every bad field among role, tenant and name."""
    problems = []
    if role not in ROLES:
        problems.append(FieldProblem("role", f"must be one of {', '.join(ROLES)}"))
    if not _tenant_ok(tenant):
        problems.append(
            FieldProblem("tenant", "must be '*' (platform) or 1-128 of A-Z a-z 0-9 . _ -")
        )
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        problems.append(FieldProblem("name", f"must be text of at most {MAX_NAME_LENGTH} chars"))
    if problems:
        raise InvalidCredential(problems)


# -- bootstrap keys from configuration ---------------------------------------------------------

_BOOTSTRAP_FIELDS = frozenset({"id", "sha256", "role", "tenant", "name"})


def _bootstrap_entries(data: object, where: str) -> list[dict[str, Any]]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigurationError(f"{where}: expected a list of API key entries")
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{where}: entry {index}: expected an object")
    return data


def _parse_bootstrap_entry(entry: dict[str, Any], label: str, now: datetime) -> tuple[str, ApiKey]:
    # Messages name the entry and the field, never a value: the sha256 is key material's image.
    unknown = sorted(str(k) for k in entry if k not in _BOOTSTRAP_FIELDS)
    if unknown:
        raise ConfigurationError(f"{label}: unknown field(s) {', '.join(unknown)}")
    for required in ("id", "sha256", "role"):
        if required not in entry:
            raise ConfigurationError(f"{label}: field '{required}' is required")
    key_id, digest = entry["id"], entry["sha256"]
    role = entry["role"]
    tenant = entry.get("tenant", PLATFORM_TENANT)
    name = entry.get("name", "")
    if not isinstance(key_id, str) or _KEY_ID_RE.fullmatch(key_id) is None:
        raise ConfigurationError(f"{label}: field 'id' must be 4-32 of a-z 0-9")
    if not isinstance(digest, str) or _HEX64_RE.fullmatch(digest.lower()) is None:
        raise ConfigurationError(
            f"{label}: field 'sha256' must be 64 hexadecimal characters (sha256 of the raw key)"
        )
    if role not in ROLES:
        raise ConfigurationError(f"{label}: field 'role' must be one of {', '.join(ROLES)}")
    if not _tenant_ok(tenant):
        raise ConfigurationError(
            f"{label}: field 'tenant' must be '*' (platform) or 1-128 of A-Z a-z 0-9 . _ -"
        )
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        raise ConfigurationError(
            f"{label}: field 'name' must be text of at most {MAX_NAME_LENGTH} chars"
        )
    key = ApiKey(
        id=key_id,
        name=name,
        role=role,
        tenant=tenant,
        created_at=now,
        expires_at=None,
        revoked_at=None,
        last_used_at=None,
        source="bootstrap",
    )
    return digest.lower(), key


def load_bootstrap_keys(
    spec: str | None, file: Path | None, *, now: datetime | None = None
) -> builtins.list[tuple[str, ApiKey]]:
    """Parse declaratively provisioned keys: ``(sha256 hex, ApiKey)`` pairs.

    ``spec`` is the JSON text of ``FLOWCRED_API_KEYS``; ``file`` holds JSON or YAML. Both hold a
    list of ``{"id", "sha256", "role", "tenant"?, "name"?}`` (tenant defaults to ``*``). Each raw
    key must have the form ``fck_<id>_<43 URL-safe characters>`` with the entry's id (make one
    with ``flowcred apikeys generate``). Validation is strict: an unknown field, a bad value, a
    duplicate id or hash raises :class:`ConfigurationError` naming the source, the entry index
    and the field — never a value. ``created_at`` of these keys is ``now`` (load time).
    """
    when = now or datetime.now(UTC)
    sources: builtins.list[tuple[str, object]] = []
    if spec is not None and spec.strip():
        try:
            sources.append((ENV_SPEC, json.loads(spec)))
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{ENV_SPEC} is not valid JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
    if file is not None:
        label = f"{ENV_FILE} ({file})"
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{label}: cannot read ({type(exc).__name__})") from None
        try:
            # YAML is a superset of JSON, so one parser reads both.
            sources.append((label, yaml.safe_load(text)))
        except yaml.YAMLError as exc:
            # Only the position: a YAML error's snippet would quote the file's content.
            mark = getattr(exc, "problem_mark", None)
            at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise ConfigurationError(f"{label}: not valid JSON or YAML{at}") from None
    result: builtins.list[tuple[str, ApiKey]] = []
    seen_ids: set[str] = set()
    seen_hashes: set[str] = set()
    for where, data in sources:
        for index, entry in enumerate(_bootstrap_entries(data, where)):
            label = f"{where}: entry {index}"
            digest, key = _parse_bootstrap_entry(entry, label, when)
            if key.id in seen_ids:
                raise ConfigurationError(f"{label}: field 'id' repeats an earlier entry's id")
            if digest in seen_hashes:
                raise ConfigurationError(f"{label}: field 'sha256' repeats an earlier entry's")
            seen_ids.add(key.id)
            seen_hashes.add(digest)
            result.append((digest, key))
    return result


def bootstrap_from_env(*, now: datetime | None = None) -> builtins.list[tuple[str, ApiKey]]:
    """:func:`load_bootstrap_keys` from ``FLOWCRED_API_KEYS`` and ``FLOWCRED_API_KEYS_FILE``."""
    file = os.environ.get(ENV_FILE, "").strip()
    return load_bootstrap_keys(os.environ.get(ENV_SPEC), Path(file) if file else None, now=now)
