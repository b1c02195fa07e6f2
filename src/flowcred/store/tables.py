"""The database schema, as SQLAlchemy Core tables.

The Alembic migrations in ``store/migrations/versions`` create exactly these tables; a test
compares the two so they cannot drift apart.

Secret material lives only in ``secret_versions.ciphertext`` (AES-256-GCM under a per-version data
key) and ``secret_versions.wrapped_key`` (that data key, wrapped by the key-encryption key named in
``kek_version``). Every other column is metadata and is safe to show to a viewer.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Each key-encryption key the database has ever been sealed with: its fingerprint, never the key.
# The highest version is the primary one, used for every new seal.
kek_versions = Table(
    "kek_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=True),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(128), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("handle", String(128), nullable=False),
    Column("name", String(256), nullable=False),
    Column("type", String(64), nullable=False),
    Column("config", Text, nullable=False),  # JSON of the non-secret fields
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("current_version", Integer, nullable=False),
    UniqueConstraint("tenant", "environment", "handle", name="uq_credentials_handle"),
    # Ids are never reused (DESIGN §5, invariant 4): without AUTOINCREMENT SQLite would hand the
    # id of a deleted newest credential to the next one. PostgreSQL sequences never go back.
    sqlite_autoincrement=True,
)
Index("ix_credentials_tenant_type", credentials.c.tenant, credentials.c.type)

secret_versions = Table(
    "secret_versions",
    metadata,
    Column(
        "credential_id",
        Integer,
        ForeignKey("credentials.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("kek_version", Integer, ForeignKey("kek_versions.version"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("credential_id", "version", name="pk_secret_versions"),
)
Index("ix_secret_versions_kek_version", secret_versions.c.kek_version)

# The audit chain. ``body`` is the event's canonical JSON and the only place its fields live, so
# nothing queryable escapes the MAC; ``id`` is assigned consecutively by the appender (no
# autoincrement), which makes a deleted row a visible gap.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("key_version", Integer, nullable=False),
    Column("prev_hash", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    Column("body", Text, nullable=False),
)

# Platform API keys (DESIGN §4): ``key_hash`` is the hex SHA-256 of the raw key, which is never
# stored; ``id`` is the key's public part. ``tenant`` is ``*`` for platform keys.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True, autoincrement=False),
    Column("key_hash", String(64), nullable=False),
    Column("name", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
)
Index("ix_api_keys_tenant", api_keys.c.tenant)

# Flows' registered credential references (the bindings registry); ``refs`` is a JSON list.
bindings = Table(
    "bindings",
    metadata,
    Column("flow", String(256), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("refs", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant", "flow", name="pk_bindings"),
)

# The change feed (store/change_feed.py): one row per committed change that other processes must
# see (a rotation, a delete, a revoked API key), written in the same transaction as the change.
# ``seq`` only grows and is never reused (SQLite AUTOINCREMENT), so "rows after the last seq I saw"
# is exactly "what changed since I last looked". Old rows are pruned by count.
changes = Table(
    "changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("object_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

# Subkeys of retired key-encryption keys (``flowcred keys retire``): the HKDF-derived audit-chain
# and checkpoint MAC keys of ``kek_version``, each wrapped (like a data key) by the KEK named in
# ``wrapped_by``, so audit events MAC'd under a KEK removed from the key file stay verifiable.
# ``purpose`` is the HKDF info label. Re-wrapped by every ``keys rotate``.
retained_subkeys = Table(
    "retained_subkeys",
    metadata,
    Column("kek_version", Integer, ForeignKey("kek_versions.version"), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("wrapped_by", Integer, ForeignKey("kek_versions.version"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("kek_version", "purpose", name="pk_retained_subkeys"),
)

# OAuth tokens (store/oauth_tokens.py): one row per OAuth credential, apart from its secret
# versions, so a refresh is neither a rotation nor a new version and a rollback of the client
# secret leaves the tokens alone. ``ciphertext``/``wrapped_key`` seal the whole token set under
# ``token_aad(tenant, id, generation)``; ``generation`` grows by one with every stored token set
# and is the fencing value of a refresh. ``lease_owner``/``lease_until`` are the cross-process
# single-flight lease: a refresh is made only by the lease holder, and persisted only while the
# generation it started from is still current. No transaction spans the token request.
oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column(
        "credential_id",
        Integer,
        ForeignKey("credentials.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("generation", BigInteger, nullable=False),
    Column("ciphertext", LargeBinary, nullable=True),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("kek_version", Integer, ForeignKey("kek_versions.version"), nullable=True),
    Column("state", String(16), nullable=False),
    Column("last_error", String(64), nullable=True),
    Column("issued_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("scopes", Text, nullable=False),
    Column("refreshed_at", DateTime(timezone=True), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_oauth_tokens_kek_version", oauth_tokens.c.kek_version)

# Pending OAuth authorizations (store/oauth_states.py): one row per ``authorize`` not yet
# completed. ``state_hash`` is the hex SHA-256 of the random state sent to the provider (the
# state itself is never stored). The PKCE verifier and OIDC nonce are sealed like a secret
# version (``ciphertext`` / ``wrapped_key`` under ``kek_version``), bound by ``state_aad`` to
# tenant, credential and state hash. ``consumed_at`` is set once, by an atomic update.
oauth_states = Table(
    "oauth_states",
    metadata,
    Column("state_hash", String(64), primary_key=True, autoincrement=False),
    Column(
        "credential_id",
        Integer,
        ForeignKey("credentials.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("tenant", String(128), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_id", String(128), nullable=False),
    Column("actor_name", String(256), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("kek_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("consumed_at", DateTime(timezone=True), nullable=True),
)
Index("ix_oauth_states_expires_at", oauth_states.c.expires_at)
