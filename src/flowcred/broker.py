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

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from flowcred.audit import Access, Actor, AuditLog, AuditRecorder
from flowcred.audit.checkpoint import CheckpointWriter, read_checkpoint
from flowcred.audit.events import API_KEY, KEK, Result
from flowcred.audit.trail import AuditTrail
from flowcred.bindings.resolve import open_bindings
from flowcred.catalog import Catalog, default_catalog
from flowcred.clock import Clock, SystemClock
from flowcred.credentials import Credentials
from flowcred.crypto import KeySource, key_source_from_settings
from flowcred.errors import ConfigurationError, FlowcredError, UnknownCredentialType
from flowcred.flow_bindings import Bindings
from flowcred.records import Credential
from flowcred.redaction import SecretRegistry, default_registry, install_log_redaction
from flowcred.references import DEFAULT_ENVIRONMENT, DEFAULT_TENANT, MAX_ID, slugify
from flowcred.runtime.authorization import wired_flow
from flowcred.runtime.circuit_breaker import BreakerRegistry
from flowcred.runtime.invalidation import ChangeWatcher
from flowcred.runtime.oauth2_grants import GrantClient
from flowcred.runtime.provider import CredentialProvider, Resolver
from flowcred.runtime.retry import RetryPolicy
from flowcred.runtime.token_audit import TokenAudit
from flowcred.runtime.token_manager import TokenManager
from flowcred.settings import FlowcredSettings, load_settings
from flowcred.store import kek_retire, kek_versions, migrate
from flowcred.store.api_keys import (
    ADMIN_KEY_FILE,
    ApiKeyStore,
    bootstrap_from_env,
    ensure_admin_key,
    key_id_of,
)
from flowcred.store.bindings import BindingStore
from flowcred.store.change_feed import Change
from flowcred.store.credentials import CredentialStore
from flowcred.store.engine import HotReader, make_engine
from flowcred.store.oauth_tokens import TokenStore


class BrokerView:
    """The broker as seen by one actor: every event it causes names that actor and source."""

    def __init__(self, broker: Broker, access: Access) -> None:
        self._broker = broker
        self.access = access
        self.bindings = Bindings(broker._binding_store, broker._store, broker._trail, access)
        self.credentials = Credentials(
            broker._store,
            broker.catalog,
            broker._resolver,
            broker._trail,
            access,
            broker._registry,
            bindings=broker._binding_store,
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
        bindings: str | Path | None = None,
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
        # Other processes' changes reach this one's caches through the change feed.
        self._changes = ChangeWatcher(engine, bound=settings.change_visibility_seconds)
        self._changes.subscribe(self._on_key_change)
        self._resolver = Resolver(
            reader=self._reader,
            store=self._store,
            ring=self._rings.covering,
            catalog=catalog,
            clock=clock,
            registry=registry,
            cache_ttl=settings.cache_ttl_seconds,
            last_used_interval=settings.last_used_flush_seconds,
            changes=self._changes,
        )
        checkpoint_path = settings.resolved_checkpoint_path
        self._recorder = AuditRecorder(
            engine,
            ring=lambda: self._rings.current,
            registry=registry,
            clock=clock,
            checkpoint=CheckpointWriter(
                checkpoint_path,
                interval=settings.audit_checkpoint_seconds,
                clock=clock,
                ring_for=self._rings.covering,
            ),
        )
        self._seed_known_position(checkpoint_path)
        self._trail = AuditTrail(self._recorder, clock)
        self.audit = AuditLog(
            engine, ring_for=self._rings.covering, checkpoint_path=checkpoint_path
        )
        self.api_keys = ApiKeyStore(
            engine, clock, bootstrap=bootstrap_from_env(), changes=self._changes
        )
        self._binding_store = BindingStore(engine, clock)
        self.tokens = _token_manager(self, settings, registry)
        self._resolver.tokens = self.tokens
        self.oauth_flow = wired_flow(self, self.tokens.grants, self.tokens.authorized)
        self.access = Access(actor or Actor.os_user(), "local")
        self._default_view = BrokerView(self, self.access)
        self.credentials = self._default_view.credentials
        self.bindings = self._default_view.bindings
        self._closed = False
        # Binding names (FLOWCRED_BINDINGS_FILE) resolve through the secret sources.
        self._resolver.bindings = open_bindings(self, bindings or settings.bindings_file)

    def _seed_known_position(self, checkpoint_path: Path) -> None:
        """Start from the checkpoint's position, so a chain cut while no process ran is not
        silently extended. An unreadable checkpoint does not stop start-up; verify reports it."""
        try:
            checkpoint = read_checkpoint(checkpoint_path, self._rings.covering)
        except ConfigurationError:
            return
        if checkpoint is not None and checkpoint.last_id > 0:
            self._recorder.know(checkpoint.last_id, checkpoint.hash)

    def watch_changes(self) -> None:
        """Start following the change feed now rather than at the first cache fill (for a
        long-running process: a server, a worker). Idempotent."""
        self._changes.ready()

    def _on_key_change(self, change: Change) -> None:
        """Another process rotated or retired keys: load the ring again, so this one seals
        with the new primary (never with a key about to leave the key file)."""
        if change.kind != "kek":
            return
        try:
            self._rings.replace(kek_versions.open_ring(self.engine, self.key_source, self.clock))
        except FlowcredError:
            pass  # keep the ring we have; opening what needs the new key reloads it again

    def __repr__(self) -> str:
        backend = "sqlite" if self.settings.is_embedded else self.engine.dialect.name
        return f"Broker(database={backend!r}, kek_version={self._rings.current.primary_version})"

    @property
    def kek_version(self) -> int:
        """The primary key-encryption-key version new secrets are sealed with."""
        return self._rings.current.primary_version

    def acting_as(
        self, actor: Actor, source: str | None = None, *, may_resolve: bool = True
    ) -> BrokerView:
        """A view whose operations are audited as ``actor`` from ``source`` (an address).

        ``may_resolve=False`` for a caller that may not read secrets: the view then refuses to
        change where a secret is sent unless the same call carries the secret.
        """
        return BrokerView(self, Access(actor, source, may_resolve))

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
            self._kek_failure("rotated", exc)
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

    def _kek_failure(self, action: str, exc: FlowcredError) -> None:
        """The failure event of a key operation (the message names versions, never a key)."""
        self._trail.record(
            self.access,
            KEK,
            action,
            "failure",
            resource_type=KEK,
            details={"error": type(exc).__name__, "message": str(exc)},
        )

    def retire_keys(self, versions: list[int] | None = None) -> kek_retire.RetireResult:
        """Remove older KEKs from the key source once no data key needs them (audited).

        Audit events under a retired version stay verifiable: its derived audit subkeys are kept,
        wrapped by the primary KEK (see :func:`flowcred.store.kek_retire.retire_keks`).
        """
        try:
            ring, result = kek_retire.retire_keks(
                self.engine, self.key_source, self.clock, versions=versions
            )
        except FlowcredError as exc:
            self._kek_failure("retired", exc)
            raise
        self._rings.replace(ring)
        self._trail.record(
            self.access,
            KEK,
            "retired",
            "success",
            resource_type=KEK,
            details={
                "versions": list(result.retired),
                "removed_from_source": result.removed_from_source,
            },
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
        """Raise a FlowcredError if the database or the key is unusable (for readiness probes).

        A driver error becomes a :class:`~flowcred.errors.StoreError` saying what is wrong
        (refused, authentication, missing database) without the driver's text or a password.
        """
        from sqlalchemy.exc import DBAPIError

        from flowcred.store.engine import translate_db_error

        try:
            kek_versions.open_ring(self.engine, self.key_source, self.clock)
        except DBAPIError as exc:
            raise translate_db_error(exc, "readiness check", self.engine.url) from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._changes.close()
        if self._resolver.bindings is not None:
            self._resolver.bindings.close()
        self.tokens.close()
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


def _token_manager(
    broker: Broker, settings: FlowcredSettings, registry: SecretRegistry
) -> TokenManager:
    """The broker's token manager: its store, grant client, retries and breakers."""
    audit = TokenAudit(broker._trail)
    grants = GrantClient(
        clock=broker.clock,
        retry=RetryPolicy(
            attempts=settings.oauth_retry_attempts,
            base_delay=settings.oauth_retry_base_seconds,
            max_delay=settings.oauth_retry_max_seconds,
        ),
        breakers=BreakerRegistry(
            failure_threshold=settings.oauth_breaker_failures,
            reset_timeout=settings.oauth_breaker_reset_seconds,
            clock=broker.clock,
            on_open=audit.breaker_opened,
        ),
        timeout=settings.oauth_request_timeout_seconds,
    )
    rings = broker._rings
    return TokenManager(
        store=TokenStore(
            broker.engine, ring=lambda: rings.current, ring_for=rings.covering, clock=broker.clock
        ),
        credentials=broker._store,
        catalog=broker.catalog,
        grants=grants,
        trail=broker._trail,
        clock=broker.clock,
        registry=registry,
        margin=settings.oauth_refresh_margin_seconds,
        stale_window=settings.oauth_stale_window_seconds,
        lease_seconds=settings.oauth_lease_seconds,
    )


def open_broker(
    database_url: str | None = None,
    *,
    home: str | None = None,
    key_source: KeySource | None = None,
    settings: FlowcredSettings | None = None,
    clock: Clock | None = None,
    catalog: Catalog | None = None,
    actor: Actor | None = None,
    bindings: str | Path | None = None,
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
            bindings=bindings,
        )
    except BaseException:
        engine.dispose()
        raise


__all__ = [
    "DEFAULT_ENVIRONMENT",
    "DEFAULT_TENANT",
    "MAX_ID",
    "Broker",
    "BrokerView",
    "Credentials",
    "open_broker",
    "slugify",
]
