"""The read half of :class:`~flowcred.store.credentials.CredentialStore`: lookups, lists,
version history and opening a sealed version.

Split from ``store/credentials.py`` along the read / write seam; the store's writes subclass
this and share its constructor. Reads never take the write lock.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, RowMapping, or_, select
from sqlalchemy.exc import DBAPIError

from flowcred.clock import Clock
from flowcred.credential_status import StatusRule
from flowcred.crypto import KekRing, open_sealed, secret_aad
from flowcred.errors import CredentialNotFound, DecryptionFailed
from flowcred.records import Credential, SecretVersion
from flowcred.store.credential_rows import as_utc, credential_from_row
from flowcred.store.engine import read_connection, translate_db_error
from flowcred.store.tables import credentials, secret_versions


class CredentialQueries:
    """Reads credentials; knows SQL and sealing, not catalog rules or callers.

    ``ring`` is called for each seal/open so a key rotation in this process takes effect at once.
    ``family_of`` maps a type name to its catalog family for the returned records.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        ring: Callable[[], KekRing],
        clock: Clock,
        retention: int,
        family_of: Callable[[str], str],
        ring_for: Callable[[int], KekRing] | None = None,
        status_rule: StatusRule | None = None,
    ) -> None:
        self._engine = engine
        self._ring = ring
        self._ring_for = ring_for or (lambda _version: ring())
        self._clock = clock
        self._retention = retention
        self._family_of = family_of
        self._status_rule = status_rule or StatusRule(clock)

    # -- reads -----------------------------------------------------------------------------

    def _record(self, row: RowMapping) -> Credential:
        return credential_from_row(row, family_of=self._family_of, rule=self._status_rule)

    def get(self, credential_id: int) -> Credential | None:
        try:
            with read_connection(self._engine) as conn:
                row = (
                    conn.execute(select(credentials).where(credentials.c.id == credential_id))
                    .mappings()
                    .first()
                )
        except DBAPIError as exc:
            raise translate_db_error(exc, "reading a credential") from None
        return self._record(row) if row is not None else None

    def find_handle(self, tenant: str, environment: str, handle: str) -> Credential | None:
        query = select(credentials).where(
            credentials.c.tenant == tenant,
            credentials.c.environment == environment,
            credentials.c.handle == handle,
        )
        try:
            with read_connection(self._engine) as conn:
                row = conn.execute(query).mappings().first()
        except DBAPIError as exc:
            raise translate_db_error(exc, "reading a credential") from None
        return self._record(row) if row is not None else None

    def existing(
        self, tenant: str, ids: Sequence[int], handles: Sequence[str]
    ) -> tuple[set[int], set[str]]:
        """Which of ``ids`` and ``handles`` name credentials of ``tenant`` (any environment)."""
        found_ids: set[int] = set()
        found_handles: set[str] = set()
        try:
            with read_connection(self._engine) as conn:
                if ids:
                    query = select(credentials.c.id).where(
                        credentials.c.tenant == tenant, credentials.c.id.in_(sorted(set(ids)))
                    )
                    found_ids = {int(i) for (i,) in conn.execute(query).all()}
                if handles:
                    query = select(credentials.c.handle).where(
                        credentials.c.tenant == tenant,
                        credentials.c.handle.in_(sorted(set(handles))),
                    )
                    found_handles = {str(h) for (h,) in conn.execute(query).all()}
        except DBAPIError as exc:
            raise translate_db_error(exc, "reading credentials") from None
        return found_ids, found_handles

    def list(
        self,
        *,
        tenant: str | None = None,
        environment: str | None = None,
        type_names: Sequence[str] | None = None,
        search: str | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> list[Credential]:
        """Credentials in id order, filtered; ``after_id`` + ``limit`` give cursor pagination.
        ``search`` matches the name or handle, case-insensitively, as plain text (``%`` and
        ``_`` are not wildcards)."""
        query = select(credentials).order_by(credentials.c.id)
        if search:
            query = query.where(
                or_(
                    credentials.c.name.icontains(search, autoescape=True),
                    credentials.c.handle.icontains(search, autoescape=True),
                )
            )
        if tenant is not None:
            query = query.where(credentials.c.tenant == tenant)
        if environment is not None:
            query = query.where(credentials.c.environment == environment)
        if type_names:
            query = query.where(credentials.c.type.in_(list(type_names)))
        if after_id is not None:
            query = query.where(credentials.c.id > after_id)
        if limit is not None:
            query = query.limit(limit)
        try:
            with read_connection(self._engine) as conn:
                rows = conn.execute(query).mappings().all()
        except DBAPIError as exc:
            raise translate_db_error(exc, "listing credentials") from None
        return [self._record(row) for row in rows]

    def versions(self, credential_id: int) -> builtins.list[SecretVersion]:
        query = (
            select(
                secret_versions.c.version,
                secret_versions.c.created_at,
                secret_versions.c.kek_version,
                credentials.c.current_version,
            )
            .join(credentials, credentials.c.id == secret_versions.c.credential_id)
            .where(secret_versions.c.credential_id == credential_id)
            .order_by(secret_versions.c.version.desc())
        )
        with read_connection(self._engine) as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise CredentialNotFound(credential_id)
        result = []
        for version, created_at, kek_version, current in rows:
            created = as_utc(created_at)
            assert created is not None
            result.append(SecretVersion(version, created, kek_version, version == current))
        return result

    def read_secret(self, credential_id: int, version: int | None = None) -> bytes:
        """Decrypt the current (or a given) version's payload. Raises DecryptionFailed on tamper."""
        target = credentials.c.current_version if version is None else version
        query = (
            select(
                credentials.c.tenant,
                secret_versions.c.version,
                secret_versions.c.ciphertext,
                secret_versions.c.wrapped_key,
            )
            .join(credentials, credentials.c.id == secret_versions.c.credential_id)
            .where(credentials.c.id == credential_id, secret_versions.c.version == target)
        )
        with read_connection(self._engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise CredentialNotFound(credential_id)
        tenant, ver, ciphertext, wrapped_key = row
        return self._open(tenant, credential_id, ver, ciphertext, wrapped_key)

    def _open(
        self, tenant: str, credential_id: int, version: int, ciphertext: Any, wrapped_key: Any
    ) -> bytes:
        wrapped = bytes(wrapped_key)
        try:
            kek_version = KekRing.kek_version_of(wrapped)
        except DecryptionFailed:
            kek_version = -1
        return open_sealed(
            bytes(ciphertext),
            wrapped,
            ring=self._ring_for(kek_version),
            aad=secret_aad(tenant, credential_id, version),
            credential_id=credential_id,
            version=version,
        )
