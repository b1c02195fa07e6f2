"""A Google service-account key file and a loopback token endpoint that checks its assertions.

The token endpoint implements the documented JWT bearer grant (RFC 7523, Google's "Using OAuth
2.0 for Server to Server Applications"): POST form ``grant_type=urn:ietf:params:oauth:grant-
type:jwt-bearer`` and ``assertion``; the assertion is RS256-signed by the key, ``iss`` is the
``client_email``, ``aud`` the ``token_uri``, ``scope`` the requested scopes, ``exp`` at most an
hour after ``iat``. A bad signature gets HTTP 400 ``{"error": "invalid_grant",
"error_description": "Invalid JWT Signature."}``, as Google answers.
"""

from __future__ import annotations

import functools
import json
import secrets
from dataclasses import dataclass, field

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from tests.connectors.provider_stub import Answer, Seen

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@functools.cache
def rsa_key(name: str) -> RSAKey:
    """One 2048-bit key per name for the whole run (generating one costs ~0.5 s)."""
    return RSAKey.generate_key(2048)


@dataclass
class GoogleAccount:
    """One service account: its key, and the access tokens the stub issued for it."""

    project_id: str = "acme-push"
    client_email: str = "pusher@acme-push.iam.gserviceaccount.com"
    key: RSAKey = field(default_factory=lambda: rsa_key("service-account"))
    issued: dict[str, str] = field(default_factory=dict)  # access token -> scope

    def key_file(self, token_uri: str, key: RSAKey | None = None) -> str:
        pem = (key or self.key).as_pem(private=True).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": self.project_id,
                "private_key_id": "kid-1",
                "private_key": pem,
                "client_email": self.client_email,
                "client_id": "1234567890",
                "token_uri": token_uri,
            }
        )

    def token_endpoint(self, seen: Seen, token_uri: str) -> Answer:
        form = seen.form()
        if seen.method != "POST" or form.get("grant_type") != [GRANT]:
            return Answer(400, {"error": "unsupported_grant_type"})
        try:
            token = jwt.decode(form["assertion"][0], self.key, algorithms=["RS256"])
        except (JoseError, KeyError, ValueError):
            return Answer(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
        claims = token.claims
        if (
            claims.get("iss") != self.client_email
            or claims.get("aud") != token_uri
            or claims["exp"] - claims["iat"] > 3600
        ):
            return Answer(400, {"error": "invalid_grant", "error_description": "Bad claims."})
        access = "ya29." + secrets.token_urlsafe(16)
        self.issued[access] = str(claims.get("scope", ""))
        return Answer(200, {"access_token": access, "expires_in": 3599, "token_type": "Bearer"})

    def scope_of(self, seen: Seen) -> str | None:
        """The scope of the bearer token on ``seen``, or None when the stub did not issue it."""
        header = seen.headers.get("authorization", "")
        return self.issued.get(header.removeprefix("Bearer "))


def google_error(status: int, code: str, message: str) -> Answer:
    """Google's documented error body."""
    return Answer(status, {"error": {"code": status, "message": message, "status": code}})
