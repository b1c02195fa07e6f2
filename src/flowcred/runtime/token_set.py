"""What a token endpoint answered, parsed once: the unit the token manager seals and stores.

A :class:`TokenSet` holds live secrets (the access token, the refresh token, an ID token), so
its ``repr`` shows only metadata, and it is never logged, audited or returned by any API other
than the resolve path (which hands out the access token alone, as a ``Secret``).

``to_json``/``from_json`` are the sealed payload's format (a JSON object, versioned by the
``v`` key), so a stored token set survives process restarts and KEK rotations unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, repr=False)
class TokenSet:
    """Tokens from one grant or refresh.

    ``expires_at`` is ``None`` for a token without ``expires_in`` (GitHub OAuth apps), which is
    treated as non-expiring unless the provider entry sets a default lifetime. ``scopes`` are the
    granted scopes (the response's ``scope``, or the requested ones when the provider omits it).
    ``kept`` holds the non-secret response fields the provider entry says to keep (Salesforce's
    ``instance_url``, Slack's team id): they travel with the material as plain fields.
    """

    access_token: str
    token_type: str = "Bearer"
    issued_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    expires_at: datetime | None = None
    refresh_token: str | None = None
    scopes: tuple[str, ...] = ()
    kept: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    id_token: str | None = None

    def __repr__(self) -> str:
        return (
            f"TokenSet(token_type={self.token_type!r}, issued_at={self.issued_at.isoformat()}, "
            f"expires_at={self.expires_at.isoformat() if self.expires_at else None}, "
            f"refresh_token={'[secure]' if self.refresh_token else None}, "
            f"scopes={self.scopes!r})"
        )

    @property
    def lifetime(self) -> float | None:
        """Seconds between issue and expiry, or ``None`` for a non-expiring token."""
        if self.expires_at is None:
            return None
        return (self.expires_at - self.issued_at).total_seconds()

    def with_refresh_token(self, refresh_token: str | None) -> TokenSet:
        """This set with ``refresh_token`` kept when the provider sent no new one."""
        if self.refresh_token or not refresh_token:
            return self
        return TokenSet(
            access_token=self.access_token,
            token_type=self.token_type,
            issued_at=self.issued_at,
            expires_at=self.expires_at,
            refresh_token=refresh_token,
            scopes=self.scopes,
            kept=self.kept,
            id_token=self.id_token,
        )

    @classmethod
    def from_response(
        cls,
        body: Mapping[str, Any],
        *,
        now: datetime,
        requested_scopes: tuple[str, ...] = (),
        keep: tuple[str, ...] = (),
        default_lifetime: float | None = None,
    ) -> TokenSet:
        """Parse a successful token response (RFC 6749 §5.1).

        Raises ``ValueError`` (with no value in the message) when ``access_token`` is missing or
        not a string; the grant layer turns that into a ``TokenRefreshFailed``.
        """
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise ValueError("the token response has no access_token")
        expires_in = body.get("expires_in")
        lifetime: float | None
        try:
            lifetime = float(expires_in) if expires_in is not None else default_lifetime
        except (TypeError, ValueError):
            lifetime = default_lifetime
        if lifetime is not None and lifetime <= 0:
            # ``expires_in: 0`` (Mailchimp) means "does not expire", as an absent one does.
            lifetime = default_lifetime if default_lifetime and default_lifetime > 0 else None
        scope = body.get("scope")
        if isinstance(scope, str) and scope.strip():
            scopes = tuple(s for s in scope.replace(",", " ").split() if s)
        elif isinstance(scope, list):
            scopes = tuple(str(s) for s in scope)
        else:
            scopes = requested_scopes
        refresh = body.get("refresh_token")
        id_token = body.get("id_token")
        kept = {name: _pick(body, name) for name in keep if _pick(body, name) is not None}
        return cls(
            access_token=token,
            token_type=str(body.get("token_type") or "Bearer"),
            issued_at=now,
            expires_at=None if lifetime is None else now + timedelta(seconds=lifetime),
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            scopes=scopes,
            kept=MappingProxyType(kept),
            id_token=id_token if isinstance(id_token, str) and id_token else None,
        )

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "v": 1,
                "access_token": self.access_token,
                "token_type": self.token_type,
                "issued_at": self.issued_at.isoformat(),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "refresh_token": self.refresh_token,
                "scopes": list(self.scopes),
                "kept": dict(self.kept),
                "id_token": self.id_token,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TokenSet:
        data = json.loads(raw)
        expires = data.get("expires_at")
        return cls(
            access_token=data["access_token"],
            token_type=data.get("token_type") or "Bearer",
            issued_at=datetime.fromisoformat(data["issued_at"]),
            expires_at=datetime.fromisoformat(expires) if expires else None,
            refresh_token=data.get("refresh_token"),
            scopes=tuple(data.get("scopes") or ()),
            kept=MappingProxyType(dict(data.get("kept") or {})),
            id_token=data.get("id_token"),
        )


def _pick(body: Mapping[str, Any], path: str) -> Any:
    """A response field by name, or a dotted path into nested objects (Slack's ``team.id``)."""
    value: Any = body
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if isinstance(value, (str, int, float, bool)):
        return value
    return None
