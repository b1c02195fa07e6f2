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
* successful lookups are cached in this process for :data:`CACHE_TTL_SECONDS`; a revoke or
  rotation in this process drops them at once, and one in another process reaches this one through
  the change feed within the visibility bound (given ``changes``: the cache answers only while it
  is fresh, see :mod:`flowcred.runtime.invalidation`);
* ``last_used_at`` is written at most once per :data:`LAST_USED_INTERVAL_SECONDS` per key.

Keys can also be provisioned declaratively (``FLOWCRED_API_KEYS`` / ``FLOWCRED_API_KEYS_FILE``,
see :func:`load_bootstrap_keys`): such *bootstrap* keys authenticate like stored keys, are listed
with ``source="bootstrap"``, and are removed by editing the configuration, not by ``revoke``.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import hmac
import secrets
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, RowMapping, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from flowcred.clock import Clock
from flowcred.errors import (
    AccessDenied,
    FieldProblem,
    InvalidCredential,
    StoreError,
)
from flowcred.store.admin_key import ADMIN_KEY_FILE, INITIAL_ADMIN_NAME, ensure_admin_key
from flowcred.store.api_key_format import (
    DEFAULT_EXPIRY,
    DEFAULT_LIFETIME,
    ENV_FILE,
    ENV_SPEC,
    EXPIRING_SOON,
    INVALID_KEY_MESSAGE,
    KEY_PREFIX,
    MAX_NAME_LENGTH,
    MAX_RAW_KEY_LENGTH,
    PLATFORM_TENANT,
    ROLES,
    ApiKey,
    Expiry,
    KeySource,
    KeyState,
    Role,
    bootstrap_from_env,
    generate_raw_key,
    hash_key,
    key_id_of,
    load_bootstrap_keys,
    validate_key_fields,
)
from flowcred.store.change_feed import Change, ChangeSource, record_change
from flowcred.store.credentials import as_utc
from flowcred.store.engine import is_sqlite, read_connection, translate_db_error, write_transaction
from flowcred.store.tables import api_keys

DEFAULT_GRACE_SECONDS: Final = 7 * 86400
CACHE_TTL_SECONDS: Final = 5.0
CACHE_MAX_ENTRIES: Final = 4096
LAST_USED_INTERVAL_SECONDS: Final = 60.0

# Compared against when the id is unknown (or the string is malformed), so a failed lookup costs
# the same hash + constant-time comparison as a wrong secret for a real id, and response timing
# does not tell an attacker which ids exist. Random per process: it matches no key.
_DUMMY_HASH: Final = hashlib.sha256(secrets.token_bytes(32)).hexdigest()


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
        changes: ChangeSource | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
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
        # Bumped by every invalidation: a lookup that read the row before one is not cached.
        self._generation = 0
        self._changes = changes
        if changes is not None:
            changes.subscribe(self._on_change)
            changes.on_reset(self._forget_all)

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
            with read_connection(self.engine) as conn:
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
            with read_connection(self.engine) as conn:
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
            with read_connection(self.engine) as conn:
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

    def insert_key(
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
        now = self.clock.now()
        expiry = self._resolve_expiry(expires_at, now)
        try:
            with write_transaction(self.engine) as conn:
                return self.insert_key(
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
        if not is_sqlite(self.engine):
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
        now = self.clock.now()
        try:
            with write_transaction(self.engine) as conn:
                row = self._locked_row(conn, key_id)
                key = self._record(row)
                if key.revoked_at is None:
                    conn.execute(
                        update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now)
                    )
                    key = replace(key, revoked_at=now)
                    record_change(conn, "api_key", key_id, now)
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
        now = self.clock.now()
        expiry = self._resolve_expiry(expires_at, now)
        old_until = now + timedelta(seconds=grace_seconds)
        try:
            with write_transaction(self.engine) as conn:
                old = self._record(self._locked_row(conn, key_id))
                if not old.usable(now):
                    raise InvalidCredential(
                        [FieldProblem("id", f"API key is {old.state(now)}; create a new key")]
                    )
                if old.expires_at is None or old_until < old.expires_at:
                    conn.execute(
                        update(api_keys).where(api_keys.c.id == key_id).values(expires_at=old_until)
                    )
                created = self.insert_key(
                    conn,
                    role=old.role,
                    tenant=old.tenant,
                    name=old.name,
                    expires_at=expiry,
                    now=now,
                )
                record_change(conn, "api_key", key_id, now)
        except DBAPIError as exc:
            raise translate_db_error(exc, "rotating an API key") from None
        self._forget(key_id)
        return created

    # -- authentication --------------------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.kind == "api_key":
            self._forget(change.object_id)

    def _forget_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._cache.clear()

    def _forget(self, key_id: str) -> None:
        with self._lock:
            self._generation += 1
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
        now = self.clock.now()
        # Always hash (bounded, so a megabyte header costs no more than a key).
        digest = hash_key(raw_key[: MAX_RAW_KEY_LENGTH + 1]) if isinstance(raw_key, str) else ""
        mono = self.clock.monotonic()
        with self._lock:
            cached = self._cache.get(digest) if digest else None
        changes = self._changes
        if (
            cached is not None
            and cached[1] > mono
            and cached[0].usable(now)
            and (changes is None or changes.fresh())
        ):
            key = cached[0]
        else:
            generation = self._generation
            may_cache = changes is None or changes.ready()
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
                if may_cache and generation == self._generation:
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
        mono = self.clock.monotonic()
        with self._lock:
            last = self._last_write.get(key_id)
            if last is not None and mono - last < self._last_used_interval:
                return
            # Claimed before writing: a failing database is not retried on every request.
            self._last_write[key_id] = mono
        now = self.clock.now()
        if key_id in self._bootstrap:
            self._bootstrap_used[key_id] = now
            return
        cutoff = now - timedelta(seconds=self._last_used_interval)
        try:
            with write_transaction(self.engine) as conn:
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


__all__ = [
    "ADMIN_KEY_FILE",
    "CACHE_MAX_ENTRIES",
    "CACHE_TTL_SECONDS",
    "DEFAULT_EXPIRY",
    "DEFAULT_GRACE_SECONDS",
    "DEFAULT_LIFETIME",
    "ENV_FILE",
    "ENV_SPEC",
    "EXPIRING_SOON",
    "INITIAL_ADMIN_NAME",
    "INVALID_KEY_MESSAGE",
    "KEY_PREFIX",
    "LAST_USED_INTERVAL_SECONDS",
    "MAX_NAME_LENGTH",
    "PLATFORM_TENANT",
    "ROLES",
    "ApiKey",
    "ApiKeyStore",
    "Expiry",
    "KeySource",
    "KeyState",
    "Role",
    "bootstrap_from_env",
    "ensure_admin_key",
    "generate_raw_key",
    "hash_key",
    "key_id_of",
    "load_bootstrap_keys",
    "validate_key_fields",
]
