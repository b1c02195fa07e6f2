"""Platform API keys: random, shown once, stored only as a SHA-256 hash (DESIGN §4).

A raw key looks like ``fck_<id>_<secret>``:

* ``<id>`` — 12 lowercase base32 characters (``[a-z2-7]``), public: it is the key's name in
  lists, audit events and ``revoke``/``rotate`` commands;
* ``<secret>`` — ``secrets.token_urlsafe(32)``: 43 URL-safe base64 characters of 32 random bytes
  (256 bits).

The database stores ``sha256(raw key)`` as hex and never the key. A fast hash is right here: the
key is 256 bits of uniform randomness, so there is nothing to brute-force and a slow password hash
(bcrypt, Argon2) would only add latency to every request.

Contract of :meth:`ApiKeyStore.authenticate`:

* any failure — malformed string, unknown id, wrong secret, revoked, expired — raises
  :class:`~flowcred.errors.AccessDenied` with the one message ``"invalid API key"``;
* the work done does not depend on whether the id exists: the hash is always computed and one
  constant-time comparison is always made, against the stored hash or a dummy one;
* successful lookups are cached in this process for :data:`CACHE_TTL_SECONDS` (a revoke in this
  process drops them at once; another process sees a revocation within that TTL);
* ``last_used_at`` is written at most once per :data:`LAST_USED_INTERVAL_SECONDS` per key.

Keys can also be provisioned declaratively (``FLOWCRED_API_KEYS`` / ``FLOWCRED_API_KEYS_FILE``,
see :func:`load_bootstrap_keys`): such *bootstrap* keys authenticate like stored keys, are listed
with ``source="bootstrap"``, and are removed by editing the configuration, not by ``revoke``.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import enum
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, get_args

import yaml
from sqlalchemy import Engine, RowMapping, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from flowcred.clock import Clock
from flowcred.errors import (
    AccessDenied,
    ConfigurationError,
    FieldProblem,
    InvalidCredential,
    StoreError,
)
from flowcred.store.credentials import as_utc
from flowcred.store.engine import is_sqlite, read_connection, translate_db_error, write_transaction
from flowcred.store.tables import api_keys

Role = Literal["admin", "developer", "viewer", "worker"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

KeyState = Literal["active", "expiring_soon", "expired", "revoked"]
KeySource = Literal["database", "bootstrap"]

PLATFORM_TENANT: Final = "*"
KEY_PREFIX: Final = "fck_"
DEFAULT_LIFETIME: Final = timedelta(days=365)
EXPIRING_SOON: Final = timedelta(days=7)
DEFAULT_GRACE_SECONDS: Final = 7 * 86400
CACHE_TTL_SECONDS: Final = 5.0
CACHE_MAX_ENTRIES: Final = 4096
LAST_USED_INTERVAL_SECONDS: Final = 60.0
ADMIN_KEY_FILE: Final = "admin.key"
INITIAL_ADMIN_NAME: Final = "initial admin"
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
_MAX_RAW_LENGTH = 4 + 32 + 1 + 43
_HEX64_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)

# Compared against when the id is unknown (or the string is malformed), so a failed lookup costs
# the same hash + constant-time comparison as a wrong secret for a real id, and response timing
# does not tell an attacker which ids exist. Random per process: it matches no key.
_DUMMY_HASH: Final = hashlib.sha256(secrets.token_bytes(32)).hexdigest()


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
    if len(raw_key) > _MAX_RAW_LENGTH:
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


# -- the store -----------------------------------------------------------------------------------


class ApiKeyStore:
    """Creates, lists, revokes, rotates and authenticates API keys.

    ``bootstrap`` holds keys from configuration (see :func:`load_bootstrap_keys`). Thread-safe;
    one instance per process is meant to be shared (it owns the authentication cache).
    """

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        bootstrap: Sequence[tuple[str, ApiKey]] = (),
        cache_ttl: float = CACHE_TTL_SECONDS,
        last_used_interval: float = LAST_USED_INTERVAL_SECONDS,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._last_used_interval = last_used_interval
        self._bootstrap: dict[str, tuple[str, ApiKey]] = {}
        for digest, key in bootstrap:
            if key.source != "bootstrap":
                key = replace(key, source="bootstrap")
            self._bootstrap[key.id] = (digest.lower(), key)
        self._lock = threading.Lock()
        # key hash -> (key, monotonic deadline); only successful lookups enter, so a flood of
        # bad keys cannot grow it. Bounded anyway.
        self._cache: dict[str, tuple[ApiKey, float]] = {}
        # key id -> monotonic time of the last last_used_at write (or bootstrap use).
        self._last_write: dict[str, float] = {}
        self._bootstrap_used: dict[str, datetime] = {}

    @property
    def has_bootstrap_keys(self) -> bool:
        return bool(self._bootstrap)

    # -- reads ---------------------------------------------------------------------------------

    @staticmethod
    def _record(row: RowMapping) -> ApiKey:
        created_at = as_utc(row["created_at"])
        assert created_at is not None
        return ApiKey(
            id=row["id"],
            name=row["name"],
            role=row["role"],
            tenant=row["tenant"],
            created_at=created_at,
            expires_at=as_utc(row["expires_at"]),
            revoked_at=as_utc(row["revoked_at"]),
            last_used_at=as_utc(row["last_used_at"]),
            source="database",
        )

    def _bootstrap_key(self, key_id: str) -> ApiKey | None:
        found = self._bootstrap.get(key_id)
        if found is None:
            return None
        used = self._bootstrap_used.get(key_id)
        return replace(found[1], last_used_at=used) if used is not None else found[1]

    def get(self, key_id: str) -> ApiKey | None:
        """The key with this id (configured or stored), or ``None``."""
        configured = self._bootstrap_key(key_id)
        if configured is not None:
            return configured
        row = self._stored_row(key_id)
        return self._record(row) if row is not None else None

    def _stored_row(self, key_id: str) -> RowMapping | None:
        """The database row of ``key_id`` (configured keys are not in the database)."""
        try:
            with read_connection(self._engine) as conn:
                return (
                    conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
                )
        except DBAPIError as exc:
            raise translate_db_error(exc, "reading an API key") from None

    def list(
        self, *, tenant: str | None = None, include_revoked: bool = True
    ) -> builtins.list[ApiKey]:
        """Configured keys first, then stored keys oldest first; ``tenant`` filters exactly
        (``"*"`` gives platform keys only)."""
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        try:
            with read_connection(self._engine) as conn:
                rows = conn.execute(query).mappings().all()
        except DBAPIError as exc:
            raise translate_db_error(exc, "listing API keys") from None
        configured = [
            key
            for key_id in self._bootstrap
            if (key := self._bootstrap_key(key_id)) is not None
            and (tenant is None or key.tenant == tenant)
        ]
        return configured + [self._record(row) for row in rows]

    def count_stored(self) -> int:
        """Rows in ``api_keys``, revoked and expired included."""
        try:
            with read_connection(self._engine) as conn:
                return int(conn.execute(select(func.count()).select_from(api_keys)).scalar_one())
        except DBAPIError as exc:
            raise translate_db_error(exc, "counting API keys") from None

    # -- writes --------------------------------------------------------------------------------

    def _resolve_expiry(self, expires_at: Expiry, now: datetime) -> datetime | None:
        if expires_at is DEFAULT_EXPIRY:
            return now + DEFAULT_LIFETIME
        if expires_at is None:
            return None
        if expires_at.tzinfo is None:
            raise InvalidCredential([FieldProblem("expires_at", "must include a time zone")])
        if expires_at <= now:
            raise InvalidCredential([FieldProblem("expires_at", "must be in the future")])
        return expires_at.astimezone(UTC)

    def _insert(
        self,
        conn: Any,
        *,
        role: Role,
        tenant: str,
        name: str,
        expires_at: datetime | None,
        now: datetime,
    ) -> tuple[ApiKey, str]:
        for _attempt in range(3):
            key_id, raw = generate_raw_key()
            if key_id in self._bootstrap:
                continue
            try:
                # A savepoint, so an (astronomically unlikely) id collision can be retried
                # without losing the surrounding transaction.
                with conn.begin_nested():
                    conn.execute(
                        insert(api_keys).values(
                            id=key_id,
                            key_hash=hash_key(raw),
                            name=name,
                            role=role,
                            tenant=tenant,
                            created_at=now,
                            expires_at=expires_at,
                        )
                    )
            except IntegrityError:
                continue
            key = ApiKey(key_id, name, role, tenant, now, expires_at, None, None, "database")
            return key, raw
        raise StoreError("could not allocate a unique API key id")

    def create(
        self,
        *,
        role: Role,
        tenant: str = PLATFORM_TENANT,
        name: str = "",
        expires_at: Expiry = DEFAULT_EXPIRY,
    ) -> tuple[ApiKey, str]:
        """Make a key; returns ``(metadata, raw key)``. The raw key exists only in the result.

        ``expires_at``: :data:`DEFAULT_EXPIRY` (the default) = 365 days from now, ``None`` =
        never, or an aware datetime in the future. Bad role, tenant, name or expiry raise
        :class:`InvalidCredential` naming every bad field.
        """
        validate_key_fields(role=role, tenant=tenant, name=name)
        now = self._clock.now()
        expiry = self._resolve_expiry(expires_at, now)
        try:
            with write_transaction(self._engine) as conn:
                return self._insert(
                    conn, role=role, tenant=tenant, name=name, expires_at=expiry, now=now
                )
        except DBAPIError as exc:
            raise translate_db_error(exc, "creating an API key") from None

    def _refuse_configured(self, key_id: str, action: str) -> None:
        if key_id in self._bootstrap:
            raise InvalidCredential(
                [
                    FieldProblem(
                        "id",
                        f"API key {key_id!r} is configured ({ENV_SPEC} / {ENV_FILE}) and cannot "
                        f"be {action} here: remove or replace it in the configuration",
                    )
                ]
            )

    def _locked_row(self, conn: Any, key_id: str) -> RowMapping:
        query = select(api_keys).where(api_keys.c.id == key_id)
        if not is_sqlite(self._engine):
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise InvalidCredential([FieldProblem("id", "unknown API key")])
        return row  # type: ignore[no-any-return]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a stored key at once (this process's cache included); returns its metadata.

        Revoking a revoked key changes nothing and returns it. Unknown id →
        ``InvalidCredential(id: unknown API key)``; a configured key → InvalidCredential saying
        so (remove it from the configuration instead).
        """
        self._refuse_configured(key_id, "revoked")
        now = self._clock.now()
        try:
            with write_transaction(self._engine) as conn:
                row = self._locked_row(conn, key_id)
                key = self._record(row)
                if key.revoked_at is None:
                    conn.execute(
                        update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now)
                    )
                    key = replace(key, revoked_at=now)
        except DBAPIError as exc:
            raise translate_db_error(exc, "revoking an API key") from None
        self._forget(key_id)
        return key

    def rotate(
        self,
        key_id: str,
        *,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        expires_at: Expiry = DEFAULT_EXPIRY,
    ) -> tuple[ApiKey, str]:
        """Replace a key: returns ``(new metadata, new raw key)``.

        The new key has the old one's role, tenant and name, and ``expires_at`` as in
        :meth:`create`. The old key keeps working for ``grace_seconds`` (0 = stops now): its
        ``expires_at`` becomes ``now + grace`` — or stays, if it already expires sooner. Both
        changes commit together. A revoked or expired key cannot be rotated (create a new one).
        """
        self._refuse_configured(key_id, "rotated")
        if grace_seconds < 0:
            raise InvalidCredential([FieldProblem("grace_seconds", "must not be negative")])
        now = self._clock.now()
        expiry = self._resolve_expiry(expires_at, now)
        old_until = now + timedelta(seconds=grace_seconds)
        try:
            with write_transaction(self._engine) as conn:
                old = self._record(self._locked_row(conn, key_id))
                if not old.usable(now):
                    raise InvalidCredential(
                        [FieldProblem("id", f"API key is {old.state(now)}; create a new key")]
                    )
                if old.expires_at is None or old_until < old.expires_at:
                    conn.execute(
                        update(api_keys).where(api_keys.c.id == key_id).values(expires_at=old_until)
                    )
                created = self._insert(
                    conn,
                    role=old.role,
                    tenant=old.tenant,
                    name=old.name,
                    expires_at=expiry,
                    now=now,
                )
        except DBAPIError as exc:
            raise translate_db_error(exc, "rotating an API key") from None
        self._forget(key_id)
        return created

    def _create_initial_admin(self, path: Path) -> str | None:
        """See :func:`ensure_admin_key`: insert + file write in one locked transaction."""
        written = False
        try:
            with write_transaction(self._engine) as conn:
                if not is_sqlite(self._engine):
                    # SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL needs a
                    # lock that makes "count, then insert" atomic across processes.
                    conn.exec_driver_sql("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE")
                if conn.execute(select(func.count()).select_from(api_keys)).scalar_one() > 0:
                    return None
                now = self._clock.now()
                _, raw = self._insert(
                    conn,
                    role="admin",
                    tenant=PLATFORM_TENANT,
                    name=INITIAL_ADMIN_NAME,
                    expires_at=now + DEFAULT_LIFETIME,
                    now=now,
                )
                try:
                    _write_new_file(path, raw + "\n")
                except FileExistsError:
                    raise ConfigurationError(
                        f"{path} exists but the database has no API key: move the stale file "
                        "away and run again"
                    ) from None
                except OSError as exc:
                    raise ConfigurationError(
                        f"cannot write {path} ({type(exc).__name__})"
                    ) from None
                written = True
        except DBAPIError as exc:
            if written:
                # The commit failed after the file was written: the key in it was never stored.
                with contextlib.suppress(OSError):
                    path.unlink()
            raise translate_db_error(exc, "creating the first admin API key") from None
        return raw

    # -- authentication --------------------------------------------------------------------------

    def _forget(self, key_id: str) -> None:
        with self._lock:
            for digest in [d for d, (k, _) in self._cache.items() if k.id == key_id]:
                del self._cache[digest]

    def _lookup(self, key_id: str) -> tuple[str, ApiKey] | None:
        configured = self._bootstrap.get(key_id)
        if configured is not None:
            return configured
        row = self._stored_row(key_id)
        if row is None:
            return None
        return str(row["key_hash"]), self._record(row)

    def authenticate(self, raw_key: str) -> ApiKey:
        """The key's metadata if ``raw_key`` is a valid, unrevoked, unexpired key.

        Anything else raises ``AccessDenied("invalid API key")`` — one message for every case.
        Records the use (see :meth:`record_use`); a failure to record it does not deny access.
        """
        now = self._clock.now()
        # Always hash (bounded, so a megabyte header costs no more than a key).
        digest = hash_key(raw_key[: _MAX_RAW_LENGTH + 1]) if isinstance(raw_key, str) else ""
        mono = self._clock.monotonic()
        with self._lock:
            cached = self._cache.get(digest) if digest else None
        if cached is not None and cached[1] > mono and cached[0].usable(now):
            key = cached[0]
        else:
            key_id = key_id_of(raw_key) if isinstance(raw_key, str) else None
            found = self._lookup(key_id) if key_id is not None else None
            stored_hash, candidate = found if found is not None else (_DUMMY_HASH, None)
            # One constant-time comparison whatever happened above: against the stored hash, or
            # against the dummy when the id is unknown or the string malformed.
            matched = hmac.compare_digest(
                (digest or _DUMMY_HASH).encode("ascii"),
                stored_hash.encode("utf-8", "surrogatepass"),
            )
            if not matched or candidate is None or key_id is None or not candidate.usable(now):
                raise AccessDenied(INVALID_KEY_MESSAGE)
            key = candidate
            with self._lock:
                if len(self._cache) >= CACHE_MAX_ENTRIES:
                    self._cache.clear()
                self._cache[digest] = (key, mono + self._cache_ttl)
        with contextlib.suppress(StoreError):
            # Last-used is bookkeeping: a database hiccup here must not refuse a valid key.
            self.record_use(key.id)
        return key

    def record_use(self, key_id: str) -> None:
        """Set ``last_used_at`` to now, at most once per interval (60 s) per key and process.

        The UPDATE also skips rows written within the interval by another process. Configured
        keys have no row; their last use is kept in memory.
        """
        mono = self._clock.monotonic()
        with self._lock:
            last = self._last_write.get(key_id)
            if last is not None and mono - last < self._last_used_interval:
                return
            # Claimed before writing: a failing database is not retried on every request.
            self._last_write[key_id] = mono
        now = self._clock.now()
        if key_id in self._bootstrap:
            self._bootstrap_used[key_id] = now
            return
        cutoff = now - timedelta(seconds=self._last_used_interval)
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(
                    update(api_keys)
                    .where(
                        api_keys.c.id == key_id,
                        or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < cutoff),
                    )
                    .values(last_used_at=now)
                )
        except DBAPIError as exc:
            raise translate_db_error(exc, "recording an API key's use") from None


# -- the first admin key -------------------------------------------------------------------------


def _write_new_file(path: Path, content: str) -> None:
    """Create ``path`` with mode 0600 holding ``content``; never replaces an existing file.

    Written to a private temporary name, synced, then hard-linked into place: the link fails if
    the name exists (the O_EXCL rule) and the final name never shows a partial file.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:
            # A file system without hard links: create the final name exclusively instead.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def ensure_admin_key(store: ApiKeyStore, home: Path) -> str | None:
    """Create the first platform admin key when there is no key at all; return it, or ``None``.

    Only when the database holds no API key (revoked ones count) and none is configured: then a
    key with role ``admin``, tenant ``*``, name ``"initial admin"`` and the default expiry is
    created, written to ``home / "admin.key"`` (mode 0600) and returned for the caller to print
    once. The file is written before the key commits, so a crash cannot leave a stored key that
    nobody has; the check and the insert share one locked transaction, so two processes starting
    at once make one key. An existing ``admin.key`` is never overwritten: if one is there while
    the database has no key, :class:`ConfigurationError` asks the operator to move it away.
    """
    if store.has_bootstrap_keys:
        return None
    if store.count_stored() > 0:  # cheap check first; repeated under the lock
        return None
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return store._create_initial_admin(home / ADMIN_KEY_FILE)
