"""Keeps OAuth access tokens valid by themselves: the heart of resolving an OAuth credential.

For a credential whose type has an ``oauth`` block, a resolve answers with an access token that
stays valid for at least the *margin* (default 60 s; per credential, Flowker's
``cache.refresh_before_expiry_seconds``, or the provider entry). Before the margin lies a *stale
window* (default 5 minutes, capped at half the time between the token's issue and its margin,
so a short-lived token is not refreshed the moment it arrives — google-auth's STALE vs
INVALID):

=====================  ======================================================================
token state            what a resolve does
=====================  ======================================================================
fresh                  answers from memory
stale (in the window)  answers at once and starts one background refresh
inside the margin      refreshes first (single-flight), then answers
=====================  ======================================================================

So in steady use no resolve waits for a token endpoint. Refreshes are single-flight per
credential: one :class:`~flowcred.runtime.single_flight.SingleFlight` call per process, and
across processes the lease in ``oauth_tokens`` (see :mod:`flowcred.store.oauth_tokens`), with
no transaction open during the network call and a fenced persist, so a holder whose lease
lapsed cannot overwrite a newer token. The new token set (with a rotated refresh token) is
persisted *before* the access token is handed out; if the provider sends no new refresh token
the old one is kept. An ``invalid_grant`` after another process's successful refresh (the
stored generation moved on since this attempt began) is a lost race: the new token is used.
A permanent refusal sets the grant state (``expired`` for a refused grant, ``error`` for a
refused client) and later resolves fail at once with :class:`~flowcred.errors.TokenRefreshFailed`
until the credential is authorised again (or, for grants that need no person, its secret is
changed). Only the access token ever leaves: never a refresh token, client secret or key.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flowcred.audit.events import Access
from flowcred.audit.trail import AuditTrail
from flowcred.catalog import Catalog
from flowcred.catalog.oauth_spec import OAuthSpec
from flowcred.clock import Clock
from flowcred.errors import CircuitOpen, FlowcredError, TokenRefreshFailed
from flowcred.redaction import SecretRegistry
from flowcred.runtime.material import CredentialMaterial
from flowcred.runtime.oauth2_grants import GrantClient
from flowcred.runtime.single_flight import SingleFlight
from flowcred.runtime.token_audit import TokenAudit, failure_details
from flowcred.runtime.token_material import (
    GrantStatus,
    refusal_message,
    token_details,
    token_material,
)
from flowcred.runtime.token_requests import GrantInputs, fetch
from flowcred.runtime.token_set import TokenSet
from flowcred.store.credentials import CredentialStore
from flowcred.store.oauth_tokens import GrantState, StoredTokens, TokenStore, new_lease_owner

_POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class _Entry:
    generation: int
    tokens: TokenSet
    material: CredentialMaterial


class TokenManager:
    """One per broker; shared by every provider and thread of the process."""

    def __init__(
        self,
        *,
        store: TokenStore,
        credentials: CredentialStore,
        catalog: Catalog,
        grants: GrantClient,
        trail: AuditTrail,
        clock: Clock,
        registry: SecretRegistry,
        margin: float,
        stale_window: float,
        lease_seconds: float,
        background_workers: int = 4,
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._catalog = catalog
        self.grants = grants
        self._audit = TokenAudit(trail)
        self._clock = clock
        self._registry = registry
        self._margin = margin
        self._stale = stale_window
        self._lease = lease_seconds
        self._entries: dict[int, _Entry] = {}
        self._flights: SingleFlight[_Entry] = SingleFlight(wait_seconds=lease_seconds * 4 + 30)
        self._background: set[int] = set()
        self._bg_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=background_workers, thread_name_prefix="flowcred-token-refresh"
        )
        self._closed = False

    # -- the resolve path --------------------------------------------------------------------

    def material(
        self, base: CredentialMaterial, spec: OAuthSpec, tenant: str
    ) -> CredentialMaterial:
        """Material with an access token valid for at least the margin (may refresh first)."""
        entry = self._entries.get(base.credential_id)
        if entry is not None and entry.material.version == base.version:
            phase = self._phase(entry.tokens, base, spec)
            if phase == "fresh":
                return entry.material
            if phase == "stale":
                self._refresh_in_background(base, spec, tenant)
                return entry.material
        entry = self._refresh(base, spec, tenant, reason="expiring" if entry else "load")
        return entry.material

    def cached_material(
        self, base: CredentialMaterial, spec: OAuthSpec, tenant: str
    ) -> CredentialMaterial | None:
        """What :meth:`material` answers without waiting, else ``None`` (for an event loop)."""
        entry = self._entries.get(base.credential_id)
        if entry is None or entry.material.version != base.version:
            return None
        phase = self._phase(entry.tokens, base, spec)
        if phase == "stale":
            self._refresh_in_background(base, spec, tenant)
        return entry.material if phase != "due" else None

    def force_refresh(
        self, base: CredentialMaterial, spec: OAuthSpec, tenant: str
    ) -> CredentialMaterial:
        """A new access token even if the held one looks valid (after a 401 from the API)."""
        known = self._entries.get(base.credential_id)
        return self._refresh(
            base, spec, tenant, reason="forced", newer_than=known.generation if known else 0
        ).material

    def forget(self, credential_id: int | None = None) -> None:
        """Drop tokens held in memory (a credential changed or was deleted; all when None)."""
        if credential_id is None:
            self._entries.clear()
        else:
            self._entries.pop(credential_id, None)

    # -- timing ------------------------------------------------------------------------------

    def _phase(self, tokens: TokenSet, base: CredentialMaterial, spec: OAuthSpec) -> str:
        if tokens.expires_at is None:
            return "fresh"
        margin = self._margin_of(base, spec)
        now = self._clock.now()
        due = tokens.expires_at - timedelta(seconds=margin)
        if now >= due:
            return "due"
        usable = (due - tokens.issued_at).total_seconds()
        window = max(0.0, min(self._stale, usable / 2))
        if now >= due - timedelta(seconds=window):
            return "stale"
        return "fresh"

    def _margin_of(self, base: CredentialMaterial, spec: OAuthSpec) -> float:
        override = GrantInputs(spec, base.fields, {}).margin_override
        return override if override is not None else self._margin

    # -- refreshing --------------------------------------------------------------------------

    def _refresh_in_background(
        self, base: CredentialMaterial, spec: OAuthSpec, tenant: str
    ) -> None:
        cid = base.credential_id
        with self._bg_lock:
            if cid in self._background or self._closed or self._flights.in_flight(cid):
                return
            self._background.add(cid)

        def run() -> None:
            try:
                self._refresh(base, spec, tenant, reason="stale")
            except FlowcredError:
                pass  # recorded as refresh_failed; the next resolve inside the margin retries
            finally:
                with self._bg_lock:
                    self._background.discard(cid)

        try:
            self._pool.submit(run)
        except RuntimeError:  # pool shut down while closing
            with self._bg_lock:
                self._background.discard(cid)

    def _refresh(
        self,
        base: CredentialMaterial,
        spec: OAuthSpec,
        tenant: str,
        *,
        reason: str,
        newer_than: int | None = None,
    ) -> _Entry:
        cid = base.credential_id

        def call() -> _Entry:
            entry = self._obtain(base, spec, tenant, reason=reason, newer_than=newer_than)
            self._entries[cid] = entry
            return entry

        def waited_too_long() -> _Entry:
            raise TokenRefreshFailed(
                f"credential {cid}: gave up waiting for a token refresh in progress"
            )

        return self._flights.run(cid, call, waited_too_long)

    def _usable(
        self, row: StoredTokens, base: CredentialMaterial, spec: OAuthSpec, newer_than: int | None
    ) -> bool:
        """Whether the stored token set can be adopted instead of asking the endpoint."""
        if row.tokens is None or row.state != "active":
            return False
        if newer_than is not None:
            return row.generation > newer_than
        return self._phase(row.tokens, base, spec) == "fresh"

    def _obtain(
        self,
        base: CredentialMaterial,
        spec: OAuthSpec,
        tenant: str,
        *,
        reason: str,
        newer_than: int | None,
    ) -> _Entry:
        cid = base.credential_id
        deadline = time.monotonic() + self._lease * 3 + 30
        self._store.ensure(cid)
        while True:
            row = self._read(cid)
            if self._usable(row, base, spec, newer_than):
                return self._entry(base, row)
            if row.state in ("expired", "error") and self._sticky(row, spec, base):
                raise self._refused(row)
            owner = new_lease_owner()
            if self._store.try_lease(cid, owner, self._lease):
                try:
                    return self._refresh_leased(base, spec, tenant, owner, reason, newer_than)
                finally:
                    self._store.release(cid, owner)
            if time.monotonic() > deadline:
                raise TokenRefreshFailed(
                    f"credential {cid}: another process holds the token refresh lease"
                )
            self._wait_for_lease(cid, row.generation, deadline)

    def _wait_for_lease(self, cid: int, generation: int, deadline: float) -> None:
        """Poll until the other holder stored a token, released, or its lease lapsed."""
        while time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
            row = self._store.read(cid)
            if row is None or row.generation != generation or not row.leased(self._clock.now()):
                return

    def _refresh_leased(
        self,
        base: CredentialMaterial,
        spec: OAuthSpec,
        tenant: str,
        owner: str,
        reason: str,
        newer_than: int | None,
    ) -> _Entry:
        cid = base.credential_id
        row = self._read(cid)  # what was stored before we took the lease
        if self._usable(row, base, spec, newer_than):
            return self._entry(base, row)
        if row.state in ("expired", "error") and self._sticky(row, spec, base):
            raise self._refused(row)
        inputs = self._inputs(cid, spec)
        held = row.tokens.refresh_token if row.tokens is not None else None
        try:
            tokens, grant = fetch(self.grants, inputs, refresh_token=held)
        except TokenRefreshFailed as exc:
            return self._failed(base, spec, tenant, row, owner, exc)
        except CircuitOpen as exc:
            self._audit.failure(cid, tenant, exc, spec.grant)
            raise
        tokens = tokens.with_refresh_token(held)
        for text in (tokens.access_token, tokens.refresh_token, tokens.id_token):
            if text:
                self._registry.pin(text)
        hook, committed = self._audit.in_write(
            "refreshed",
            "success",
            tenant,
            lambda generation: token_details(tokens, generation, grant, reason),
        )
        generation = self._store.persist(
            cid, tenant, tokens, owner=owner, generation=row.generation, in_transaction=hook
        )
        committed()
        if generation is None:
            # Fenced out: our lease lapsed and someone else stored a newer token. Use theirs.
            fresh = self._read(cid)
            if fresh.tokens is None:
                raise TokenRefreshFailed(f"credential {cid}: the token refresh was superseded")
            return self._entry(base, fresh)
        return self._entry(
            base, StoredTokens(cid, tenant, generation, tokens, "active", None, None, None, None)
        )

    def _failed(
        self,
        base: CredentialMaterial,
        spec: OAuthSpec,
        tenant: str,
        row: StoredTokens,
        owner: str,
        exc: TokenRefreshFailed,
    ) -> _Entry:
        cid = base.credential_id
        if exc.permanent and exc.oauth_error == "invalid_grant":
            now_row = self._read(cid)
            if now_row.generation != row.generation and now_row.tokens is not None:
                return self._entry(base, now_row)  # a lost race, not an expiry
        if not exc.permanent:
            self._audit.failure(cid, tenant, exc, spec.grant)
            raise exc
        state: GrantState = (
            "expired" if exc.reauthorize or exc.oauth_error == "invalid_grant" else "error"
        )
        label = exc.oauth_error or type(exc).__name__
        hook, committed = self._audit.in_write(
            "refresh_failed",
            "failure",
            tenant,
            lambda _generation: failure_details(exc, spec.grant, state),
        )
        marked = self._store.mark(
            cid,
            state,
            f"{label}@v{base.version}",
            owner=owner,
            generation=row.generation,
            in_transaction=hook,
        )
        committed()
        if not marked:
            self._audit.failure(cid, tenant, exc, spec.grant)
        self._entries.pop(cid, None)
        raise TokenRefreshFailed(
            refusal_message(cid, state, exc.oauth_error),
            oauth_error=exc.oauth_error,
            permanent=True,
            reauthorize=state == "expired",
            status_code=exc.status_code,
        )

    def _sticky(self, row: StoredTokens, spec: OAuthSpec, base: CredentialMaterial) -> bool:
        """A refused grant stays refused until authorised again; for grants that need no
        person, until the credential's secret (client secret, password, key) changes."""
        if spec.grant == "authorization_code":
            return True
        return (row.last_error or "").endswith(f"@v{base.version}")

    def _refused(self, row: StoredTokens) -> TokenRefreshFailed:
        error = (row.last_error or "").split("@", 1)[0] or None
        return TokenRefreshFailed(
            refusal_message(row.credential_id, row.state, error),
            oauth_error=error,
            permanent=True,
            reauthorize=row.state == "expired",
        )

    # -- authorization and status ------------------------------------------------------------

    def authorized(
        self, credential_id: int, tenant: str, tokens: TokenSet, *, access: Access
    ) -> None:
        """Store the tokens of a completed authorization (replacing any): state Active again."""
        for text in (tokens.access_token, tokens.refresh_token, tokens.id_token):
            if text:
                self._registry.pin(text)
        hook, committed = self._audit.in_write(
            "authorized",
            "success",
            tenant,
            lambda generation: token_details(
                tokens, generation, "authorization_code", "authorized"
            ),
            access,
        )
        self._store.persist(
            credential_id, tenant, tokens, owner=None, generation=None, in_transaction=hook
        )
        committed()
        self._entries.pop(credential_id, None)

    def status(self, credential_id: int, tenant: str) -> GrantStatus:
        row = self._store.read(credential_id)
        if row is None or row.tenant != tenant:
            return GrantStatus(credential_id, "not_authorized", None, None, (), False, None, None)
        tokens = row.tokens
        state = row.state
        if state == "active" and tokens is not None and tokens.expires_at is not None:
            if tokens.expires_at <= self._clock.now() and not tokens.refresh_token:
                state = "expired"
        return GrantStatus(
            credential_id=credential_id,
            state=state,
            expires_at=tokens.expires_at if tokens else None,
            issued_at=tokens.issued_at if tokens else None,
            scopes=tokens.scopes if tokens else (),
            has_refresh_token=bool(tokens and tokens.refresh_token),
            last_error=(row.last_error or "").split("@", 1)[0] or None,
            refreshed_at=row.refreshed_at,
        )

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.grants.close()

    # -- helpers -----------------------------------------------------------------------------

    def _read(self, cid: int) -> StoredTokens:
        row = self._store.read(cid)
        if row is None:
            self._store.ensure(cid)
            row = self._store.read(cid)
        if row is None:
            raise TokenRefreshFailed(f"credential {cid} has no token record")
        return row

    def _inputs(self, cid: int, spec: OAuthSpec) -> GrantInputs:
        record = self._credentials.get(cid)
        if record is None:
            raise TokenRefreshFailed(f"credential {cid} no longer exists", permanent=True)
        secret: Mapping[str, Any] = json.loads(self._credentials.read_secret(cid))
        return GrantInputs(spec, record.config, secret)

    def _entry(self, base: CredentialMaterial, row: StoredTokens) -> _Entry:
        assert row.tokens is not None
        return _Entry(row.generation, row.tokens, token_material(base, row.tokens, self._registry))
