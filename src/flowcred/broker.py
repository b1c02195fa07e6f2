"""The broker returned by :func:`flowcred.open`: credentials management and providers.

>>> broker = flowcred.open()                                         # doctest: +SKIP
>>> cred = broker.credentials.create(name="Acme Slack Bot Token", type="slack",
...                                  tenant="acme", secret={"token": "xoxb-..."})
>>> broker.provider(tenant="acme").get_password(cred.id)             # doctest: +SKIP
'xoxb-...'

Opening checks, in order: the settings are valid, the schema is current (migrating if needed),
and the key source holds the key this database was sealed with. Any failure raises a
:class:`~flowcred.errors.ConfigurationError` subclass and nothing starts: flowcred never falls
back to storing plaintext.
"""

from __future__ import annotations

import builtins
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from flowcred.audit import Access, Actor, AuditLog, AuditRecorder
from flowcred.audit.checkpoint import CheckpointWriter, read_checkpoint
from flowcred.audit.events import API_KEY, KEK, Result
from flowcred.audit.trail import AuditTrail
from flowcred.catalog import Catalog, CredentialType, default_catalog
from flowcred.clock import Clock, SystemClock
from flowcred.crypto import KeySource, key_source_from_settings
from flowcred.errors import (
    ConfigurationError,
    CredentialNotFound,
    FieldProblem,
    FlowcredError,
    InvalidCredential,
    UnknownCredentialType,
    error_context,
)
from flowcred.records import Credential, SecretVersion
from flowcred.redaction import SecretRegistry, default_registry, install_log_redaction
from flowcred.runtime.provider import CredentialProvider, Ref, Resolver
from flowcred.settings import FlowcredSettings, load_settings
from flowcred.store import kek_versions, migrate
from flowcred.store.api_keys import (
    ADMIN_KEY_FILE,
    ApiKeyStore,
    bootstrap_from_env,
    ensure_admin_key,
    key_id_of,
)
from flowcred.store.bindings import BindingStore
from flowcred.store.credentials import UNSET, CredentialStore
from flowcred.store.engine import HotReader, make_engine

DEFAULT_TENANT = "default"
MAX_ID = 2**63 - 1  # ids are signed 64-bit database integers
DEFAULT_ENVIRONMENT = "default"
_HANDLE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_TENANT_RE = re.compile(r"^(?:\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})$")


def slugify(name: str) -> str:
    """A handle from a display name: lower-case ASCII words joined by ``-``.

    A name made only of digits gets a ``cred-`` prefix, because a handle that looks like an
    integer could not be told apart from a credential id.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:120] or "credential"
    return f"cred-{slug}" if slug.isdigit() else slug


class Credentials:
    """Create, read, change and delete credentials. Returned records never carry a secret.

    ``ref`` is an int id or a handle; handles are looked up in ``tenant`` + ``environment``. When
    ``tenant`` is given, an id of another tenant raises CredentialNotFound (and is audited as an
    access denied). Every call leaves exactly one audit event with this object's actor, whatever
    its outcome; changes commit together with their event.
    """

    def __init__(
        self,
        store: CredentialStore,
        catalog: Catalog,
        resolver: Resolver,
        trail: AuditTrail,
        access: Access,
        registry: SecretRegistry,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._resolver = resolver
        self._trail = trail
        self._access = access
        self._registry = registry

    # -- helpers ---------------------------------------------------------------------------

    def _find(self, ref: Ref, tenant: str | None, environment: str) -> Credential:
        if isinstance(ref, bool) or not isinstance(ref, int | str):
            raise InvalidCredential([FieldProblem("ref", "must be an int id or a str handle")])
        if isinstance(ref, int) or ref.isdigit():
            if not 0 < int(ref) <= MAX_ID:
                raise CredentialNotFound(ref, tenant)
            found = self._store.get(int(ref))
            if found is None:
                raise CredentialNotFound(ref, tenant)
            if tenant is not None and found.tenant != tenant:
                exc = CredentialNotFound(ref, tenant)
                exc.foreign = True  # type: ignore[attr-defined]
                raise exc
            return found
        found = self._store.find_handle(tenant or DEFAULT_TENANT, environment, ref)
        if found is None:
            raise CredentialNotFound(ref, tenant)
        return found

    def _secret_payload(
        self,
        ctype: CredentialType,
        secret: Mapping[str, Any] | None,
        secret_value: str | None,
        problems: list[FieldProblem],
    ) -> dict[str, Any] | None:
        # Everything received as a secret is masked in logs from now on, even if it is rejected.
        if secret_value is not None:
            self._registry.register(secret_value)
        for value in (secret or {}).values():
            if isinstance(value, str):
                self._registry.register(value)
        if secret is not None and secret_value is not None:
            problems.append(FieldProblem("secret", "give either secret or secret_value, not both"))
            return None
        if secret_value is not None:
            try:
                return ctype.parse_secret_value(secret_value)
            except InvalidCredential as exc:
                problems.extend(exc.problems)
                return None
        return dict(secret or {})

    def _failed(self, action: str, exc: FlowcredError, tenant: str | None, ref: Ref | None) -> None:
        self._trail.failure(self._access, action, exc, tenant=tenant, ref=ref)

    # -- API -------------------------------------------------------------------------------

    def create(
        self,
        *,
        name: str,
        type: str,
        tenant: str = DEFAULT_TENANT,
        environment: str = DEFAULT_ENVIRONMENT,
        handle: str | None = None,
        config: Mapping[str, Any] | None = None,
        secret: Mapping[str, Any] | None = None,
        secret_value: str | None = None,
        expires_at: datetime | None = None,
    ) -> Credential:
        """Validate and store a new credential; every problem is reported at once.

        Raises InvalidCredential (with ``problems``), UnknownCredentialType, HandleConflict.
        """
        try:
            return self._create(
                name=name,
                type_name=type,
                tenant=tenant,
                environment=environment,
                handle=handle,
                config=config,
                secret=secret,
                secret_value=secret_value,
                expires_at=expires_at,
            )
        except FlowcredError as exc:
            self._failed("created", exc, tenant, None)
            raise

    def _create(
        self,
        *,
        name: str,
        type_name: str,
        tenant: str,
        environment: str,
        handle: str | None,
        config: Mapping[str, Any] | None,
        secret: Mapping[str, Any] | None,
        secret_value: str | None,
        expires_at: datetime | None,
    ) -> Credential:
        problems: list[FieldProblem] = []
        try:
            ctype = self._catalog.get(type_name)
        except UnknownCredentialType:
            if secret_value is not None:
                self._registry.register(secret_value)
            raise
        if not isinstance(name, str) or not name.strip():
            problems.append(FieldProblem("name", "is required"))
        elif len(name) > 256:
            problems.append(FieldProblem("name", "must be at most 256 characters"))
        if not _TENANT_RE.match(tenant) or tenant == "*":
            problems.append(FieldProblem("tenant", "must be letters, digits, '.', '_' or '-'"))
        if not _TENANT_RE.match(environment) or environment == "*":
            problems.append(FieldProblem("environment", "must be letters, digits, '.', '_' or '-'"))
        chosen = handle if handle is not None else slugify(name or "")
        if not _HANDLE_RE.match(chosen) or chosen.isdigit():
            problems.append(
                FieldProblem(
                    "handle", "must be a lower-case slug (a-z, 0-9, '.', '_', '-'), not all digits"
                )
            )
        payload = self._secret_payload(ctype, secret, secret_value, problems)
        clean_config: dict[str, Any] = {}
        clean_secret: dict[str, Any] = {}
        try:
            clean_config, clean_secret = ctype.validate(config, payload or {})
        except InvalidCredential as exc:
            problems.extend(exc.problems)
        if problems:
            raise InvalidCredential(problems, type_name=ctype.name)
        hook, after = self._trail.on_write(
            self._access, "created", lambda r: {"type": r.type, "handle": r.handle, "version": 1}
        )
        record = self._store.create(
            tenant=tenant,
            environment=environment,
            handle=chosen,
            name=name.strip(),
            type_name=ctype.name,
            config=clean_config,
            secret=json.dumps(clean_secret).encode(),
            expires_at=expires_at,
            on_write=hook,
        )
        after()
        self._resolver.invalidate(record.id)
        return record

    def get(
        self, ref: Ref, *, tenant: str | None = None, environment: str = DEFAULT_ENVIRONMENT
    ) -> Credential:
        """Metadata of one credential (with the last-used time seen by this process)."""
        try:
            found = self._with_last_used(self._find(ref, tenant, environment))
        except FlowcredError as exc:
            self._failed("viewed", exc, tenant, ref)
            raise
        self._trail.credential_read(self._access, "viewed", found, tenant=found.tenant)
        return found

    def describe(
        self, ref: Ref, *, tenant: str | None = None, environment: str = DEFAULT_ENVIRONMENT
    ) -> tuple[Credential, builtins.list[SecretVersion]]:
        """Metadata and the kept versions in one call (one audit event)."""
        try:
            found = self._with_last_used(self._find(ref, tenant, environment))
            versions = self._store.versions(found.id)
        except FlowcredError as exc:
            self._failed("viewed", exc, tenant, ref)
            raise
        self._trail.credential_read(
            self._access, "viewed", found, tenant=found.tenant, details={"versions": True}
        )
        return found, versions

    def _with_last_used(self, found: Credential) -> Credential:
        """The record with the newer of its stored last-used time and this process's."""
        seen = self._resolver.last_used.seen(found.id)
        if seen is not None and (found.last_used_at is None or seen > found.last_used_at):
            return replace(found, last_used_at=seen)
        return found

    def list(
        self,
        *,
        tenant: str | None = None,
        environment: str | None = None,
        type: str | None = None,
        family: str | None = None,
        status: str | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[Credential]:
        """Credentials in id order; filters combine; ``after_id`` + ``limit`` paginate."""
        try:
            records = self._list(tenant, environment, type, family, status, after_id, limit)
        except FlowcredError as exc:
            self._failed("listed", exc, tenant, None)
            raise
        filters = {
            k: v
            for k, v in {
                "environment": environment,
                "type": type,
                "family": family,
                "status": status,
            }.items()
            if v is not None
        }
        self._trail.record(
            self._access,
            "credential",
            "listed",
            "success",
            tenant=tenant,
            resource_type="credential",
            details={"count": len(records), **filters},
        )
        return records

    def _list(
        self,
        tenant: str | None,
        environment: str | None,
        type_name: str | None,
        family: str | None,
        status: str | None,
        after_id: int | None,
        limit: int | None,
    ) -> builtins.list[Credential]:
        type_names: builtins.list[str] | None = None
        if type_name is not None:
            type_names = [self._catalog.get(type_name).name]
        if family is not None:
            in_family = [t.name for t in self._catalog.by_family(family)]  # type: ignore[arg-type]
            type_names = [t for t in (type_names or in_family) if t in in_family] or ["\x00none"]
        records = self._store.list(
            tenant=tenant,
            environment=environment,
            type_names=type_names,
            after_id=after_id,
            limit=limit if status is None else None,
        )
        records = [self._with_last_used(r) for r in records]
        if status is not None:
            records = [r for r in records if r.status == status][: limit or None]
        return records

    def update(
        self,
        ref: Ref,
        *,
        tenant: str | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        expires_at: datetime | None = UNSET,
    ) -> Credential:
        """Change the name, non-secret config (merged; a ``None`` value removes a key) or expiry."""
        try:
            found = self._find(ref, tenant, environment)
            ctype = self._catalog.get(found.type)
            new_config = None
            if config is not None:
                merged = dict(found.config)
                for key, value in config.items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                with error_context(credential_id=found.id):
                    new_config = ctype.validate_config(merged)
            if name is not None and not name.strip():
                raise InvalidCredential([FieldProblem("name", "must not be empty")])
            changed = sorted(
                ([] if name is None else ["name"])
                + ([] if config is None else [f"config.{k}" for k in config])
                + ([] if expires_at is UNSET else ["expires_at"])
            )
            hook, after = self._trail.on_write(
                self._access, "updated", lambda r: {"changed": changed}
            )
            record = self._store.update(
                found.id,
                name=name.strip() if name else None,
                config=new_config,
                expires_at=expires_at,
                on_write=hook,
            )
        except FlowcredError as exc:
            self._failed("updated", exc, tenant, ref)
            raise
        after()
        self._resolver.invalidate(found.id)
        return record

    def rotate(
        self,
        ref: Ref,
        *,
        tenant: str | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        secret: Mapping[str, Any] | None = None,
        secret_value: str | None = None,
        expected_version: int | None = None,
    ) -> Credential:
        """Store a new secret version and make it current; the id and handle stay the same.

        With ``expected_version``, fails with VersionConflict if someone rotated first. Without
        it, two concurrent rotations still never lose an update silently: the later one to commit
        gets VersionConflict.
        """
        try:
            found = self._find(ref, tenant, environment)
            ctype = self._catalog.get(found.type)
            problems: builtins.list[FieldProblem] = []
            payload = self._secret_payload(ctype, secret, secret_value, problems)
            if payload is not None:
                try:
                    payload = ctype.validate_secret(payload)
                except InvalidCredential as exc:
                    problems.extend(exc.problems)
            if problems:
                raise InvalidCredential(problems, type_name=ctype.name)
            expected = expected_version if expected_version is not None else found.current_version
            hook, after = self._trail.on_write(
                self._access,
                "rotated",
                lambda r: {"from_version": expected, "version": r.current_version},
            )
            with error_context(credential_id=found.id):
                record = self._store.rotate(
                    found.id,
                    json.dumps(payload).encode(),
                    expected_version=expected,
                    on_write=hook,
                )
        except FlowcredError as exc:
            self._failed("rotated", exc, tenant, ref)
            raise
        after()
        self._resolver.invalidate(found.id)
        return record

    def rollback(
        self,
        ref: Ref,
        version: int,
        *,
        tenant: str | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        expected_version: int | None = None,
    ) -> Credential:
        """Make a kept older version current again."""
        try:
            found = self._find(ref, tenant, environment)
            expected = expected_version if expected_version is not None else found.current_version
            hook, after = self._trail.on_write(
                self._access,
                "rolled_back",
                lambda r: {"from_version": expected, "version": r.current_version},
            )
            record = self._store.rollback(
                found.id, version, expected_version=expected, on_write=hook
            )
        except FlowcredError as exc:
            self._failed("rolled_back", exc, tenant, ref)
            raise
        after()
        self._resolver.invalidate(found.id)
        return record

    def delete(
        self, ref: Ref, *, tenant: str | None = None, environment: str = DEFAULT_ENVIRONMENT
    ) -> Credential:
        """Delete the credential and every stored version of its secret; returns its last record."""
        try:
            found = self._find(ref, tenant, environment)
            hook, after = self._trail.on_write(
                self._access, "deleted", lambda r: {"type": r.type, "handle": r.handle}
            )
            record = self._store.delete(found.id, on_write=hook)
        except FlowcredError as exc:
            self._failed("deleted", exc, tenant, ref)
            raise
        after()
        self._resolver.invalidate(found.id)
        return record

    def versions(
        self, ref: Ref, *, tenant: str | None = None, environment: str = DEFAULT_ENVIRONMENT
    ) -> builtins.list[SecretVersion]:
        """The kept versions of the secret, newest first (metadata only)."""
        return self.describe(ref, tenant=tenant, environment=environment)[1]


class BrokerView:
    """The broker as seen by one actor: every event it causes names that actor and source."""

    def __init__(self, broker: Broker, access: Access) -> None:
        self._broker = broker
        self.access = access
        self.credentials = Credentials(
            broker._store, broker.catalog, broker._resolver, broker._trail, access, broker._registry
        )

    def provider(
        self, tenant: str = DEFAULT_TENANT, environment: str = DEFAULT_ENVIRONMENT
    ) -> CredentialProvider:
        """A resolver bound to ``tenant`` (and ``environment`` for handle references)."""
        return CredentialProvider(
            self._broker._resolver, self._broker._trail, self.access, tenant, environment
        )


class Broker:
    """One open flowcred store: ``credentials`` to manage, ``provider()`` to resolve, ``audit``.

    Calls through the broker itself act as its default actor (the OS user unless ``open()`` was
    given another); :meth:`acting_as` gives a view for another actor, as the HTTP API does per
    request. Close it (or use it as a context manager) to flush last-used times, write the audit
    checkpoint and release connections.
    """

    def __init__(
        self,
        *,
        settings: FlowcredSettings,
        engine: Engine,
        key_source: KeySource,
        catalog: Catalog,
        clock: Clock,
        registry: SecretRegistry,
        actor: Actor | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.clock = clock
        self.engine = engine
        self.key_source = key_source
        self._registry = registry
        self._rings = kek_versions.RingHolder(
            engine, key_source, clock, kek_versions.open_ring(engine, key_source, clock)
        )

        def family_of(type_name: str) -> str:
            try:
                return catalog.get(type_name).family
            except UnknownCredentialType:
                return "unknown"

        self._store = CredentialStore(
            engine,
            ring=lambda: self._rings.current,
            clock=clock,
            retention=settings.version_retention,
            family_of=family_of,
            ring_for=self._rings.covering,
        )
        self._reader = HotReader(engine)
        self._resolver = Resolver(
            reader=self._reader,
            store=self._store,
            ring=self._rings.covering,
            catalog=catalog,
            clock=clock,
            registry=registry,
            cache_ttl=settings.cache_ttl_seconds,
            last_used_interval=settings.last_used_flush_seconds,
        )
        checkpoint_path = settings.resolved_checkpoint_path
        self._recorder = AuditRecorder(
            engine,
            ring=lambda: self._rings.current,
            registry=registry,
            clock=clock,
            checkpoint=CheckpointWriter(
                checkpoint_path, interval=settings.audit_checkpoint_seconds, clock=clock
            ),
        )
        self._seed_known_position(checkpoint_path)
        self._trail = AuditTrail(self._recorder, clock)
        self.audit = AuditLog(
            engine, ring_for=self._rings.covering, checkpoint_path=checkpoint_path
        )
        self.api_keys = ApiKeyStore(engine, clock, bootstrap=bootstrap_from_env())
        self.bindings = BindingStore(engine, clock)
        self.access = Access(actor or Actor.os_user(), "local")
        self._default_view = BrokerView(self, self.access)
        self.credentials = self._default_view.credentials
        self._closed = False

    def _seed_known_position(self, checkpoint_path: Path) -> None:
        """Start from the checkpoint's position, so a chain cut while no process ran is not
        silently extended. An unreadable checkpoint does not stop start-up; verify reports it."""
        try:
            checkpoint = read_checkpoint(checkpoint_path, self._rings.covering)
        except ConfigurationError:
            return
        if checkpoint is not None and checkpoint.last_id > 0:
            self._recorder.know(checkpoint.last_id, checkpoint.hash)

    def __repr__(self) -> str:
        backend = "sqlite" if self.settings.is_embedded else self.engine.dialect.name
        return f"Broker(database={backend!r}, kek_version={self._rings.current.primary_version})"

    @property
    def kek_version(self) -> int:
        """The primary key-encryption-key version new secrets are sealed with."""
        return self._rings.current.primary_version

    def acting_as(self, actor: Actor, source: str | None = None) -> BrokerView:
        """A view whose operations are audited as ``actor`` from ``source`` (an address)."""
        return BrokerView(self, Access(actor, source))

    def provider(
        self, tenant: str = DEFAULT_TENANT, environment: str = DEFAULT_ENVIRONMENT
    ) -> CredentialProvider:
        """A resolver bound to ``tenant`` (and ``environment`` for handle references)."""
        return self._default_view.provider(tenant, environment)

    def rotate_keys(
        self, *, progress: kek_versions.ProgressCallback | None = None
    ) -> kek_versions.RotationResult:
        """Add a KEK version and re-wrap every data key (or finish an interrupted rotation)."""
        try:
            ring, result = kek_versions.rotate_kek(
                self.engine,
                self.key_source,
                self.clock,
                batch_size=self.settings.rewrap_batch_size,
                progress=progress,
            )
        except FlowcredError as exc:
            self._trail.record(
                self.access,
                KEK,
                "rotated",
                "failure",
                resource_type=KEK,
                details={"error": type(exc).__name__, "message": str(exc)},
            )
            raise
        self._rings.replace(ring)
        self._resolver.clear()
        self._trail.record(
            self.access,
            KEK,
            "rotated",
            "success",
            resource_type=KEK,
            resource_id=result.primary_version,
            details={"rewrapped": result.rewrapped, "resumed": result.resumed},
        )
        return result

    def audit_failure(
        self, action: str, exc: FlowcredError, *, tenant: str | None, ref: int | str | None
    ) -> None:
        """Record a credential operation that failed before reaching :class:`Credentials` (the
        CLI's own input checks), so it still leaves its one event."""
        self._trail.failure(self.access, action, exc, tenant=tenant, ref=ref)

    def audit_denial(
        self, access: Access, event_type: str, action: str, *, details: Mapping[str, Any]
    ) -> None:
        """Record a refused request (bad key, wrong role) that never reached a credential."""
        self._trail.record(access, event_type, action, "denied", details=details)

    def audit_event(
        self, access: Access, event_type: str, action: str, result: Result, **fields: Any
    ) -> None:
        """Record an event of another subsystem (API keys, bindings) on the same chain."""
        self._trail.record(access, event_type, action, result, **fields)

    def ensure_admin_key(self) -> tuple[str, Path] | None:
        """On a store with no API key at all, create the first platform admin key.

        Returns the raw key (to show once) and the 0600 file it was also written to, or ``None``
        when keys already exist or are configured.
        """
        raw = ensure_admin_key(self.api_keys, self.settings.home)
        if raw is None:
            return None
        created = self.api_keys.get(key_id_of(raw) or "")
        if created is not None:
            self._trail.record(
                self.access,
                API_KEY,
                "created",
                "success",
                tenant=created.tenant,
                resource_type=API_KEY,
                resource_id=created.id,
                details={"role": created.role, "name": created.name},
            )
        return raw, self.settings.home / ADMIN_KEY_FILE

    def record_for(self, credential_id: int) -> Credential | None:
        """The credential's record, not audited: for routing a request, never for answering."""
        return self._store.get(credential_id)

    def tenant_of(self, credential_id: int) -> str | None:
        """The tenant owning ``credential_id`` (not audited: for routing a request only).

        Answered from the resolve cache when it holds the credential, so routing a platform
        key's resolve costs no extra read.
        """
        cached = self.cached_tenant_of(credential_id)
        if cached is not None:
            return cached
        found = self._store.get(credential_id)
        return found.tenant if found is not None else None

    def cached_tenant_of(self, credential_id: int) -> str | None:
        """:meth:`tenant_of` when the resolve cache knows it (no read, safe on an event loop);
        None otherwise."""
        return self._resolver.cached_tenant(credential_id)

    def pending_rewraps(self) -> int:
        """Data keys not yet under the primary KEK (non-zero after an interrupted rotation)."""
        return kek_versions.pending_rewraps(self.engine, self._rings.current.primary_version)

    def check_ready(self) -> None:
        """Raise if the database or the key is unusable (for readiness probes)."""
        kek_versions.open_ring(self.engine, self.key_source, self.clock)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._resolver.last_used.close()
        self._recorder.close()
        self._reader.close()
        self.engine.dispose()

    async def aclose(self) -> None:
        self.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Broker:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


def open_broker(
    database_url: str | None = None,
    *,
    home: str | None = None,
    key_source: KeySource | None = None,
    settings: FlowcredSettings | None = None,
    clock: Clock | None = None,
    catalog: Catalog | None = None,
    actor: Actor | None = None,
) -> Broker:
    """Open (and on first use initialise) a flowcred store. See :func:`flowcred.open`."""
    if settings is None:
        overrides: dict[str, object] = {}
        if database_url is not None:
            overrides["database_url"] = database_url
        if home is not None:
            overrides["home"] = home
        settings = load_settings(**overrides)
    registry = default_registry()
    install_log_redaction(registry)
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate.upgrade(engine)
        return Broker(
            settings=settings,
            engine=engine,
            key_source=key_source or key_source_from_settings(settings),
            catalog=catalog or default_catalog(),
            clock=clock or SystemClock(),
            registry=registry,
            actor=actor,
        )
    except BaseException:
        engine.dispose()
        raise
