"""The per-tenant face of the resolve path: audited resolves, password reads and live tests.

:class:`CredentialProvider` (``broker.provider(tenant=...)``) wraps the shared
:class:`~flowcred.runtime.provider.Resolver` with one actor's audit trail: every call is
recorded *before* any material is returned (fail closed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from flowcred.audit.events import Access, PendingEvent
from flowcred.audit.trail import AuditTrail
from flowcred.errors import FlowcredError
from flowcred.runtime.httpx_auth import FlowcredAuth
from flowcred.runtime.material import CredentialMaterial
from flowcred.runtime.provider import Ref, Resolver


class CredentialProvider:
    """Resolves references for one tenant (and, for handles, one environment).

    A reference is an int credential id or a handle. Another tenant's id is answered exactly like
    an unknown one: :class:`~flowcred.errors.CredentialNotFound`. Every call is audited with the
    provider's actor and the given ``execution_id`` *before* any material is handed out: if the
    event cannot be written, the call fails and returns nothing (fail closed).

    >>> provider = broker.provider(tenant="acme")                  # doctest: +SKIP
    >>> provider.get_password(12, execution_id="run-42")           # doctest: +SKIP
    'xoxb-...'
    """

    def __init__(
        self,
        resolver: Resolver,
        trail: AuditTrail,
        access: Access,
        tenant: str,
        environment: str,
    ) -> None:
        self._resolver = resolver
        self._trail = trail
        self._access = access
        self.tenant = tenant
        self.environment = environment

    def __repr__(self) -> str:
        return f"CredentialProvider(tenant={self.tenant!r}, environment={self.environment!r})"

    def _material(
        self, ref: Ref, action: str, execution_id: str | None, *, forced: bool = False
    ) -> CredentialMaterial:
        bound = self._resolver.bindings
        if bound is not None and isinstance(ref, str) and ref in bound:
            # A binding name (FLOWCRED_BINDINGS_FILE): assembled from the secret sources and
            # audited by the binding resolver with the binding and source names.
            return bound.resolve(self, ref, action, execution_id, forced=forced)
        return self._stored_material(ref, action, execution_id, forced=forced)

    def _stored_material(
        self, ref: Ref, action: str, execution_id: str | None, *, forced: bool = False
    ) -> CredentialMaterial:
        try:
            if forced:
                material = self._resolver.force_token_refresh(ref, self.tenant, self.environment)
            else:
                material = self._resolver.resolve(ref, self.tenant, self.environment)
        except FlowcredError as exc:
            self._trail.failure(
                self._access, action, exc, tenant=self.tenant, ref=ref, execution_id=execution_id
            )
            raise
        self._trail.recorder.record(self._read_event(material, action, execution_id))
        return material

    def _read_event(
        self, material: CredentialMaterial, action: str, execution_id: str | None
    ) -> PendingEvent:
        return self._trail.read_event(
            self._access,
            action,
            material.credential_id,
            self.tenant,
            execution_id,
            {"version": material.version},
        )

    def resolve(self, ref: Ref, *, execution_id: str | None = None) -> CredentialMaterial:
        """Material for ``ref``. Raises CredentialNotFound, CredentialExpired, DecryptionFailed,
        AuditWriteFailed."""
        return self._material(ref, "resolved", execution_id)

    def resolve_stored(self, ref: Ref, *, execution_id: str | None = None) -> CredentialMaterial:
        """Like :meth:`resolve`, but only flowcred's own store answers, never a binding (what
        the ``store`` secret source reads, so a binding cannot resolve through itself)."""
        return self._stored_material(ref, "resolved", execution_id)

    def stored_password(self, ref: Ref, *, execution_id: str | None = None) -> str:
        """:meth:`get_password` of a stored credential only (see :meth:`resolve_stored`)."""
        material = self._stored_material(ref, "password_read", execution_id)
        return self._resolver.secret_value(material)

    @property
    def audit(self) -> tuple[AuditTrail, Access]:
        """This provider's audit trail and actor (for the binding resolver's events)."""
        return self._trail, self._access

    def refresh(self, ref: Ref, *, execution_id: str | None = None) -> CredentialMaterial:
        """Like :meth:`resolve`, but an OAuth credential gets a newly obtained access token even
        if the held one looks valid (the API refused it). Audited as a resolve."""
        return self._material(ref, "resolved", execution_id, forced=True)

    async def arefresh(self, ref: Ref, *, execution_id: str | None = None) -> CredentialMaterial:
        """Async twin of :meth:`refresh` (runs in a worker thread: it may wait on an endpoint)."""
        return await asyncio.to_thread(self._material, ref, "resolved", execution_id, forced=True)

    def httpx_auth(
        self, ref: Ref, *, execution_id: str | None = None, origin: str | None = None
    ) -> FlowcredAuth:
        """An ``httpx.Auth`` applying ``ref`` to requests (sync and async clients alike): on a
        401 it forces one token refresh and retries once; it sends the credential only to its
        origin (see :mod:`flowcred.runtime.httpx_auth`)."""
        return FlowcredAuth(self, ref, execution_id=execution_id, origin=origin)

    async def _amaterial(
        self, ref: Ref, action: str, execution_id: str | None
    ) -> CredentialMaterial:
        bound = self._resolver.bindings
        try:
            material = (
                None
                if bound is not None and isinstance(ref, str) and ref in bound
                else self._resolver.cached(ref, self.tenant, self.environment)
            )
        except FlowcredError:
            material = None  # The blocking path raises it again and records the failure.
        if material is None:
            # A miss reads the database: the whole blocking call, its event included, runs in a
            # worker thread, which finishes (and records the event) even if the caller is
            # cancelled meanwhile.
            return await asyncio.to_thread(self._material, ref, action, execution_id)
        await self._trail.recorder.arecord(self._read_event(material, action, execution_id))
        return material

    async def aresolve(self, ref: Ref, *, execution_id: str | None = None) -> CredentialMaterial:
        """Async twin of :meth:`resolve`. A cached credential is resolved on the event loop and
        its audit event joins the next group commit without blocking the loop; a cache miss
        reads in a worker thread."""
        return await self._amaterial(ref, "resolved", execution_id)

    def test(
        self, ref: Ref, check: Callable[[CredentialMaterial], tuple[bool, dict[str, Any]]]
    ) -> tuple[bool, dict[str, Any]]:
        """Run a live test of ``ref``: ``check`` gets the material and says (ok, details).

        The material stays inside this call. One ``tested`` event records the real outcome
        (success or failure, with ``details``); if the event cannot be written the test fails.
        """
        try:
            material = self._resolver.resolve(ref, self.tenant, self.environment)
        except FlowcredError as exc:
            self._trail.failure(self._access, "tested", exc, tenant=self.tenant, ref=ref)
            raise
        try:
            ok, details = check(material)
        except FlowcredError as exc:
            # Nothing could be tested (e.g. no test endpoint): still this call's one event.
            self._trail.failure(self._access, "tested", exc, tenant=self.tenant, ref=ref)
            raise
        self._trail.record(
            self._access,
            "credential",
            "tested",
            "success" if ok else "failure",
            tenant=self.tenant,
            resource_type="credential",
            resource_id=material.credential_id,
            details={"version": material.version, **details},
        )
        return ok, details

    def get_password(self, credential_id: Ref, *, execution_id: str | None = None) -> str:
        """The decrypted secret as Flow Studio stores it.

        Single-secret types give the one secret (a Slack ``xoxb-`` token, an SMTP password, the
        FCM service-account JSON text); composite types give their JSON object text
        (Twilio ``{"accountSid": ..., "authToken": ...}``).
        """
        material = self._material(credential_id, "password_read", execution_id)
        return self._resolver.secret_value(material)

    async def aget_password(self, credential_id: Ref, *, execution_id: str | None = None) -> str:
        """Async twin of :meth:`get_password`."""
        material = await self._amaterial(credential_id, "password_read", execution_id)
        return self._resolver.secret_value(material)
