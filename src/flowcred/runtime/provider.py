"""The resolve path: a reference in, :class:`CredentialMaterial` out.

This is the code every flow run goes through, so it is built for speed:

* a hit in the in-process cache (default TTL 30 s, 0 disables) is a dict lookup, a clock read
  and the change watcher's freshness check (one more monotonic-clock read);
* a miss is one primary-key read on a per-thread raw driver connection
  (:class:`~flowcred.store.engine.HotReader`), one envelope open and one JSON decode;
* the last-used time is kept in memory and written in the background, so a resolve never
  writes to the database.

Every secret decrypted here is pinned in the log redaction registry before it is handed out:
the secrets of stored credentials are the registry's pinned class, which no flood of other
registrations can evict, and resolving is how a process that did not create a credential comes
to know its secret. Changes made through :class:`~flowcred.credentials.Credentials` invalidate
the cache at once in this process; changes made by other processes reach it through the change
feed within the visibility bound (:mod:`flowcred.runtime.invalidation`): the cache answers only
while its :class:`~flowcred.runtime.invalidation.ChangeWatcher` is fresh, and a fill started
before an invalidation is not stored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from time import monotonic
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from flowcred.catalog import Catalog, CredentialType, place
from flowcred.clock import Clock, SystemClock
from flowcred.crypto import KekRing, open_sealed, secret_aad
from flowcred.errors import (
    CredentialExpired,
    CredentialNotFound,
    FieldProblem,
    FlowcredError,
    InvalidCredential,
    TokenRefreshFailed,
)
from flowcred.redaction import Secret, SecretRegistry
from flowcred.references import is_id_text, parse_ref
from flowcred.runtime.invalidation import ChangeWatcher
from flowcred.runtime.last_used import LastUsedTracker
from flowcred.runtime.material import CredentialMaterial
from flowcred.store.change_feed import Change
from flowcred.store.credentials import HANDLE_SQL, RESOLVE_SQL, CredentialStore, as_utc
from flowcred.store.engine import HotReader

if TYPE_CHECKING:
    from flowcred.bindings.resolve import BindingResolver
    from flowcred.catalog.oauth_spec import OAuthSpec
    from flowcred.runtime.token_manager import TokenManager

Ref = int | str
_MAX_ID = 2**63 - 1  # ids are signed 64-bit database integers


class Resolver:
    """Shared by every provider of one broker: the cache, the reader and the decrypt step."""

    def __init__(
        self,
        *,
        reader: HotReader,
        store: CredentialStore,
        ring: Callable[[int], KekRing],
        catalog: Catalog,
        clock: Clock,
        registry: SecretRegistry,
        cache_ttl: float,
        last_used_interval: float,
        changes: ChangeWatcher | None = None,
    ) -> None:
        self._reader = reader
        self._ring = ring
        self._catalog = catalog
        self._clock = clock
        self._registry = registry
        self._ttl = cache_ttl
        self._resolve_sql = reader.sql(RESOLVE_SQL)
        self._handle_sql = reader.sql(HANDLE_SQL)
        # credential id -> (deadline, tenant, material)
        self._cache: dict[int, tuple[float, str, CredentialMaterial]] = {}
        # (tenant, environment, handle) -> (deadline, credential id)
        self._handles: dict[tuple[str, str, str], tuple[float, int]] = {}
        self._types: dict[str, CredentialType] = {}
        # OAuth types resolve through the token manager (set by the broker); their base
        # material (config fields only) is what this cache holds, never a token.
        self.tokens: TokenManager | None = None
        # Binding names resolve through the secret sources when the broker has bindings.
        self.bindings: BindingResolver | None = None
        self.last_used = LastUsedTracker(store, last_used_interval)
        # Bumped by every invalidation: a fill that read the database before one is not stored.
        self._generation = 0
        # The freshness gate on every hit (runtime/invalidation.py). With the real clock the hit
        # path compares the monotonic time it already read against ``fresh_until``: no extra
        # call on the hot path. An injected clock (tests) reads the real one for the gate.
        self._watch: ChangeWatcher | _NeverStale = changes if changes is not None else _NEVER_STALE
        self._ready: Callable[[], bool] = changes.ready if changes is not None else _always
        self._real_clock = type(clock) is SystemClock
        if changes is not None:
            changes.subscribe(self._on_change)
            changes.on_reset(self.clear)

    # -- cache control ---------------------------------------------------------------------

    def _fresh(self) -> bool:
        return monotonic() < self._watch.fresh_until

    def _fresh_at(self, mono: float) -> bool:
        """The gate for a hit at ``mono`` (the resolver clock's reading)."""
        return (mono if self._real_clock else monotonic()) < self._watch.fresh_until

    def _on_change(self, change: Change) -> None:
        if change.kind == "credential" and change.object_id.isdecimal():
            self.invalidate(int(change.object_id))

    def invalidate(self, credential_id: int) -> None:
        self._generation += 1
        self._cache.pop(credential_id, None)
        if self.tokens is not None:
            self.tokens.forget(credential_id)
        # Handles are few and cheap to re-read; dropping them all keeps a renamed or deleted
        # handle from pointing at a stale id.
        self._handles.clear()

    def cached_tenant(self, credential_id: int) -> str | None:
        """The tenant of a credential held in the cache (and still fresh), else ``None``."""
        entry = self._cache.get(credential_id)
        if entry is not None and entry[0] > self._clock.monotonic() and self._fresh():
            return entry[1]
        return None

    def clear(self) -> None:
        self._generation += 1
        self._cache.clear()
        self._handles.clear()
        if self.tokens is not None:
            self.tokens.forget()

    # -- resolve ---------------------------------------------------------------------------

    def credential_id(self, ref: Ref, tenant: str, environment: str) -> int:
        if type(ref) is int or (isinstance(ref, str) and is_id_text(ref)):
            cid = parse_ref(ref)
            assert isinstance(cid, int)
            if not 0 < cid <= _MAX_ID:
                raise CredentialNotFound(ref, tenant)
            return cid
        if not isinstance(ref, str) or isinstance(ref, bool):
            raise InvalidCredential([FieldProblem("ref", "must be an int id or a str handle")])
        key = (tenant, environment, ref)
        now = self._clock.monotonic()
        hit = self._handles.get(key)
        if hit is not None and hit[0] > now and self._fresh_at(now):
            return hit[1]
        generation = self._generation
        may_cache = self._ttl > 0 and self._ready()
        row = self._reader.fetchone(self._handle_sql, (tenant, environment, ref))
        if row is None:
            raise CredentialNotFound(ref, tenant)
        cid = int(row[0])
        if may_cache and generation == self._generation:
            self._handles[key] = (now + self._ttl, cid)
        return cid

    def resolve(self, ref: Ref, tenant: str, environment: str) -> CredentialMaterial:
        cid = self.credential_id(ref, tenant, environment)
        mono = self._clock.monotonic()
        entry = self._cache.get(cid)
        if (
            entry is not None
            and entry[0] > mono
            and (mono if self._real_clock else monotonic()) < self._watch.fresh_until
        ):
            if entry[1] != tenant:
                raise _foreign(ref, tenant)
            material = entry[2]
        else:
            generation = self._generation
            may_cache = self._ttl > 0 and self._ready()
            material = self._load(cid, ref, tenant)
            if may_cache and generation == self._generation:
                self._cache[cid] = (mono + self._ttl, tenant, material)
        spec = self._oauth(material.type)
        if spec is not None:
            material = self._token_manager().material(material, spec, tenant)
        return self._checked(cid, material)

    def force_token_refresh(self, ref: Ref, tenant: str, environment: str) -> CredentialMaterial:
        """Material with a newly obtained access token (the API answered 401 to the old one)."""
        cid = self.credential_id(ref, tenant, environment)
        entry = self._cache.get(cid)
        if entry is not None and entry[0] > self._clock.monotonic() and self._fresh():
            if entry[1] != tenant:
                raise _foreign(ref, tenant)
            base = entry[2]
        else:
            base = self._load(cid, ref, tenant)
        spec = self._oauth(base.type)
        if spec is None:
            return self._checked(cid, base)
        return self._checked(cid, self._token_manager().force_refresh(base, spec, tenant))

    def _oauth(self, type_name: str) -> OAuthSpec | None:
        return self._ctype(type_name).oauth

    def _token_manager(self) -> TokenManager:
        if self.tokens is None:
            raise TokenRefreshFailed("this broker has no token manager")
        return self.tokens

    def cached(self, ref: Ref, tenant: str, environment: str) -> CredentialMaterial | None:
        """What :meth:`resolve` would return, if that needs no database read; else None.

        For an event loop: a hit (the usual case for a hot credential) is answered without
        blocking, with the same errors as :meth:`resolve`; a miss is for a worker thread.
        """
        if not self._fresh():
            return None
        now = self._clock.monotonic()
        if isinstance(ref, str) and not is_id_text(ref):
            hit = self._handles.get((tenant, environment, ref))
            if hit is None or hit[0] <= now:
                return None
            cid = hit[1]
        else:
            cid = self.credential_id(ref, tenant, environment)  # no read for an id
        entry = self._cache.get(cid)
        if entry is None or entry[0] <= now:
            return None
        if entry[1] != tenant:
            raise _foreign(ref, tenant)
        material: CredentialMaterial | None = entry[2]
        spec = self._oauth(entry[2].type)
        if spec is not None:
            material = self._token_manager().cached_material(entry[2], spec, tenant)
        return None if material is None else self._checked(cid, material)

    def _checked(self, cid: int, material: CredentialMaterial) -> CredentialMaterial:
        now = self._clock.now()
        if material.expires_at is not None and material.expires_at <= now:
            raise CredentialExpired(cid)
        self.last_used.touch(cid, now)
        return material

    def _ctype(self, name: str) -> CredentialType:
        ctype = self._types.get(name)
        if ctype is None:
            ctype = self._types[name] = self._catalog.get(name)
        return ctype

    def _load(self, cid: int, ref: Ref, tenant: str) -> CredentialMaterial:
        row = self._reader.fetchone(self._resolve_sql, (cid,))
        if row is None:
            raise CredentialNotFound(ref, tenant)
        if row[0] != tenant:
            raise _foreign(ref, tenant)
        _, _env, handle, type_name, config_json, status, expires_at, version, ct, wk = row
        if status == "expired":
            raise CredentialExpired(cid)
        wrapped = bytes(wk)
        plain = open_sealed(
            bytes(ct),
            wrapped,
            ring=self._ring(_kek_version(wrapped)),
            aad=secret_aad(tenant, cid, version),
            credential_id=cid,
            version=version,
        )
        secret: dict[str, Any] = json.loads(plain)
        config: dict[str, Any] = json.loads(config_json)
        ctype = self._ctype(type_name)
        register = self._registry.pin
        if ctype.oauth is not None:
            # Only the token manager's access token leaves for an OAuth type: the base
            # material carries the config, none of the stored secrets.
            for value in secret.values():
                register(secret_text(value))
            return CredentialMaterial(
                credential_id=cid,
                handle=handle,
                type=type_name,
                version=version,
                headers=_EMPTY,
                query=_EMPTY,
                cookies=_EMPTY,
                fields=MappingProxyType(config),
                expires_at=None,
            )
        return static_material(
            ctype,
            config,
            secret,
            register,
            credential_id=cid,
            handle=handle,
            type_name=type_name,
            version=version,
            expires_at=as_utc(expires_at),
        )

    def secret_value(self, material: CredentialMaterial) -> str:
        """The Flow Studio ``GetPasswordAsync`` string for a resolved credential (the access
        token for an OAuth type)."""
        ctype = self._ctype(material.type)
        token = material.fields.get("access_token")
        if ctype.oauth is not None and isinstance(token, Secret):
            return token.reveal()
        secret = {
            f.name: material.fields[f.name].reveal()
            for f in ctype.secret_fields
            if isinstance(material.fields.get(f.name), Secret)
        }
        return ctype.secret_value_of(secret)


def secret_text(value: Any) -> str:
    """The text of a stored secret field value: the string itself, or its JSON.

    What the resolve path hands out (as a :class:`Secret`) and pins for redaction, and what
    ``Credentials`` pins when it stores a secret, so both register the same text.
    """
    return value if isinstance(value, str) else json.dumps(value)


def _always() -> bool:
    return True


class _NeverStale:
    """The gate without a change watcher: always fresh (a resolver with no other process)."""

    fresh_until = math.inf


_NEVER_STALE = _NeverStale()


def _kek_version(wrapped: bytes) -> int:
    """The KEK version a wrapped key names (a hint: it is authenticated when opened)."""
    try:
        return KekRing.kek_version_of(wrapped)
    except FlowcredError:
        return -1  # Malformed: any ring fails it, with the credential's own error.


def _foreign(ref: Ref, tenant: str) -> CredentialNotFound:
    """The error for another tenant's credential: identical to an unknown one for the caller;
    the flag only tells the audit trail to record an access denied."""
    exc = CredentialNotFound(ref, tenant)
    exc.foreign = True  # type: ignore[attr-defined]
    return exc


def static_material(
    ctype: CredentialType,
    config: dict[str, Any],
    secret: dict[str, Any],
    register: Callable[[str], None],
    *,
    credential_id: int,
    handle: str,
    type_name: str,
    version: int,
    expires_at: datetime | None,
) -> CredentialMaterial:
    """The material of a non-OAuth credential from its type, config and decrypted secret.

    Every secret value (and every header, query and cookie value built from one) is passed to
    ``register`` before the material exists. Shared by stored credentials and bindings
    (:mod:`flowcred.bindings.resolve`), so both hand out the same shape.
    """
    placement = place(ctype, config, secret)
    fields: dict[str, Any] = dict(config)
    for name, value in secret.items():
        text = secret_text(value)
        register(text)
        fields[name] = Secret(text)
    return CredentialMaterial(
        credential_id=credential_id,
        handle=handle,
        type=type_name,
        version=version,
        headers=_wrap(placement.headers, register),
        query=_wrap(placement.query, register),
        cookies=_wrap(placement.cookies, register),
        fields=MappingProxyType(fields),
        expires_at=expires_at,
    )


def _wrap(values: dict[str, str], register: Callable[[str], None]) -> MappingProxyType[str, Secret]:
    if not values:
        return _EMPTY
    for value in values.values():
        register(value)
    return MappingProxyType({k: Secret(v) for k, v in values.items()})


_EMPTY: MappingProxyType[str, Secret] = MappingProxyType({})


# Re-exported: the provider and the last-used tracker live in their own modules since the
# split, and ``from flowcred.runtime.provider import CredentialProvider`` keeps working.
from flowcred.runtime.credential_provider import CredentialProvider  # noqa: E402

__all__ = [
    "CredentialProvider",
    "LastUsedTracker",
    "Ref",
    "Resolver",
    "secret_text",
    "static_material",
]
