"""Credentials and their versioned, sealed secrets.

Every write is one transaction holding the write lock, so a crash at any point leaves the old
state or the new one (DESIGN §5, invariant 4):

* create inserts the credential row and its version 1 together;
* rotate inserts version ``max + 1`` and moves ``current_version`` with a check-and-set on the
  version the caller saw: of two concurrent rotations from the same version one wins and the other
  gets :class:`~flowcred.errors.VersionConflict`, never a silently lost update;
* rollback re-seals a kept version's secret as version ``max + 1`` and makes it current, so
  history is append-only and version numbers only grow;
* delete removes the row and every version.

Each version is sealed with associated data binding it to tenant + credential id + version, so a
ciphertext copied to another row fails to open rather than yielding the wrong secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, and_, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from flowcred.crypto import KekRing, seal, secret_aad
from flowcred.errors import (
    CredentialNotFound,
    FieldProblem,
    HandleConflict,
    InvalidCredential,
    StoreError,
    VersionConflict,
)
from flowcred.records import Credential, CredentialStatus
from flowcred.store.change_feed import record_change
from flowcred.store.credential_queries import CredentialQueries
from flowcred.store.credential_rows import as_utc as as_utc  # re-exported: callers import it here
from flowcred.store.engine import translate_db_error, write_transaction
from flowcred.store.tables import credentials, secret_versions

# Marks "argument not given" where ``None`` is a meaningful value (clearing ``expires_at``).
UNSET: Any = object()

# Called inside a write transaction, after the change and before the commit, with the connection
# and the resulting record: the audit trail appends its event here, so both commit together.
OnWrite = Callable[[Any, Credential], None]


class CredentialStore(CredentialQueries):
    """Reads (:class:`CredentialQueries`) and writes credentials; knows SQL and sealing, not
    catalog rules or callers.
    """

    # -- writes ----------------------------------------------------------------------------

    def create(
        self,
        *,
        tenant: str,
        environment: str,
        handle: str,
        name: str,
        type_name: str,
        config: Mapping[str, Any],
        secret: bytes,
        expires_at: datetime | None,
        on_write: OnWrite | None = None,
    ) -> Credential:
        now = self._clock.now()
        ring = self._ring()
        try:
            with write_transaction(self._engine) as conn:
                new_id = conn.execute(
                    insert(credentials)
                    .values(
                        tenant=tenant,
                        environment=environment,
                        handle=handle,
                        name=name,
                        type=type_name,
                        config=json.dumps(dict(config), sort_keys=True),
                        status="active",
                        created_at=now,
                        updated_at=now,
                        expires_at=expires_at,
                        current_version=1,
                    )
                    .returning(credentials.c.id)
                ).scalar_one()
                self._insert_version(conn, ring, tenant, new_id, 1, secret, now)
                record = self._fresh(conn, new_id)
                if on_write is not None:
                    on_write(conn, record)
        except IntegrityError:
            raise HandleConflict(handle, tenant, environment) from None
        except DBAPIError as exc:
            raise translate_db_error(exc, "creating a credential") from None
        return record

    def _fresh(self, conn: Any, credential_id: int) -> Credential:
        row = conn.execute(select(credentials).where(credentials.c.id == credential_id)).mappings()
        return self._record(row.one())

    def _insert_version(
        self,
        conn: Any,
        ring: KekRing,
        tenant: str,
        credential_id: int,
        version: int,
        secret: bytes,
        now: datetime,
    ) -> None:
        sealed = seal(secret, ring=ring, aad=secret_aad(tenant, credential_id, version))
        conn.execute(
            insert(secret_versions).values(
                credential_id=credential_id,
                version=version,
                ciphertext=sealed.ciphertext,
                wrapped_key=sealed.wrapped_key,
                kek_version=sealed.kek_version,
                created_at=now,
            )
        )

    def _locked_row(self, conn: Any, credential_id: int) -> RowMapping:
        query = select(credentials).where(credentials.c.id == credential_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise CredentialNotFound(credential_id)
        return row  # type: ignore[no-any-return]

    def _move_current(
        self, conn: Any, credential_id: int, seen_version: int, new_version: int, now: datetime
    ) -> None:
        result = conn.execute(
            update(credentials)
            .where(
                credentials.c.id == credential_id,
                credentials.c.current_version == seen_version,
            )
            .values(current_version=new_version, updated_at=now, status="active")
        )
        if result.rowcount != 1:
            raise VersionConflict(credential_id, seen_version, None)

    def rotate(
        self,
        credential_id: int,
        secret: bytes,
        *,
        expected_version: int | None = None,
        on_write: OnWrite | None = None,
    ) -> Credential:
        """Store ``secret`` as a new version and make it current; prune beyond the retention.

        With ``expected_version`` the rotation applies only if that is still the current version.
        """
        now = self._clock.now()
        ring = self._ring()
        try:
            with write_transaction(self._engine) as conn:
                self._rotate_in(conn, ring, credential_id, secret, expected_version, now)
                record = self._fresh(conn, credential_id)
                if on_write is not None:
                    on_write(conn, record)
                record_change(conn, "credential", credential_id, now)
        except IntegrityError:
            # Another rotation from the same version inserted the same version number first.
            raise VersionConflict(credential_id, expected_version, None) from None
        except DBAPIError as exc:
            raise translate_db_error(exc, "rotating a credential") from None
        return record

    def _prune(self, conn: Any, credential_id: int, current: int) -> None:
        keep = (
            select(secret_versions.c.version)
            .where(secret_versions.c.credential_id == credential_id)
            .order_by(secret_versions.c.version.desc())
            .limit(self._retention)
        )
        kept = {v for (v,) in conn.execute(keep).all()} | {current}
        conn.execute(
            delete(secret_versions).where(
                and_(
                    secret_versions.c.credential_id == credential_id,
                    secret_versions.c.version.not_in(sorted(kept)),
                )
            )
        )

    def rollback(
        self,
        credential_id: int,
        version: int,
        *,
        expected_version: int | None = None,
        on_write: OnWrite | None = None,
    ) -> Credential:
        """Restore a kept older version's secret as a NEW version, which becomes current.

        History stays append-only and version numbers only grow (as in Vault KV): the old
        version's payload is opened and sealed again under a fresh data key with the new version's
        associated data (a ciphertext is bound to its version number, so it cannot simply be
        copied). Retention then prunes as after a rotation. A kept version that fails to open
        (tampered) raises DecryptionFailed and nothing changes.
        """
        now = self._clock.now()
        ring = self._ring()
        try:
            with write_transaction(self._engine) as conn:
                row = self._locked_row(conn, credential_id)
                current = row["current_version"]
                if expected_version is not None and expected_version != current:
                    raise VersionConflict(credential_id, expected_version, current)
                kept = conn.execute(
                    select(secret_versions.c.ciphertext, secret_versions.c.wrapped_key).where(
                        secret_versions.c.credential_id == credential_id,
                        secret_versions.c.version == version,
                    )
                ).first()
                if kept is None:
                    raise InvalidCredential(
                        [
                            FieldProblem(
                                "version", f"version {version} is not kept for this credential"
                            )
                        ]
                    )
                payload = self._open(row["tenant"], credential_id, version, kept[0], kept[1])
                self._append_version(
                    conn, ring, row["tenant"], credential_id, payload, current, now
                )
                record = self._fresh(conn, credential_id)
                if on_write is not None:
                    on_write(conn, record)
                record_change(conn, "credential", credential_id, now)
        except IntegrityError:
            raise VersionConflict(credential_id, expected_version, None) from None
        except DBAPIError as exc:
            raise translate_db_error(exc, "rolling back a credential") from None
        return record

    def update(
        self,
        credential_id: int,
        *,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        expires_at: datetime | None = UNSET,
        status: CredentialStatus | None = None,
        secret: bytes | None = None,
        expected_version: int | None = None,
        on_write: OnWrite | None = None,
    ) -> Credential:
        """Change metadata; with ``secret``, also store it as a new current version.

        Without ``secret`` the secret and its versions are untouched. With it, the metadata
        change and the rotation commit in one transaction (so a new destination never goes
        live with the old secret, nor the reverse), and ``expected_version`` works as in
        :meth:`rotate`.
        """
        now = self._clock.now()
        # The ring is read before the transaction, as :meth:`rotate` does.
        ring = self._ring() if secret is not None else None
        values: dict[str, Any] = {"updated_at": now}
        if name is not None:
            values["name"] = name
        if config is not None:
            values["config"] = json.dumps(dict(config), sort_keys=True)
        if expires_at is not UNSET:
            values["expires_at"] = expires_at
        if status is not None:
            values["status"] = status
        try:
            with write_transaction(self._engine) as conn:
                if secret is not None and ring is not None:
                    self._rotate_in(conn, ring, credential_id, secret, expected_version, now)
                result = conn.execute(
                    update(credentials).where(credentials.c.id == credential_id).values(**values)
                )
                if result.rowcount != 1:
                    raise CredentialNotFound(credential_id)
                record = self._fresh(conn, credential_id)
                if on_write is not None:
                    on_write(conn, record)
                record_change(conn, "credential", credential_id, values["updated_at"])
        except IntegrityError:
            # Only the rotation inserts: another rotation took the same version number first.
            raise VersionConflict(credential_id, expected_version, None) from None
        except DBAPIError as exc:
            raise translate_db_error(exc, "updating a credential") from None
        return record

    def _rotate_in(
        self,
        conn: Any,
        ring: KekRing,
        credential_id: int,
        secret: bytes,
        expected_version: int | None,
        now: datetime,
    ) -> None:
        """The steps of :meth:`rotate`, inside the caller's transaction."""
        row = self._locked_row(conn, credential_id)
        current = row["current_version"]
        if expected_version is not None and expected_version != current:
            raise VersionConflict(credential_id, expected_version, current)
        self._append_version(conn, ring, row["tenant"], credential_id, secret, current, now)

    def _append_version(
        self,
        conn: Any,
        ring: KekRing,
        tenant: str,
        credential_id: int,
        secret: bytes,
        current: int,
        now: datetime,
    ) -> None:
        """Seal ``secret`` as version max+1, make it current and prune: numbers only grow, so a
        rollback and a rotation both append (history is never rewritten)."""
        newest = conn.execute(
            select(func.max(secret_versions.c.version)).where(
                secret_versions.c.credential_id == credential_id
            )
        ).scalar_one()
        new_version = int(newest or 0) + 1
        self._insert_version(conn, ring, tenant, credential_id, new_version, secret, now)
        self._move_current(conn, credential_id, current, new_version, now)
        self._prune(conn, credential_id, new_version)

    def delete(
        self,
        credential_id: int,
        *,
        on_write: OnWrite | None = None,
        guard: OnWrite | None = None,
    ) -> Credential:
        """Delete the row and every version; returns the record as it was.

        ``guard`` runs inside the write transaction before anything is deleted and may raise to
        refuse (delete protection reads the bindings there, so the check and the delete see the
        same state).
        """
        try:
            with write_transaction(self._engine) as conn:
                record = self._fresh_or_missing(conn, credential_id)
                if guard is not None:
                    guard(conn, record)
                conn.execute(
                    delete(secret_versions).where(secret_versions.c.credential_id == credential_id)
                )
                conn.execute(delete(credentials).where(credentials.c.id == credential_id))
                if on_write is not None:
                    on_write(conn, record)
                record_change(conn, "credential", credential_id, self._clock.now())
        except DBAPIError as exc:
            raise translate_db_error(exc, "deleting a credential") from None
        return record

    def _fresh_or_missing(self, conn: Any, credential_id: int) -> Credential:
        row = conn.execute(select(credentials).where(credentials.c.id == credential_id)).mappings()
        found = row.first()
        if found is None:
            raise CredentialNotFound(credential_id)
        return self._record(found)

    def record_last_used(self, seen: Mapping[int, datetime]) -> None:
        """Persist last-used times collected in memory; only ever moves a time forward."""
        if not seen:
            return
        try:
            with write_transaction(self._engine) as conn:
                for credential_id, when in seen.items():
                    conn.execute(
                        update(credentials)
                        .where(
                            credentials.c.id == credential_id,
                            (credentials.c.last_used_at.is_(None))
                            | (credentials.c.last_used_at < when),
                        )
                        .values(last_used_at=when)
                    )
        except DBAPIError as exc:
            raise StoreError(
                f"recording last-used times failed ({type(exc.orig).__name__})"
            ) from None


# The resolve path's one read: the credential row joined with its current sealed version.
RESOLVE_SQL = (
    "SELECT c.tenant, c.environment, c.handle, c.type, c.config, c.status, c.expires_at, "
    "v.version, v.ciphertext, v.wrapped_key "
    "FROM credentials c JOIN secret_versions v "
    "ON v.credential_id = c.id AND v.version = c.current_version WHERE c.id = ?"
)
HANDLE_SQL = "SELECT id FROM credentials WHERE tenant = ? AND environment = ? AND handle = ?"
