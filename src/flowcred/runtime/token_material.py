"""What an OAuth credential shows: its resolve material (the access token only), the grant
status of ``flowcred oauth status`` (never a token), and the words of its audit events and
refusals. Kept apart from the token manager's timing and locking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from flowcred.redaction import Secret, SecretRegistry
from flowcred.runtime.material import CredentialMaterial
from flowcred.runtime.token_set import TokenSet


@dataclass(frozen=True, slots=True)
class GrantStatus:
    """What ``flowcred oauth status`` shows: the grant's state, never a token."""

    credential_id: int
    state: str
    expires_at: datetime | None
    issued_at: datetime | None
    scopes: tuple[str, ...]
    has_refresh_token: bool
    last_error: str | None
    refreshed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "credentialId": self.credential_id,
            "state": self.state,
            "expiresAt": self.expires_at,
            "issuedAt": self.issued_at,
            "scopes": list(self.scopes),
            "hasRefreshToken": self.has_refresh_token,
            "lastError": self.last_error,
            "refreshedAt": self.refreshed_at,
        }


def token_material(
    base: CredentialMaterial, tokens: TokenSet, registry: SecretRegistry
) -> CredentialMaterial:
    """The material of an OAuth credential: the bearer header and the access token only."""
    access = Secret(tokens.access_token)
    registry.pin(tokens.access_token)
    scheme = "Bearer" if tokens.token_type.lower() == "bearer" else tokens.token_type
    header = f"{scheme} {tokens.access_token}"
    registry.pin(header)
    fields: dict[str, Any] = dict(base.fields)
    fields.update(dict(tokens.kept))
    fields["access_token"] = access
    fields["token_type"] = tokens.token_type
    fields["scopes"] = list(tokens.scopes)
    return CredentialMaterial(
        credential_id=base.credential_id,
        handle=base.handle,
        type=base.type,
        version=base.version,
        headers=MappingProxyType({"Authorization": Secret(header)}),
        query=MappingProxyType({}),
        cookies=MappingProxyType({}),
        fields=MappingProxyType(fields),
        expires_at=tokens.expires_at,
    )


def token_details(tokens: TokenSet, generation: int, grant: str, reason: str) -> dict[str, Any]:
    return {
        "generation": generation,
        "grant": grant,
        "reason": reason,
        "expiresAt": tokens.expires_at.isoformat() if tokens.expires_at else None,
        "scopes": list(tokens.scopes),
        "refreshTokenHeld": bool(tokens.refresh_token),
    }


def refusal_message(cid: int, state: str, oauth_error: str | None) -> str:
    said = f" ({oauth_error})" if oauth_error else ""
    if state == "expired":
        return (
            f"credential {cid}: the provider refused the grant{said}; re-authorise it with "
            f"'flowcred oauth authorize {cid}'"
        )
    return (
        f"credential {cid}: the provider refused the client{said}; check the client id, "
        f"secret and authentication method, then update the credential"
    )
