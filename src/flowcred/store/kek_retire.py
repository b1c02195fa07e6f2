"""Retirement of key-encryption keys (``flowcred keys retire``).

Removes older KEKs from the key file once no data key is wrapped by them. Audit events are MAC'd
under a key derived from the KEK of their ``key_version`` and are append-only, so they cannot be
re-keyed; instead the two derived subkeys of a retired version (audit chain, checkpoint) are
kept in ``retained_subkeys``, wrapped by the primary KEK like data keys (and re-wrapped by every
rotation, :mod:`flowcred.store.kek_versions`). They let verification go on; they open no secret
(they are MAC keys, one-way from the KEK). The primary version and a version that data keys
still need are never retired.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, insert, select, update

from flowcred.clock import Clock
from flowcred.crypto import KekRing, KeySource
from flowcred.errors import (
    ConfigurationError,
    ConflictError,
    FieldProblem,
    InvalidCredential,
    KeyUnavailable,
)
from flowcred.store.change_feed import record_change
from flowcred.store.engine import read_connection, write_transaction
from flowcred.store.kek_versions import (
    RETAINED_PURPOSES,
    _retained_aad,
    _with_retained,
    open_ring,
    registered_versions,
    rotation_lock,
)
from flowcred.store.tables import kek_versions, oauth_tokens, retained_subkeys, secret_versions


@dataclass(frozen=True)
class RetireResult:
    """What a ``keys retire`` run did: versions retired, and whether their keys left the source."""

    retired: tuple[int, ...]
    removed_from_source: bool
    source_description: str


def retire_keks(
    engine: Engine, source: KeySource, clock: Clock, *, versions: list[int] | None = None
) -> tuple[KekRing, RetireResult]:
    """Remove older KEK versions from the key source once no data key needs them.

    ``versions`` None retires every older version whose key the source still holds. Refused
    (nothing changed) for the primary version, an unknown version, a version that still wraps
    data keys (run ``keys rotate`` to finish re-wrapping first), or a version whose key the
    source no longer holds and whose audit subkeys were never kept. The audit subkeys are stored
    (wrapped by the primary KEK) before the key leaves the source, so a crash in between leaves a
    key still in the file and a re-run finishes the job.
    """
    with rotation_lock(engine):
        registered = registered_versions(engine)
        if not registered:
            raise ConfigurationError("the database has no key yet; run 'flowcred init' first")
        primary = max(registered)
        ring = open_ring(engine, source, clock)
        if versions is None:
            targets = sorted(v for v in ring.versions if v != primary)
        else:
            targets = sorted(set(versions))
        for version in targets:
            if version not in registered:
                raise InvalidCredential(
                    [FieldProblem("version", f"key version {version} is not registered")]
                )
            if version == primary:
                raise ConflictError(
                    f"key version {version} is the primary key: every new secret is sealed with "
                    f"it; run 'flowcred keys rotate' first, then retire the older version"
                )
        with read_connection(engine) as conn:
            still: dict[int, int] = {
                int(v): int(n)
                for v, n in conn.execute(
                    select(secret_versions.c.kek_version, func.count())
                    .where(secret_versions.c.kek_version.in_(targets))
                    .group_by(secret_versions.c.kek_version)
                ).all()
            }
            for v, n in conn.execute(
                select(oauth_tokens.c.kek_version, func.count())
                .where(oauth_tokens.c.kek_version.in_(targets))
                .group_by(oauth_tokens.c.kek_version)
            ).all():
                still[int(v)] = still.get(int(v), 0) + int(n)
        if still:
            needed = ", ".join(
                f"version {v} wraps {n} data key(s)" for v, n in sorted(still.items())
            )
            raise ConflictError(
                f"cannot retire: {needed}; run 'flowcred keys rotate' to re-wrap them first"
            )
        for version in targets:
            if version not in ring.versions and version not in ring.retained_versions:
                raise KeyUnavailable(
                    f"key version {version} is not in {source.description} and its audit keys "
                    f"were not kept; restore the key before retiring it, or audit events under "
                    f"it could no longer be verified"
                )
        _keep_subkeys(engine, ring, [v for v in targets if v in ring.versions], clock)
        removed = _remove_from_source(source, ring, [v for v in targets if v in ring.versions])
        if targets:
            with write_transaction(engine) as conn:
                conn.execute(
                    update(kek_versions)
                    .where(kek_versions.c.version.in_(targets), kek_versions.c.retired_at.is_(None))
                    .values(retired_at=clock.now())
                )
                record_change(conn, "kek", primary, clock.now())
        ring = open_ring(engine, source, clock) if removed else _with_retained(engine, ring)
    return ring, RetireResult(tuple(targets), removed, source.description)


def _keep_subkeys(engine: Engine, ring: KekRing, targets: list[int], clock: Clock) -> None:
    if not targets:
        return
    now = clock.now()
    with write_transaction(engine) as conn:
        kept = {
            (int(v), str(p))
            for v, p in conn.execute(
                select(retained_subkeys.c.kek_version, retained_subkeys.c.purpose)
            ).all()
        }
        for version in targets:
            for purpose in RETAINED_PURPOSES:
                if (version, purpose.decode()) in kept:
                    continue
                subkey = ring.derive_key(version, purpose)
                conn.execute(
                    insert(retained_subkeys).values(
                        kek_version=version,
                        purpose=purpose.decode(),
                        wrapped_key=ring.wrap(subkey, _retained_aad(version, purpose)),
                        wrapped_by=ring.primary_version,
                        created_at=now,
                    )
                )


def _remove_from_source(source: KeySource, ring: KekRing, targets: list[int]) -> bool:
    """Remove the keys of ``targets`` from ``source``; False if the source cannot be written."""
    remove = getattr(source, "remove_keys", None)
    if remove is None:
        return False
    if targets:
        remove([ring.fingerprint_of(v) for v in targets])
    return True
