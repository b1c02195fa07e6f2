"""What flowcred returns about a credential: metadata only, never secret material.

These types have no attribute that could hold a secret, so printing, logging or serialising one
cannot leak anything (DESIGN §5, invariant 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

CredentialStatus = Literal["active", "expired", "error"]


@dataclass(frozen=True, slots=True)
class Credential:
    """A stored credential's metadata.

    ``id`` is the ``credentialId`` flows hold; ``handle`` is the slug unique per tenant and
    environment; ``config`` holds only the type's non-secret fields. ``status`` and
    ``expiring_soon`` are as of the read (:mod:`flowcred.credential_status`).
    """

    id: int
    tenant: str
    environment: str
    handle: str
    name: str
    type: str
    family: str
    config: dict[str, Any]
    status: CredentialStatus
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    current_version: int
    expiring_soon: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings), the stable ``--json`` shape."""
        data = asdict(self)
        for key in ("created_at", "updated_at", "last_used_at", "expires_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """One stored version of a credential's secret: when it was made and which key wraps it."""

    version: int
    created_at: datetime
    kek_version: int
    current: bool = field(default=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "kek_version": self.kek_version,
            "current": self.current,
        }
