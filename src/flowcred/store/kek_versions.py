"""Key-encryption keys as the database knows them, and rotation of them.

The database stores each KEK version's fingerprint, never the key. At open, the keys a key source
provides are matched to versions by fingerprint (:func:`flowcred.crypto.build_ring`): a wrong or
missing key stops start-up with a clear message instead of producing unreadable secrets.

Rotation (:func:`rotate_kek`) is crash-safe and resumable:

1. the new key is persisted by the key source first (fsynced), then registered here as version
   ``max + 1`` and becomes primary — new seals use it at once;
2. every wrapped data key not under the primary version is re-wrapped, in batches, each batch one
   transaction, each row updated only if it is still under the version it was read with;
3. when no row is left under an older version, older versions are marked retired.

A crash between 1 and 2 leaves a key in the source that the database does not know: the next run
registers it instead of making another. A crash inside 2 leaves some rows under the old key, which
stays in the ring until the next run finishes the job. Secret ciphertexts are never touched.

Retirement of older KEKs (``flowcred keys retire``) lives in :mod:`flowcred.store.kek_retire`;
the subkeys it keeps (``retained_subkeys``) are re-wrapped here by every rotation.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from flowcred.clock import Clock
from flowcred.crypto import (
    KekRing,
    KeyFileSource,
    KeySource,
    build_ring,
    fingerprint,
    generate_key,
    rewrap_key,
    secret_aad,
)
from flowcred.crypto.chain_mac import AUDIT_KEY_INFO, CHECKPOINT_INFO
from flowcred.errors import (
    ConfigurationError,
    ConflictError,
    FlowcredError,
    KeyUnavailable,
)
from flowcred.store.change_feed import record_change
from flowcred.store.engine import (
    connect_raw,
    is_sqlite,
    read_connection,
    translate_db_error,
    write_transaction,
)
from flowcred.store.oauth_tokens import rewrap_tokens
from flowcred.store.tables import (
    credentials,
    kek_versions,
    oauth_tokens,
    retained_subkeys,
    secret_versions,
)

ProgressCallback = Callable[[int, int], None]


def registered_versions(engine: Engine) -> dict[int, str]:
    """KEK version → fingerprint for every version the database knows."""
    with read_connection(engine) as conn:
        rows = conn.execute(select(kek_versions.c.version, kek_versions.c.fingerprint)).all()
    return {int(v): str(fp) for v, fp in rows}


def _register(engine: Engine, key: bytes, clock: Clock) -> int:
    """Register ``key`` as the next version (or return its version if already registered)."""
    fp = fingerprint(key)
    try:
        with write_transaction(engine) as conn:
            known = conn.execute(
                select(kek_versions.c.version).where(kek_versions.c.fingerprint == fp)
            ).scalar_one_or_none()
            if known is not None:
                return int(known)
            newest = conn.execute(select(func.max(kek_versions.c.version))).scalar_one()
            version = int(newest or 0) + 1
            conn.execute(
                insert(kek_versions).values(version=version, fingerprint=fp, created_at=clock.now())
            )
            # Every other process must seal with the new primary from now on (not with a key
            # that may be retired next): the change feed tells them within the bound.
            if version > 1:
                record_change(conn, "kek", version, clock.now())
            return version
    except IntegrityError:
        # A concurrent process registered the same key first; read its version.
        return {f: v for v, f in registered_versions(engine).items()}[fp]


def open_ring(engine: Engine, source: KeySource, clock: Clock) -> KekRing:
    """Build the ring for this database from ``source``, initialising a fresh database.

    A database that has never been sealed takes the source's newest key, creating one (a key file
    with mode 0600) when the source has none. A database that has been sealed never gets a new
    key here: a missing or wrong key raises KeyUnavailable / KeyMismatch.
    """
    registered = registered_versions(engine)
    keys = source.load()
    if not registered:
        if not keys:
            keys = [source.create_initial()]
        _register(engine, keys[0], clock)
        registered = registered_versions(engine)
    primary = max(registered)
    ring = build_ring(keys, registered, primary, source_description=source.description)
    _check_needed_versions(engine, ring, source)
    return _with_retained(engine, ring)


# The subkeys a retired KEK version leaves behind: what audit verification derives from a KEK.
RETAINED_PURPOSES = (AUDIT_KEY_INFO, CHECKPOINT_INFO)
_RETAINED_AAD = b"flowcred retained subkey v1\x00"


def _retained_aad(version: int, purpose: bytes) -> bytes:
    return _RETAINED_AAD + version.to_bytes(4, "big") + purpose


def _with_retained(engine: Engine, ring: KekRing) -> KekRing:
    """``ring`` plus the kept subkeys of retired versions (unwrapped with the ring)."""
    with read_connection(engine) as conn:
        rows = conn.execute(
            select(
                retained_subkeys.c.kek_version,
                retained_subkeys.c.purpose,
                retained_subkeys.c.wrapped_key,
            )
        ).all()
    if not rows:
        return ring
    derived: dict[tuple[int, bytes], bytes] = {}
    for version, purpose, wrapped in rows:
        label = str(purpose).encode()
        derived[(int(version), label)] = ring.unwrap(bytes(wrapped), _retained_aad(version, label))
    return ring.with_retained(derived)


def _check_needed_versions(engine: Engine, ring: KekRing, source: KeySource) -> None:
    with read_connection(engine) as conn:
        needed = {
            int(v) for (v,) in conn.execute(select(secret_versions.c.kek_version).distinct()).all()
        }
        needed |= {
            int(v) for (v,) in conn.execute(select(retained_subkeys.c.wrapped_by).distinct()).all()
        }
        needed |= {
            int(v)
            for (v,) in conn.execute(
                select(oauth_tokens.c.kek_version)
                .where(oauth_tokens.c.kek_version.is_not(None))
                .distinct()
            ).all()
        }
    missing = sorted(needed - set(ring.versions))
    if missing:
        raise KeyUnavailable(
            f"secrets are still wrapped by key version(s) {missing}, whose key is not in "
            f"{source.description}; restore it, then run 'flowcred keys rotate' to finish"
        )


@dataclass(frozen=True)
class RotationResult:
    """What a ``keys rotate`` run did."""

    primary_version: int
    rewrapped: int
    resumed: bool


def pending_rewraps(engine: Engine, primary_version: int) -> int:
    """Data keys (secret versions and sealed OAuth tokens) not yet under the primary KEK."""
    with read_connection(engine) as conn:
        secrets = conn.execute(
            select(func.count())
            .select_from(secret_versions)
            .where(secret_versions.c.kek_version != primary_version)
        ).scalar_one()
        tokens = conn.execute(
            select(func.count())
            .select_from(oauth_tokens)
            .where(
                oauth_tokens.c.kek_version.is_not(None),
                oauth_tokens.c.kek_version != primary_version,
            )
        ).scalar_one()
    return int(secrets) + int(tokens)


def rotate_kek(
    engine: Engine,
    source: KeySource,
    clock: Clock,
    *,
    batch_size: int = 500,
    progress: ProgressCallback | None = None,
) -> tuple[KekRing, RotationResult]:
    """Add a KEK version (or finish an interrupted rotation) and re-wrap every data key.

    Returns the new ring and what was done. Safe to interrupt at any point and run again.
    """
    with rotation_lock(engine):
        return _rotate_locked(engine, source, clock, batch_size=batch_size, progress=progress)


# Any constant works; it only has to be the same in every process sharing the database.
ROTATION_LOCK_KEY = 0x666C6F776B656B73  # "flowkeks"


@contextmanager
def rotation_lock(engine: Engine) -> Iterator[None]:
    """Hold the one key-rotation lock of this database, or fail at once if another run has it.

    Two rotations at once would each read the key file, add their key and write it back, and the
    slower one would drop the faster one's key: every secret re-wrapped under it would become
    unreadable. PostgreSQL uses a session advisory lock; SQLite an flock'd file beside the
    database (the database is local, so a file lock reaches every process using it).
    """
    busy = ConflictError(
        "another 'flowcred keys rotate' is running on this database; wait for it to finish"
    )
    if is_sqlite(engine):
        database = engine.url.database or "flowcred.db"
        path = Path(f"{database}.keys-rotate.lock")
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise busy from None
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return
    conn = connect_raw(engine)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT pg_try_advisory_lock({ROTATION_LOCK_KEY})")
            if not cur.fetchone()[0]:
                raise busy
        try:
            yield
        finally:
            with conn.cursor() as cur:
                cur.execute(f"SELECT pg_advisory_unlock({ROTATION_LOCK_KEY})")
    finally:
        conn.close()


def _rotate_locked(
    engine: Engine,
    source: KeySource,
    clock: Clock,
    *,
    batch_size: int,
    progress: ProgressCallback | None,
) -> tuple[KekRing, RotationResult]:
    registered = registered_versions(engine)
    if not registered:
        raise ConfigurationError("the database has no key yet; run 'flowcred init' first")
    keys = source.load()
    known = set(registered.values())
    unregistered = [k for k in keys if fingerprint(k) not in known]
    primary = max(registered)
    resumed = False
    if unregistered:
        # A key persisted by an interrupted run (or prepended to FLOWCRED_MASTER_KEY): use it.
        # Only flowcred itself writes keys into a key file, so there it means a resumed run.
        new_key = unregistered[0]
        resumed = isinstance(source, KeyFileSource)
        primary = _register(engine, new_key, clock)
    elif pending_rewraps(engine, primary) > 0:
        resumed = True
    else:
        new_key = generate_key()
        source.add_key(new_key)
        primary = _register(engine, new_key, clock)
    registered = registered_versions(engine)
    ring = build_ring(source.load(), registered, primary, source_description=source.description)
    _check_needed_versions(engine, ring, source)
    done = _rewrap_all(engine, ring, batch_size=batch_size, progress=progress)
    _rewrap_retained(engine, ring)
    ring = _with_retained(engine, ring)
    with write_transaction(engine) as conn:
        conn.execute(
            update(kek_versions)
            .where(kek_versions.c.version != primary, kek_versions.c.retired_at.is_(None))
            .values(retired_at=clock.now())
        )
    return ring, RotationResult(primary_version=primary, rewrapped=done, resumed=resumed)


def _rewrap_all(
    engine: Engine, ring: KekRing, *, batch_size: int, progress: ProgressCallback | None
) -> int:
    primary = ring.primary_version
    total = pending_rewraps(engine, primary)
    done = 0
    if progress is not None:
        progress(0, total)
    query = (
        select(
            secret_versions.c.credential_id,
            secret_versions.c.version,
            secret_versions.c.wrapped_key,
            secret_versions.c.kek_version,
            credentials.c.tenant,
        )
        .join(credentials, credentials.c.id == secret_versions.c.credential_id)
        .where(secret_versions.c.kek_version != primary)
        .order_by(secret_versions.c.credential_id, secret_versions.c.version)
        .limit(batch_size)
    )
    stmt = (
        update(secret_versions)
        .where(
            secret_versions.c.credential_id == bindparam("b_id"),
            secret_versions.c.version == bindparam("b_version"),
            secret_versions.c.kek_version == bindparam("b_old"),
        )
        .values(wrapped_key=bindparam("b_wrapped"), kek_version=primary)
    )
    try:
        while True:
            with write_transaction(engine) as conn:
                rows = conn.execute(query).all()
                if not rows:
                    break
                params = [
                    {
                        "b_id": cid,
                        "b_version": ver,
                        "b_old": old,
                        "b_wrapped": rewrap_key(
                            bytes(wrapped),
                            ring=ring,
                            aad=secret_aad(tenant, cid, ver),
                            credential_id=cid,
                            version=ver,
                        ),
                    }
                    for cid, ver, wrapped, old, tenant in rows
                ]
                conn.execute(stmt, params)
            done += len(rows)
            if progress is not None:
                progress(done, max(total, done))
        tokens = rewrap_tokens(engine, ring, batch_size=batch_size)
        if tokens:
            done += tokens
            if progress is not None:
                progress(done, max(total, done))
    except DBAPIError as exc:
        raise translate_db_error(exc, "re-wrapping data keys") from None
    return done


def _rewrap_retained(engine: Engine, ring: KekRing) -> None:
    """Move every kept subkey under the primary KEK (there are two per retired version)."""
    primary = ring.primary_version
    with write_transaction(engine) as conn:
        rows = conn.execute(
            select(
                retained_subkeys.c.kek_version,
                retained_subkeys.c.purpose,
                retained_subkeys.c.wrapped_key,
            ).where(retained_subkeys.c.wrapped_by != primary)
        ).all()
        for version, purpose, wrapped in rows:
            aad = _retained_aad(int(version), str(purpose).encode())
            conn.execute(
                update(retained_subkeys)
                .where(
                    retained_subkeys.c.kek_version == version,
                    retained_subkeys.c.purpose == purpose,
                )
                .values(wrapped_key=ring.rewrap(bytes(wrapped), aad), wrapped_by=primary)
            )


class RingHolder:
    """The process's current key ring, reloaded when data names a KEK version it lacks.

    Another process (``flowcred keys rotate`` beside a running server) can add a KEK version and
    re-wrap data keys under it. A ring loaded at start would then fail to open those secrets and
    to check those audit events. :meth:`covering` reloads the ring from the key source and the
    database when asked for an unknown version — at most once a second, so a flood of tampered
    blobs naming made-up versions cannot turn into a flood of key-file reads.
    """

    RELOAD_INTERVAL = 1.0

    def __init__(self, engine: Engine, source: KeySource, clock: Clock, ring: KekRing) -> None:
        self._engine = engine
        self._source = source
        self._clock = clock
        self._ring = ring
        self._lock = threading.Lock()
        self._last_reload = float("-inf")

    @property
    def current(self) -> KekRing:
        return self._ring

    def replace(self, ring: KekRing) -> None:
        self._ring = ring

    def covering(self, version: int) -> KekRing:
        """A ring that holds ``version`` if one can be loaded now; else the current ring."""
        ring = self._ring
        if version in ring.versions or version in ring.retained_versions:
            return ring
        with self._lock:
            if version in self._ring.versions or version in self._ring.retained_versions:
                return self._ring
            now = self._clock.monotonic()
            if now - self._last_reload < self.RELOAD_INTERVAL:
                return self._ring
            self._last_reload = now
            try:
                self._ring = open_ring(self._engine, self._source, self._clock)
            except FlowcredError:
                pass  # Keep serving with the ring we have; the caller reports what fails.
            return self._ring
