"""The SQL of OAuth tokens: sealed token sets, grant state, and the cross-process refresh lease.

One row per OAuth credential (table ``oauth_tokens``), apart from ``secret_versions``: a refresh
writes here only, so it is neither a rotation nor a version and never evicts version history,
and rolling back the client secret does not roll back tokens.

Single-flight across processes works the same on SQLite and PostgreSQL, and never holds a
transaction open across a network call:

1. :meth:`TokenStore.try_lease` sets ``lease_owner`` (a random id per attempt) and
   ``lease_until`` in one short UPDATE that succeeds only when no live lease exists;
2. the holder calls the token endpoint with no transaction open;
3. :meth:`TokenStore.persist` writes the new token set in one short transaction *fenced* on the
   lease owner and the generation the attempt started from. A holder whose lease lapsed and was
   taken over cannot overwrite the newer token: its UPDATE matches no row.

The row is created (empty, ``not_authorized``) by :meth:`ensure` before the first lease.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from flowcred.clock import Clock
from flowcred.crypto import KekRing, open_sealed, rewrap_key, seal, token_aad
from flowcred.errors import DecryptionFailed
from flowcred.runtime.token_set import TokenSet
from flowcred.store.credentials import as_utc
from flowcred.store.engine import read_connection, write_transaction
from flowcred.store.tables import credentials, oauth_tokens

GrantState = Literal["not_authorized", "active", "expired", "error"]

#: Called inside the persisting transaction (conn, credential id, new generation): the audit
#: event of the write is appended there, so the token and its event commit together.
InTransaction = Callable[[Any, int, int], None]


@dataclass(frozen=True, slots=True)
class StoredTokens:
    """One row, opened. ``tokens`` is ``None`` before the first grant. Its repr is TokenSet's."""

    credential_id: int
    tenant: str
    generation: int
    tokens: TokenSet | None
    state: GrantState
    last_error: str | None
    refreshed_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None

    def leased(self, now: datetime) -> bool:
        return (
            self.lease_owner is not None and self.lease_until is not None and self.lease_until > now
        )


def new_lease_owner() -> str:
    """A fresh lease owner id: random per attempt, so a late holder never matches a new one."""
    return secrets.token_hex(16)


class TokenStore:
    """Reads and writes ``oauth_tokens``; knows SQL and sealing, not grants or timing."""

    def __init__(
        self,
        engine: Engine,
        *,
        ring: Callable[[], KekRing],
        ring_for: Callable[[int], KekRing],
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._ring = ring
        self._ring_for = ring_for
        self._clock = clock

    # -- reads -----------------------------------------------------------------------------

    def read(self, credential_id: int) -> StoredTokens | None:
        """The row opened, or ``None`` when the credential has none. Raises DecryptionFailed."""
        query = (
            select(oauth_tokens, credentials.c.tenant)
            .join(credentials, credentials.c.id == oauth_tokens.c.credential_id)
            .where(oauth_tokens.c.credential_id == credential_id)
        )
        with read_connection(self._engine) as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        tokens: TokenSet | None = None
        if row["ciphertext"] is not None:
            wrapped = bytes(row["wrapped_key"])
            plain = open_sealed(
                bytes(row["ciphertext"]),
                wrapped,
                ring=self._ring_for(int(row["kek_version"])),
                aad=token_aad(row["tenant"], credential_id, int(row["generation"])),
                credential_id=credential_id,
            )
            try:
                tokens = TokenSet.from_json(plain)
            except (ValueError, KeyError, TypeError):
                raise DecryptionFailed(credential_id, None) from None
        return StoredTokens(
            credential_id=credential_id,
            tenant=row["tenant"],
            generation=int(row["generation"]),
            tokens=tokens,
            state=row["state"],
            last_error=row["last_error"],
            refreshed_at=as_utc(row["refreshed_at"]),
            lease_owner=row["lease_owner"],
            lease_until=as_utc(row["lease_until"]),
        )

    # -- the lease -------------------------------------------------------------------------

    def ensure(self, credential_id: int) -> None:
        """Create the empty row if missing (another process creating it first is fine)."""
        with read_connection(self._engine) as conn:
            exists = conn.execute(
                select(oauth_tokens.c.credential_id).where(
                    oauth_tokens.c.credential_id == credential_id
                )
            ).first()
        if exists is not None:
            return
        now = self._clock.now()
        try:
            with write_transaction(self._engine) as conn:
                conn.execute(_empty_row(credential_id, now))
        except IntegrityError:
            pass  # created meanwhile by another process (or the credential is gone: read says)

    def try_lease(self, credential_id: int, owner: str, seconds: float) -> bool:
        """Take the refresh lease if nobody holds a live one. One short write, no network."""
        now = self._clock.now()
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                update(oauth_tokens)
                .where(
                    oauth_tokens.c.credential_id == credential_id,
                    or_(
                        oauth_tokens.c.lease_owner.is_(None),
                        oauth_tokens.c.lease_until.is_(None),
                        oauth_tokens.c.lease_until <= now,
                    ),
                )
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
            )
            return result.rowcount == 1

    def release(self, credential_id: int, owner: str) -> None:
        """Give the lease back (only ours: a lapsed lease taken over stays with its new owner)."""
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(oauth_tokens)
                .where(
                    oauth_tokens.c.credential_id == credential_id,
                    oauth_tokens.c.lease_owner == owner,
                )
                .values(lease_owner=None, lease_until=None)
            )

    # -- writes ----------------------------------------------------------------------------

    def persist(
        self,
        credential_id: int,
        tenant: str,
        tokens: TokenSet,
        *,
        owner: str | None,
        generation: int | None,
        in_transaction: InTransaction | None = None,
    ) -> int | None:
        """Store ``tokens`` as the next generation, state ``active``; release the lease.

        Fenced: with ``owner`` and ``generation`` set, the write happens only while this owner
        holds the lease and the row is still at ``generation``; otherwise nothing is written and
        ``None`` is returned. With both ``None`` (a completed authorization) the tokens replace
        whatever is stored. Returns the new generation.
        """
        now = self._clock.now()
        with write_transaction(self._engine) as conn:
            current = conn.execute(
                select(oauth_tokens.c.generation, oauth_tokens.c.lease_owner).where(
                    oauth_tokens.c.credential_id == credential_id
                )
            ).first()
            if current is None:
                if owner is not None:
                    return None
                conn.execute(_empty_row(credential_id, now))
                current_generation = 0
            else:
                current_generation = int(current[0])
                if owner is not None and (current[1] != owner or current_generation != generation):
                    return None
            new_generation = current_generation + 1
            sealed = seal(
                tokens.to_json(),
                ring=self._ring(),
                aad=token_aad(tenant, credential_id, new_generation),
            )
            conditions = [
                oauth_tokens.c.credential_id == credential_id,
                oauth_tokens.c.generation == current_generation,
            ]
            if owner is not None:
                conditions.append(oauth_tokens.c.lease_owner == owner)
            result = conn.execute(
                update(oauth_tokens)
                .where(and_(*conditions))
                .values(
                    generation=new_generation,
                    ciphertext=sealed.ciphertext,
                    wrapped_key=sealed.wrapped_key,
                    kek_version=sealed.kek_version,
                    state="active",
                    last_error=None,
                    issued_at=tokens.issued_at,
                    expires_at=tokens.expires_at,
                    scopes=" ".join(tokens.scopes),
                    refreshed_at=now,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                return None
            if in_transaction is not None:
                in_transaction(conn, credential_id, new_generation)
            return new_generation

    def mark(
        self,
        credential_id: int,
        state: GrantState,
        error: str | None,
        *,
        owner: str | None,
        generation: int,
        in_transaction: InTransaction | None = None,
    ) -> bool:
        """Set the grant state after a permanent failure, fenced like :meth:`persist` (a newer
        token stored meanwhile is not marked). Releases ``owner``'s lease."""
        now = self._clock.now()
        conditions = [
            oauth_tokens.c.credential_id == credential_id,
            oauth_tokens.c.generation == generation,
        ]
        if owner is not None:
            conditions.append(oauth_tokens.c.lease_owner == owner)
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                update(oauth_tokens)
                .where(and_(*conditions))
                .values(
                    state=state,
                    last_error=error,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                return False
            if in_transaction is not None:
                in_transaction(conn, credential_id, generation)
            return True


def rewrap_tokens(engine: Engine, ring: KekRing, *, batch_size: int = 500) -> int:
    """Re-wrap every token data key not under ``ring``'s primary KEK; returns the count.

    Part of ``keys rotate`` (:mod:`flowcred.store.kek_versions`). Compare-and-set on
    (generation, kek_version): a refresh persisted meanwhile was sealed afresh and is left to
    the next pass, which a bounded number of passes reaches.
    """
    primary = ring.primary_version
    done = 0
    for _ in range(10_000):
        query = (
            select(
                oauth_tokens.c.credential_id,
                oauth_tokens.c.generation,
                oauth_tokens.c.wrapped_key,
                oauth_tokens.c.kek_version,
                credentials.c.tenant,
            )
            .join(credentials, credentials.c.id == oauth_tokens.c.credential_id)
            .where(
                oauth_tokens.c.kek_version.is_not(None),
                oauth_tokens.c.kek_version != primary,
            )
            .order_by(oauth_tokens.c.credential_id)
            .limit(batch_size)
        )
        with read_connection(engine) as conn:
            rows = conn.execute(query).all()
        if not rows:
            break
        params = [
            {
                "b_id": cid,
                "b_generation": generation,
                "b_old": old,
                "b_wrapped": rewrap_key(
                    bytes(wrapped),
                    ring=ring,
                    aad=token_aad(tenant, cid, int(generation)),
                    credential_id=cid,
                ),
            }
            for cid, generation, wrapped, old, tenant in rows
        ]
        statement = (
            update(oauth_tokens)
            .where(
                oauth_tokens.c.credential_id == bindparam("b_id"),
                oauth_tokens.c.generation == bindparam("b_generation"),
                oauth_tokens.c.kek_version == bindparam("b_old"),
            )
            .values(wrapped_key=bindparam("b_wrapped"), kek_version=primary)
        )
        with write_transaction(engine) as conn:
            conn.execute(statement, params)
        done += len(params)
    return done


def _empty_row(credential_id: int, now: datetime) -> Any:
    """The INSERT of a credential's row before its first token set (``not_authorized``)."""
    return insert(oauth_tokens).values(
        credential_id=credential_id, generation=0, state="not_authorized", scopes="", updated_at=now
    )
