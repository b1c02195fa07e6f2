"""Which token request a credential makes, built from its type's ``oauth`` block and its config.

The token manager decides *when* to ask for a token; this module decides *what* to ask: the
grant (client credentials, password, JWT bearer, or a refresh of a held refresh token), the
client authentication, scopes, audience and extra parameters, and the response fields to keep.
It reads the credential's stored secrets (client secret, password, service-account key) and
passes them to :class:`~flowcred.runtime.oauth2_grants.GrantClient`; none of them leaves here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowcred.catalog.oauth_spec import OAuthSpec
from flowcred.errors import TokenRefreshFailed
from flowcred.runtime.oauth2_grants import GrantClient, OAuthClient
from flowcred.runtime.token_set import TokenSet


@dataclass(frozen=True, slots=True, repr=False)
class GrantInputs:
    """A credential's grant inputs at one moment: its config and its current secret."""

    spec: OAuthSpec
    config: Mapping[str, Any]
    secret: Mapping[str, Any]

    def __repr__(self) -> str:
        return f"GrantInputs(grant={self.spec.grant!r})"

    @property
    def scopes(self) -> tuple[str, ...]:
        configured = self.config.get("scopes")
        if isinstance(configured, (list, tuple)) and configured:
            return tuple(str(s) for s in configured)
        if isinstance(configured, str) and configured.strip():
            return tuple(configured.replace(",", " ").split())
        return tuple(self.spec.scopes)

    @property
    def cache_block(self) -> Mapping[str, Any]:
        """Flowker's ``cache`` block (``refresh_before_expiry_seconds``, ``use_refresh_token``)."""
        block = self.config.get("cache")
        return block if isinstance(block, Mapping) else {}

    @property
    def margin_override(self) -> float | None:
        for value in (
            self.config.get("refresh_margin_seconds"),
            self.cache_block.get("refresh_before_expiry_seconds"),
            self.spec.refresh_margin_seconds,
        ):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                return float(value)
        return None

    @property
    def use_refresh_token(self) -> bool:
        value = self.cache_block.get("use_refresh_token", True)
        return value is not False

    def client(self) -> OAuthClient:
        client_id = self.config.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise TokenRefreshFailed(
                "the credential has no client_id; set it with 'flowcred credentials edit'",
                permanent=True,
            )
        secret = self.secret.get("client_secret")
        key = self.secret.get("private_key")
        method = self.config.get("auth_method") or self.spec.auth_method
        return OAuthClient(
            client_id=client_id,
            client_secret=secret if isinstance(secret, str) and secret else None,
            auth_method=method,
            private_key_pem=key if isinstance(key, str) and key else None,
            key_id=self.config.get("key_id") or None,
        )

    def extra_params(self) -> dict[str, str] | None:
        extra = self.config.get("extra_params")
        if isinstance(extra, Mapping) and extra:
            return {str(k): str(v) for k, v in extra.items()}
        return None


def fetch(
    grants: GrantClient,
    inputs: GrantInputs,
    *,
    refresh_token: str | None,
) -> tuple[TokenSet, str]:
    """Ask the token endpoint for a new token set; returns it and the grant used.

    A held refresh token is used first (for every grant that has one, unless Flowker's
    ``use_refresh_token`` is false); an ``invalid_grant`` on it falls back to the credential's
    own grant where that grant needs no person (client credentials, password, JWT bearer), and
    is raised as it is for an authorization-code grant, which only a re-authorisation can mend.
    """
    spec = inputs.spec
    keep = tuple(spec.keep)
    lifetime = spec.default_lifetime_seconds
    if spec.grant == "jwt_bearer":
        return grants.jwt_bearer(
            _key_file(inputs.secret),
            scopes=inputs.scopes,
            subject=inputs.config.get("subject") or None,
            keep=keep,
            default_lifetime=lifetime,
        ), "jwt_bearer"
    endpoints = grants.endpoints(spec, inputs.config)
    client = inputs.client()
    if refresh_token and inputs.use_refresh_token:
        try:
            fresh = grants.refresh(
                endpoints.token_url,
                client,
                refresh_token,
                scopes=(),
                extra_params=inputs.extra_params(),
                keep=keep,
                default_lifetime=lifetime,
            )
            return fresh.with_refresh_token(refresh_token), "refresh_token"
        except TokenRefreshFailed as exc:
            if spec.grant == "authorization_code" or exc.oauth_error != "invalid_grant":
                raise
    if spec.grant == "authorization_code":
        raise TokenRefreshFailed(
            "the credential is not authorised yet (or its grant was revoked); "
            "run 'flowcred oauth authorize' to authorise it",
            permanent=True,
            reauthorize=True,
        )
    audience = inputs.config.get("audience") or None
    if spec.grant == "password":
        username = inputs.config.get("username")
        password = inputs.secret.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise TokenRefreshFailed(
                "the credential needs a username and a password for the password grant",
                permanent=True,
            )
        return grants.password(
            endpoints.token_url,
            client,
            username,
            password,
            scopes=inputs.scopes,
            audience=audience,
            extra_params=inputs.extra_params(),
            keep=keep,
            default_lifetime=lifetime,
        ), "password"
    return grants.client_credentials(
        endpoints.token_url,
        client,
        scopes=inputs.scopes,
        audience=audience,
        extra_params=inputs.extra_params(),
        keep=keep,
        default_lifetime=lifetime,
    ), "client_credentials"


def _key_file(secret: Mapping[str, Any]) -> Mapping[str, Any]:
    raw = secret.get("service_account_json")
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            return parsed
    raise TokenRefreshFailed(
        "the credential's service_account_json is not a service-account key object",
        permanent=True,
    )
