"""Managing API keys with their audit: the rules every front end (CLI, web UI) meets.

:class:`ApiKeyAdmin` wraps the key store for one actor. Create, rotate and revoke each leave one
``api_key`` event (``created`` / ``rotated`` / ``revoked``) naming the key, its role and name,
and a new key whose event cannot be written is revoked before anyone sees it, so no key exists
that the trail does not know of.

``tenant`` confines the actor: ``None`` (the host's operator, a platform admin) manages every
key; a tenant name lets the actor list and manage only that tenant's keys and create keys only
in it (never a platform key). Anything outside is refused with
:class:`~flowcred.errors.AccessDenied`, audited as ``access_denied``; an unknown key and another
tenant's key are refused alike, so ids of other tenants cannot be probed.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from flowcred.audit import Access
from flowcred.audit.events import API_KEY
from flowcred.errors import AccessDenied, FieldProblem, InvalidCredential
from flowcred.store.api_keys import ApiKey, Expiry, Role

if TYPE_CHECKING:
    from flowcred.broker import Broker


class ApiKeyAdmin:
    """The broker's key store as one actor manages it (see the module docstring)."""

    def __init__(self, broker: Broker, access: Access, *, tenant: str | None = None) -> None:
        self._broker = broker
        self._store = broker.api_keys
        self._access = access
        self.tenant = tenant

    def __repr__(self) -> str:
        return f"ApiKeyAdmin(actor={self._access.actor.id!r}, tenant={self.tenant!r})"

    # -- rules -------------------------------------------------------------------------------

    def _audit(self, action: str, key: ApiKey, **details: Any) -> None:
        self._broker.audit_event(
            self._access,
            API_KEY,
            action,
            "success",
            tenant=key.tenant,
            resource_type=API_KEY,
            resource_id=key.id,
            details={"role": key.role, "name": key.name, **details},
        )

    def _audit_new(self, action: str, key: ApiKey, **details: Any) -> None:
        """Audit a new key; if the audit write fails, revoke the key before it is ever shown."""
        try:
            self._audit(action, key, **details)
        except BaseException:
            self._store.revoke(key.id)
            raise

    def _deny(self, action: str, **details: Any) -> AccessDenied:
        self._broker.audit_denial(
            self._access,
            API_KEY,
            "access_denied",
            details={"attempted": action, "key_tenant": self.tenant, **details},
        )
        return AccessDenied("this API key may not manage that key")

    def _owned(self, key_id: str, action: str) -> ApiKey:
        """The key ``key_id`` if this actor may manage it; unknown and foreign look alike."""
        key = self._store.get(key_id)
        if key is None:
            if self.tenant is not None:
                raise self._deny(action)
            raise InvalidCredential([FieldProblem("id", "unknown API key")])
        if self.tenant is not None and key.tenant != self.tenant:
            raise self._deny(action, key_id=key_id)
        return key

    # -- operations --------------------------------------------------------------------------

    def list(self) -> builtins.list[ApiKey]:
        """Keys this actor may see (never a key or its hash)."""
        return self._store.list(tenant=self.tenant)

    def create(
        self, *, role: Role, tenant: str, name: str = "", expires_at: Expiry
    ) -> tuple[ApiKey, str]:
        """A new key and its raw value (show it once)."""
        if self.tenant is not None and tenant != self.tenant:
            raise self._deny("created", tenant=tenant)
        key, raw = self._store.create(role=role, tenant=tenant, name=name, expires_at=expires_at)
        self._audit_new("created", key)
        return key, raw

    def rotate(self, key_id: str, *, grace_seconds: float) -> tuple[ApiKey, str]:
        """A replacement key (shown once); the old one works for ``grace_seconds`` more."""
        self._owned(key_id, "rotated")
        key, raw = self._store.rotate(key_id, grace_seconds=grace_seconds)
        self._audit_new("rotated", key, replaces=key_id)
        return key, raw

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke at once (other processes stop accepting it within the visibility bound)."""
        self._owned(key_id, "revoked")
        key = self._store.revoke(key_id)
        self._audit("revoked", key)
        return key
