"""The OAuth 2.0 authorization-code flow's front door: ``start`` builds the provider's URL,
``complete`` turns the provider's redirect into a stored token set.

:meth:`AuthorizationFlow.start` is called by an authenticated caller (``GET
/api/oauth/{id}/authorize``, ``flowcred oauth authorize``). It stores a one-time state
(:mod:`flowcred.store.oauth_states`: only its hash, the PKCE verifier and nonce sealed) and
answers the authorization URL with ``response_type=code``, ``client_id``, the exact
``redirect_uri``, the scopes, the state, a PKCE S256 challenge and, when ``openid`` is among the
scopes, a nonce.

:meth:`AuthorizationFlow.complete` is called by the callback, which carries no API key: the
state is the authority. It consumes the state atomically (a replay or a race gets nothing),
refuses a provider ``error``, exchanges the code through the injected ``exchange`` seam (the
GrantClient's ``exchange_code``) with the matching verifier and the same redirect URI, checks
the ID token through the injected ``validate_id_token`` seam when ``openid`` was requested, and
hands the token set to the injected ``on_tokens`` sink (``broker.tokens.authorized``), audited
as the actor who started the authorization.

Every refusal is an :class:`AuthorizationRefused` naming a reason code (never the state, the
code or a token) and leaves one ``token``/``authorized`` audit event with result ``denied`` or
``failure``; the success event is the sink's (it is written with the stored tokens).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, NoReturn
from urllib.parse import urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from flowcred.audit import Access, Actor
from flowcred.audit.events import CREDENTIAL, TOKEN, Result
from flowcred.audit.trail import failure_details, is_foreign
from flowcred.catalog.oauth_spec import OAuthSpec, fill
from flowcred.errors import (
    AccessDenied,
    CircuitOpen,
    FieldProblem,
    FlowcredError,
    InvalidCredential,
    TokenRefreshFailed,
)
from flowcred.records import Credential
from flowcred.references import DEFAULT_ENVIRONMENT
from flowcred.runtime.authorization_seams import (
    AuthorizationRefused,
    Caller,
    CompletedAuthorization,
    EndpointsLike,
    ExchangeCode,
    IdTokenCheck,
    TokenSink,
    _config_scopes,
    _origin_path,
    callback_url,
)
from flowcred.runtime.oauth2_grants import GrantClient, OAuthClient
from flowcred.runtime.provider import Ref
from flowcred.runtime.token_set import TokenSet
from flowcred.store.oauth_states import DEFAULT_TTL_SECONDS, OAuthStateStore

__all__ = [
    "AuthorizationFlow",
    "AuthorizationRefused",
    "CompletedAuthorization",
    "OAuthClient",
    "callback_url",
    "default_flow",
]

_OAUTH_ERROR_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")
_AUTH_METHODS: frozenset[str] = frozenset(
    {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
)


class AuthorizationFlow:
    """Start and complete authorization-code grants for credentials of OAuth types.

    ``broker`` is the open :class:`~flowcred.broker.Broker` (its store reads the client
    secret, its trail records refusals). ``exchange`` is ``GrantClient.exchange_code``,
    ``on_tokens`` is ``broker.tokens.authorized``, ``validate_id_token`` checks an ID token when
    ``openid`` was requested (without it such an authorization is refused), ``endpoints`` is
    ``GrantClient.endpoints`` (default: the spec's template, then the config's
    ``authorization_url`` / ``token_url``; no discovery). ``redirect_uri`` is the default
    callback URL (default: from ``broker.settings``); ``ttl`` the state lifetime in seconds.
    """

    def __init__(
        self,
        broker: Any,
        *,
        exchange: ExchangeCode | None,
        on_tokens: TokenSink | None,
        validate_id_token: IdTokenCheck | None = None,
        endpoints: Callable[[OAuthSpec, Mapping[str, Any]], EndpointsLike] | None = None,
        redirect_uri: str | None = None,
        ttl: float = DEFAULT_TTL_SECONDS,
        states: OAuthStateStore | None = None,
    ) -> None:
        self._broker = broker
        self._exchange = exchange
        self._on_tokens = on_tokens
        self._validate_id_token = validate_id_token
        self._endpoints = endpoints
        settings = broker.settings
        self.redirect_uri = redirect_uri or callback_url(
            settings.public_url, settings.host, settings.port
        )
        self.states = states or OAuthStateStore(
            broker.engine,
            ring=lambda: broker._rings.current,
            ring_for=broker._rings.covering,
            clock=broker.clock,
            ttl=ttl,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _spec(self, record: Credential) -> OAuthSpec:
        """The type's OAuthSpec (``CredentialType.oauth``), or one built for the generic
        ``oauth2`` type from its config (``authorization_url`` / ``token_url``)."""
        ctype = self._broker.catalog.get(record.type)
        spec: OAuthSpec | None = ctype.oauth
        if spec is None:
            if "authorization_url" in record.config and "token_url" in record.config:
                method = record.config.get("auth_method")
                return OAuthSpec(
                    grant="authorization_code",
                    auth_method=method if method in _AUTH_METHODS else "client_secret_basic",
                )
            raise InvalidCredential(
                [FieldProblem("type", "does not use the OAuth authorization-code grant")],
                type_name=record.type,
            )
        if spec.grant != "authorization_code":
            raise InvalidCredential(
                [FieldProblem("type", "does not use the OAuth authorization-code grant")],
                type_name=record.type,
            )
        return spec

    def uses_authorization_code(self, record: Credential) -> bool:
        """Whether :meth:`start` can authorize ``record`` at all: its type uses the
        authorization-code grant (or is the generic ``oauth2`` type with both URLs in its
        config). The same rule as ``start``, for a page deciding to offer Re-authorize."""
        try:
            self._spec(record)
        except InvalidCredential:
            return False
        return True

    def _urls(self, spec: OAuthSpec, config: Mapping[str, Any]) -> tuple[str | None, str | None]:
        if self._endpoints is not None:
            found = self._endpoints(spec, config)
            return found.authorization_url, found.token_url

        def one(template: str | None, name: str) -> str | None:
            if template:
                return fill(template, config, what=name.replace("_", " "))
            value = config.get(name)
            return str(value) if value else None

        return one(spec.authorization_url, "authorization_url"), one(spec.token_url, "token_url")

    def _scopes(self, spec: OAuthSpec, config: Mapping[str, Any]) -> tuple[str, ...]:
        return _config_scopes(config.get("scopes")) or spec.scopes

    def _client(self, record: Credential, spec: OAuthSpec) -> OAuthClient:
        """The OAuth client from config and the credential's current secret version."""
        raw = self._broker._store.read_secret(record.id)
        secret: dict[str, Any] = json.loads(raw)
        method = record.config.get("auth_method")
        client_id = record.config.get("client_id") or secret.get("client_id")
        if not client_id:
            raise InvalidCredential([FieldProblem("client_id", "is required")], type_name=None)
        return OAuthClient(
            client_id=str(client_id),
            client_secret=secret.get("client_secret"),
            auth_method=method if method in _AUTH_METHODS else spec.auth_method,
            private_key_pem=secret.get("private_key") or secret.get("private_key_pem"),
            key_id=record.config.get("key_id"),
        )

    def _audit(
        self,
        access: Access,
        action: str,
        result: Result,
        *,
        tenant: str | None,
        credential_id: int | str | None,
        details: Mapping[str, Any],
    ) -> None:
        self._broker.audit_event(
            access,
            TOKEN,
            action,
            result,
            tenant=tenant,
            resource_type=CREDENTIAL,
            resource_id=credential_id,
            details=details,
        )

    # -- start -----------------------------------------------------------------------------

    def start(
        self,
        credential_ref: Ref,
        *,
        caller: Caller,
        tenant: str | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        redirect_uri: str | None = None,
    ) -> str:
        """Begin an authorization for ``credential_ref`` and return the provider's URL.

        ``tenant`` restricts the lookup (a tenant key's own; ``None`` for a platform caller).
        ``redirect_uri`` overrides the callback (the CLI's loopback listener); the exchange uses
        exactly the same value. One audit event (``token``/``authorization_started``).
        """
        access = caller.access
        try:
            record = caller.credentials._find(credential_ref, tenant, environment)
            spec = self._spec(record)
            authorize_url, _token_url = self._urls(spec, record.config)
            if not authorize_url:
                raise InvalidCredential(
                    [FieldProblem("authorization_url", "is required")], type_name=record.type
                )
            client_id = record.config.get("client_id")
            if not client_id:
                raise InvalidCredential(
                    [FieldProblem("client_id", "is required")], type_name=record.type
                )
            scopes = self._scopes(spec, record.config)
            target = redirect_uri or str(record.config.get("redirect_uri") or self.redirect_uri)
            verifier = secrets.token_urlsafe(64)  # 86 characters, RFC 7636 §4.1 allows 43..128
            nonce = secrets.token_urlsafe(32) if "openid" in scopes else None
            state = self.states.create(
                credential_id=record.id,
                tenant=record.tenant,
                actor=access.actor,
                redirect_uri=target,
                code_verifier=verifier,
                nonce=nonce,
                scopes=scopes,
            )
        except FlowcredError as exc:
            denied = isinstance(exc, AccessDenied) or is_foreign(exc)
            self._audit(
                access,
                "authorization_started",
                "denied" if denied else "failure",
                tenant=tenant,
                credential_id=credential_ref
                if isinstance(credential_ref, int) or not is_foreign(exc)
                else None,
                details=failure_details(exc, "authorization_started"),
            )
            raise
        params: dict[str, str] = {
            "response_type": "code",
            "client_id": str(client_id),
            "redirect_uri": target,
            "state": state,
        }
        if scopes:
            params["scope"] = spec.scope_separator.join(scopes)
        if spec.pkce:
            params["code_challenge"] = create_s256_code_challenge(verifier)
            params["code_challenge_method"] = "S256"
        if nonce is not None:
            params["nonce"] = nonce
        for name, value in spec.authorize_params.items():
            params.setdefault(name, value)
        self._audit(
            access,
            "authorization_started",
            "success",
            tenant=record.tenant,
            credential_id=record.id,
            details={
                "scopes": list(scopes),
                "pkce": spec.pkce,
                "redirect_uri": _origin_path(target),
                "endpoint": _origin_path(authorize_url),
            },
        )
        separator = "&" if urlsplit(authorize_url).query else "?"
        return authorize_url + separator + urlencode(params)

    # -- complete --------------------------------------------------------------------------

    def complete(
        self,
        state: str | None,
        code: str | None = None,
        error: str | None = None,
        *,
        source: str | None = None,
    ) -> CompletedAuthorization:
        """Finish the authorization ``state`` names (the callback's query) or refuse it.

        ``source`` is the callback client's address, for the audit. The state is consumed
        before anything else is looked at, so even a refused callback cannot be replayed.
        Raises :class:`AuthorizationRefused` (audited) on every failure.
        """
        anonymous = Access(Actor("anonymous", "anonymous", ""), source)
        if not state:
            self._refuse(anonymous, "invalid_state", "denied", None, None, {"why": "missing"})
        assert state is not None
        found = self.states.consume(state)
        pending = found.pending
        if pending is None:
            access = anonymous if found.actor is None else Access(found.actor, source)
            self._refuse(
                access,
                "invalid_state",
                "denied",
                found.tenant,
                found.credential_id,
                {"why": found.refusal},
            )
        assert pending is not None
        access = Access(pending.actor, source)
        cid, tenant = pending.credential_id, pending.tenant
        if error is not None:
            oauth_error = error if _OAUTH_ERROR_RE.match(error) else "invalid"
            self._refuse(
                access,
                "provider_error",
                "failure",
                tenant,
                cid,
                {"oauth_error": oauth_error},
                oauth_error=oauth_error,
            )
        if not code:
            self._refuse(access, "missing_code", "failure", tenant, cid, {})
        assert code is not None
        record = self._broker.record_for(cid)
        if record is None or record.tenant != tenant:
            self._refuse(access, "credential_gone", "failure", tenant, cid, {})
        assert record is not None
        if self._exchange is None or self._on_tokens is None:
            self._refuse(access, "not_configured", "failure", tenant, cid, {})
        assert self._exchange is not None and self._on_tokens is not None
        try:
            spec = self._spec(record)
            _authorize_url, token_url = self._urls(spec, record.config)
            if not token_url:
                raise InvalidCredential(
                    [FieldProblem("token_url", "is required")], type_name=record.type
                )
            client = self._client(record, spec)
            tokens = self._exchange(
                token_url,
                client,
                code,
                redirect_uri=pending.redirect_uri,
                code_verifier=pending.code_verifier,
                keep=spec.keep,
                default_lifetime=spec.default_lifetime_seconds,
            )
        except (TokenRefreshFailed, CircuitOpen, InvalidCredential) as exc:
            details = failure_details(exc, "authorized")
            self._refuse(
                access,
                "exchange_failed",
                "failure",
                tenant,
                cid,
                details,
                oauth_error=getattr(exc, "oauth_error", None),
            )
        if pending.nonce is not None:
            self._check_id_token(access, record, spec, client, tokens, pending.nonce)
        self._on_tokens(cid, tenant, tokens, access=access)
        return CompletedAuthorization(
            credential_id=cid,
            tenant=tenant,
            actor=pending.actor,
            scopes=tokens.scopes or pending.scopes,
            expires_at=tokens.expires_at,
            has_refresh_token=tokens.refresh_token is not None,
        )

    def _check_id_token(
        self,
        access: Access,
        record: Credential,
        spec: OAuthSpec,
        client: OAuthClient,
        tokens: TokenSet,
        nonce: str,
    ) -> None:
        cid, tenant = record.id, record.tenant
        if tokens.id_token is None:
            self._refuse(access, "id_token_invalid", "failure", tenant, cid, {"why": "missing"})
        if self._validate_id_token is None:
            self._refuse(access, "id_token_invalid", "failure", tenant, cid, {"why": "unchecked"})
        assert tokens.id_token is not None and self._validate_id_token is not None
        try:
            self._validate_id_token(
                tokens.id_token,
                credential=record,
                spec=spec,
                client_id=client.client_id,
                nonce=nonce,
            )
        except (TokenRefreshFailed, CircuitOpen) as exc:
            self._refuse(
                access,
                "id_token_invalid",
                "failure",
                tenant,
                cid,
                failure_details(exc, "authorized"),
            )

    def _refuse(
        self,
        access: Access,
        reason: str,
        result: Result,
        tenant: str | None,
        credential_id: int | None,
        details: Mapping[str, Any],
        *,
        oauth_error: str | None = None,
    ) -> NoReturn:
        """Audit a refused completion and raise :class:`AuthorizationRefused` (never returns)."""
        message = {
            "invalid_state": "the authorization state is unknown, expired or already used",
            "provider_error": "the provider refused the authorization",
            "missing_code": "the callback carries no authorization code",
            "credential_gone": "the credential of this authorization no longer exists",
            "not_configured": "this server cannot complete OAuth authorizations",
            "exchange_failed": "the authorization code could not be exchanged for tokens",
            "id_token_invalid": "the provider's ID token is missing or not valid",
        }[reason]
        self._audit(
            access,
            "authorized",
            result,
            tenant=tenant,
            credential_id=credential_id,
            details={"reason": reason, "initiated_by": access.actor.to_dict(), **details},
        )
        raise AuthorizationRefused(reason, message, oauth_error=oauth_error)


def default_flow(broker: Any) -> AuthorizationFlow:
    """The broker's authorization flow: ``broker.oauth_flow`` when the broker provides one
    (token manager and GrantClient wired by the lead), else one that can start authorizations
    and refuses to complete them (``not_configured``) until an exchange seam is wired."""
    flow: AuthorizationFlow | None = getattr(broker, "oauth_flow", None)
    if flow is not None:
        return flow
    tokens = getattr(broker, "tokens", None)
    return AuthorizationFlow(broker, exchange=None, on_tokens=getattr(tokens, "authorized", None))


def wired_flow(broker: Any, grants: GrantClient, on_tokens: TokenSink) -> AuthorizationFlow:
    """The broker's flow: code exchange, endpoints and ID-token checks by ``grants`` (with
    discovery), tokens stored by ``on_tokens`` (the token manager)."""

    def check_id_token(
        id_token: str, *, credential: Credential, spec: OAuthSpec, client_id: str, nonce: str
    ) -> Mapping[str, Any]:
        endpoints = grants.endpoints(spec, credential.config)
        if not endpoints.issuer or not endpoints.jwks_uri:
            raise TokenRefreshFailed(
                "the provider's issuer and JWKS are unknown, so its ID token cannot be checked",
                permanent=True,
            )
        return grants.validate_id_token(
            id_token,
            issuer=endpoints.issuer,
            jwks_uri=endpoints.jwks_uri,
            client_id=client_id,
            nonce=nonce,
        )

    return AuthorizationFlow(
        broker,
        exchange=grants.exchange_code,
        on_tokens=on_tokens,
        validate_id_token=check_id_token,
        endpoints=grants.endpoints,
    )
