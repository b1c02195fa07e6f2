"""What a resolve hands to a flow: ready-to-use request material, with secrets wrapped.

Every value derived from a secret is a :class:`~flowcred.redaction.Secret`, which prints as
``[secure]``; reaching the text takes an explicit ``reveal()``. Mappings are read-only because one
material object may be shared by every caller that hits the cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowcred.redaction import Secret


@dataclass(frozen=True, slots=True)
class CredentialMaterial:
    """Material for one credential version.

    ``headers``/``query``/``cookies`` are what to add to an HTTP request (values are ``Secret``);
    ``fields`` are the type's typed fields — non-secret config values as they are, secret values as
    ``Secret`` — for connector and channel types that do not speak HTTP. ``expires_at`` is when the
    material stops being valid, if known.

    >>> material = provider.resolve("stripe")                      # doctest: +SKIP
    >>> material.headers["X-API-Key"]                              # doctest: +SKIP
    [secure]
    >>> httpx.get(url, headers=material.reveal_headers())          # doctest: +SKIP
    """

    credential_id: int
    handle: str
    type: str
    version: int
    headers: Mapping[str, Secret]
    query: Mapping[str, Secret]
    cookies: Mapping[str, Secret]
    fields: Mapping[str, Any]
    expires_at: datetime | None

    def reveal_headers(self) -> dict[str, str]:
        return {k: v.reveal() for k, v in self.headers.items()}

    def reveal_query(self) -> dict[str, str]:
        return {k: v.reveal() for k, v in self.query.items()}

    def reveal_cookies(self) -> dict[str, str]:
        return {k: v.reveal() for k, v in self.cookies.items()}

    def reveal_fields(self) -> dict[str, Any]:
        return {k: (v.reveal() if isinstance(v, Secret) else v) for k, v in self.fields.items()}

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; secret values are ``"[secure]"`` unless ``reveal`` is true."""

        def show(value: Any) -> Any:
            if isinstance(value, Secret):
                return value.reveal() if reveal else "[secure]"
            return value

        return {
            "credentialId": self.credential_id,
            "handle": self.handle,
            "type": self.type,
            "version": self.version,
            "headers": {k: show(v) for k, v in self.headers.items()},
            "query": {k: show(v) for k, v in self.query.items()},
            "cookies": {k: show(v) for k, v in self.cookies.items()},
            "fields": {k: show(v) for k, v in self.fields.items()},
            "expiresAt": self.expires_at.isoformat() if self.expires_at else None,
        }
