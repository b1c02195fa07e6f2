"""Pending OAuth authorizations: one-time ``state`` values and what the callback needs.

``authorize`` creates a row; the provider's redirect to the callback consumes it. The callback
carries no API key, so the state is the authority: whoever holds it completes the
authorization the initiating caller started (recorded here as actor kind / id / name).

* The state is 256 random bits (URL-safe base64); only its SHA-256 is stored, so a database
  reader cannot forge a callback.
* The PKCE ``code_verifier``, the OIDC ``nonce`` and the requested scopes are sealed with the
  envelope under :func:`~flowcred.crypto.state_aad` (tenant, credential, state hash), so the
  database never holds them in clear and a sealed blob cannot be moved to another row.
* :meth:`OAuthStateStore.consume` is one ``UPDATE ... WHERE consumed_at IS NULL AND expires_at >
  now``: of a replay, or of two racing callbacks, exactly one gets the pending authorization.
* Rows live ``ttl`` seconds (10 minutes); :meth:`OAuthStateStore.prune` removes expired and
  consumed rows (called on every create, bounded work).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import DBAPIError

from flowcred.audit import Actor
from flowcred.clock import Clock
from flowcred.crypto import KekRing, open_sealed, seal, state_aad
from flowcred.errors import DecryptionFailed
from flowcred.store.credentials import as_utc
from flowcred.store.engine import read_connection, translate_db_error, write_transaction
from flowcred.store.tables import oauth_states

DEFAULT_TTL_SECONDS = 600.0

#: Why a state could not be consumed (audit detail only; the client gets one answer for all).
Refusal = Literal["unknown", "replayed", "expired", "unreadable"]


def state_hash(state: str) -> str:
    """Hex SHA-256 of a state value: the row's key."""
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True, repr=False)
class PendingAuthorization:
    """A consumed state: who started it, for which credential, and the sealed values opened.

    The repr shows the credential and actor only; ``code_verifier`` and ``nonce`` are secrets.
    """

    credential_id: int
    tenant: str
    actor: Actor
    redirect_uri: str
    code_verifier: str
    nonce: str | None
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime

    def __repr__(self) -> str:
        return (
            f"PendingAuthorization(credential_id={self.credential_id}, tenant={self.tenant!r}, "
            f"actor={self.actor.kind}:{self.actor.id})"
        )


@dataclass(frozen=True, slots=True)
class ConsumeResult:
    """What :meth:`OAuthStateStore.consume` found: the authorization, or why there is none.

    ``tenant`` / ``credential_id`` / ``actor`` are filled for a known-but-refused state (a
    replay, an expired one) so the refusal can be audited against the right credential.
    """

    pending: PendingAuthorization | None
    refusal: Refusal | None = None
    tenant: str | None = None
    credential_id: int | None = None
    actor: Actor | None = field(default=None)


class OAuthStateStore:
    """Creates, consumes and prunes pending authorizations (SQL and sealing only)."""

    def __init__(
        self,
        engine: Engine,
        *,
        ring: Callable[[], KekRing],
        ring_for: Callable[[int], KekRing],
        clock: Clock,
        ttl: float = DEFAULT_TTL_SECONDS,
    ) -> None:
        self._engine = engine
        self._ring = ring
        self._ring_for = ring_for
        self._clock = clock
        self.ttl = ttl

    def create(
        self,
        *,
        credential_id: int,
        tenant: str,
        actor: Actor,
        redirect_uri: str,
        code_verifier: str,
        nonce: str | None,
        scopes: tuple[str, ...],
    ) -> str:
        """Store a new pending authorization and return its state (shown once, never stored)."""
        state = secrets.token_urlsafe(32)  # 256 bits
        digest = state_hash(state)
        now = self._clock.now()
        payload = json.dumps(
            {"v": 1, "code_verifier": code_verifier, "nonce": nonce, "scopes": list(scopes)},
            separators=(",", ":"),
        ).encode()
        sealed = seal(payload, ring=self._ring(), aad=state_aad(tenant, credential_id, digest))
        try:
            with write_transaction(self._engine) as conn:
                self._prune(conn, now)
                conn.execute(
                    insert(oauth_states).values(
                        state_hash=digest,
                        credential_id=credential_id,
                        tenant=tenant,
                        actor_kind=actor.kind[:16],
                        actor_id=actor.id[:128],
                        actor_name=actor.name[:256],
                        redirect_uri=redirect_uri,
                        ciphertext=sealed.ciphertext,
                        wrapped_key=sealed.wrapped_key,
                        kek_version=sealed.kek_version,
                        created_at=now,
                        expires_at=now + timedelta(seconds=self.ttl),
                        consumed_at=None,
                    )
                )
        except DBAPIError as exc:
            raise translate_db_error(exc, "storing an OAuth state") from None
        return state

    def consume(self, state: str) -> ConsumeResult:
        """Mark ``state`` used and return its pending authorization, exactly once.

        The single conditional UPDATE is the whole guard: a replay, an expired state or a second
        racing callback changes no row and gets a refusal (with the reason, for the audit).
        """
        digest = state_hash(state)
        now = self._clock.now()
        try:
            with write_transaction(self._engine) as conn:
                changed = conn.execute(
                    update(oauth_states)
                    .where(
                        oauth_states.c.state_hash == digest,
                        oauth_states.c.consumed_at.is_(None),
                        oauth_states.c.expires_at > now,
                    )
                    .values(consumed_at=now)
                ).rowcount
                row = (
                    conn.execute(select(oauth_states).where(oauth_states.c.state_hash == digest))
                    .mappings()
                    .first()
                )
        except DBAPIError as exc:
            raise translate_db_error(exc, "reading an OAuth state") from None
        if row is None:
            return ConsumeResult(None, "unknown")
        actor = Actor(row["actor_kind"], row["actor_id"], row["actor_name"])
        known = {
            "tenant": row["tenant"],
            "credential_id": int(row["credential_id"]),
            "actor": actor,
        }
        if changed != 1:
            reason: Refusal = "replayed" if row["consumed_at"] is not None else "expired"
            return ConsumeResult(None, reason, **known)
        try:
            plain = open_sealed(
                bytes(row["ciphertext"]),
                bytes(row["wrapped_key"]),
                ring=self._ring_for(int(row["kek_version"])),
                aad=state_aad(row["tenant"], int(row["credential_id"]), digest),
            )
            data = json.loads(plain)
        except (DecryptionFailed, ValueError):
            return ConsumeResult(None, "unreadable", **known)
        created = as_utc(row["created_at"])
        expires = as_utc(row["expires_at"])
        assert created is not None and expires is not None
        return ConsumeResult(
            PendingAuthorization(
                credential_id=int(row["credential_id"]),
                tenant=row["tenant"],
                actor=actor,
                redirect_uri=row["redirect_uri"],
                code_verifier=str(data["code_verifier"]),
                nonce=data.get("nonce"),
                scopes=tuple(data.get("scopes") or ()),
                created_at=created,
                expires_at=expires,
            ),
            **known,
        )

    def prune(self) -> int:
        """Delete expired states (consumed ones included); returns how many rows went."""
        try:
            with write_transaction(self._engine) as conn:
                return self._prune(conn, self._clock.now())
        except DBAPIError as exc:
            raise translate_db_error(exc, "pruning OAuth states") from None

    def pending_count(self) -> int:
        """Rows not yet pruned (for tests and diagnostics)."""
        with read_connection(self._engine) as conn:
            return len(conn.execute(select(oauth_states.c.state_hash)).all())

    @staticmethod
    def _prune(conn: object, now: datetime) -> int:
        # A consumed row is kept until its expiry so a replay is audited as "replayed", not
        # "unknown"; after that it is indistinguishable from any other dead state.
        result = conn.execute(  # type: ignore[attr-defined]
            delete(oauth_states).where(oauth_states.c.expires_at <= now)
        )
        return int(result.rowcount or 0)
