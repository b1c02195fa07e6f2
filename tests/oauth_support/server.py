"""An in-memory OAuth 2.0 authorization server for tests, served over real HTTP on 127.0.0.1.

Why hand-written grant handling on Flask (with Authlib's PKCE helper and joserfc for JWTs)
instead of Authlib's grant classes: the tests need behaviour Authlib's grants do not offer
(refresh-token grace intervals, reuse detection revoking a family, per-request fault
injection, counting every request including refused ones). The protocol on the wire is
standard: RFC 6749 token/authorize endpoints, RFC 7636 PKCE (S256 only), RFC 7523 jwt-bearer
grant and private_key_jwt client authentication, OIDC ID tokens (RS256) with discovery + JWKS.

Contract: all state lives in memory behind one lock; every token-endpoint request is counted
(``total`` and per ``grant_type``) before faults and delays are applied, so a test can count
retries. Secrets are never logged (werkzeug's request log is silenced).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
import warnings
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import flask
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws, jwt
from joserfc.jwk import ECKey, RSAKey
from werkzeug.serving import BaseWSGIServer, make_server

logging.getLogger("werkzeug").setLevel(logging.ERROR)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
FaultKind = Literal[
    "5xx", "hang", "429", "invalid_grant", "invalid_client", "late_invalid_grant", "slow_success"
]
RefreshMode = Literal["strict", "grace", "static"]
ALL_GRANTS = ("authorization_code", "client_credentials", "refresh_token", "password", JWT_BEARER)


def _import_public_key(key: Any) -> RSAKey | ECKey:
    """Accept a JWK dict, a PEM (str/bytes) or a joserfc key; RSA or EC."""
    if isinstance(key, RSAKey | ECKey):
        return key
    if isinstance(key, str):
        key = key.encode()
    if isinstance(key, Mapping):
        kty = key.get("kty")
        return RSAKey.import_key(dict(key)) if kty == "RSA" else ECKey.import_key(dict(key))
    try:
        return RSAKey.import_key(key)
    except Exception:
        return ECKey.import_key(key)


def _unverified_iss(assertion: str) -> str:
    """The ``iss`` claim before verification: only to pick the key that verifies it."""
    payload = json.loads(jws.extract_compact(assertion.encode()).payload)
    iss = payload.get("iss", "")
    return iss if isinstance(iss, str) else ""


@dataclass
class RegisteredClient:
    """A client as the server knows it; ``auth_method`` is the only accepted authentication."""

    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    auth_method: AuthMethod
    public_key: RSAKey | ECKey | None
    scope: str | None = None

    def __repr__(self) -> str:  # never the secret
        return f"RegisteredClient(client_id={self.client_id!r}, auth_method={self.auth_method!r})"


@dataclass
class Fault:
    """One queued fault: applies to the next ``count`` token requests."""

    kind: FaultKind
    count: int = 1
    status: int = 503
    seconds: float = 5.0
    retry_after: int | str = 1


class _OAuthError(Exception):
    def __init__(self, error: str, status: int = 400, description: str = "") -> None:
        super().__init__(error)
        self.error, self.status, self.description = error, status, description


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    nonce: str | None
    subject: str


@dataclass
class _Access:
    client_id: str
    subject: str
    scope: str
    expires_at: float | None
    family: str | None


@dataclass
class _Refresh:
    family: str
    client_id: str
    subject: str
    scope: str
    rotated_at: float | None = None


@dataclass
class _Family:
    access_token: str = ""
    refresh_token: str = ""
    revoked: bool = False
    tokens: list[str] = field(default_factory=list)


class AuthzServer:
    """The authorization server. Configure by constructor args or by setting attributes later.

    Attributes tests may set at any time: ``access_token_lifetime`` (int seconds or None to omit
    ``expires_in``), ``include_scope``, ``extra_fields``, ``refresh_mode``, ``grace_seconds``,
    ``issue_refresh_token``, ``delay``, ``openid``, ``require_pkce``.
    """

    def __init__(
        self,
        *,
        access_token_lifetime: int | None = 3600,
        include_scope: bool = True,
        extra_fields: Mapping[str, Any] | None = None,
        refresh_mode: RefreshMode = "strict",
        grace_seconds: float = 0.0,
        issue_refresh_token: bool = True,
        user: str = "alice",
        users: Mapping[str, str] | None = None,
        delay: float = 0.0,
        openid: bool = True,
        require_pkce: bool = True,
        id_token_claims: Mapping[str, Any] | None = None,
    ) -> None:
        self.access_token_lifetime = access_token_lifetime
        self.include_scope = include_scope
        self.extra_fields: dict[str, Any] = dict(extra_fields or {})
        self.refresh_mode: RefreshMode = refresh_mode
        self.grace_seconds = grace_seconds
        self.issue_refresh_token = issue_refresh_token
        self.user = user
        self.users: dict[str, str] = dict(users or {"alice": "wonderland"})
        self.delay = delay
        self.openid = openid
        self.require_pkce = require_pkce
        self.id_token_claims: dict[str, Any] = dict(id_token_claims or {})
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._offset = 0.0
        self._clients: dict[str, RegisteredClient] = {}
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._families: dict[str, _Family] = {}
        self._faults: deque[Fault] = deque()
        self._counts: Counter[str] = Counter()
        self._jti_seen: set[str] = set()
        self.signing_key = RSAKey.generate_key(2048, parameters={"kid": "authz-1"})
        self.app = self._build_app()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ---------------------------------------------------------------- lifecycle
    def start(self, port: int = 0) -> AuthzServer:
        """Bind 127.0.0.1:``port`` (0 = free port) and serve in a daemon thread."""
        self._server = make_server("127.0.0.1", port, self.app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests, stop serving and close the socket."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> AuthzServer:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/authorize"

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/jwks"

    @property
    def resource_url(self) -> str:
        return self.base_url + "/resource"

    @property
    def discovery_url(self) -> str:
        return self.base_url + "/.well-known/openid-configuration"

    # ---------------------------------------------------------------- test API
    def now(self) -> float:
        """Server clock: wall time plus :meth:`advance` offsets (JWT exp checks use it too)."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the server clock forward (token expiry, grace interval) without sleeping."""
        with self._lock:
            self._offset += seconds

    def register_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        *,
        redirect_uris: Sequence[str] = (),
        grant_types: Sequence[str] = ALL_GRANTS,
        auth_method: AuthMethod | None = None,
        public_key: Any = None,
        scope: str | None = None,
    ) -> RegisteredClient:
        """Register (or replace) a client. ``auth_method`` defaults to client_secret_basic with
        a secret, private_key_jwt with a ``public_key`` (JWK dict / PEM), else none (public)."""
        if auth_method is None:
            if public_key is not None:
                auth_method = "private_key_jwt"
            elif client_secret is not None:
                auth_method = "client_secret_basic"
            else:
                auth_method = "none"
        client = RegisteredClient(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uris=tuple(redirect_uris),
            grant_types=tuple(grant_types),
            auth_method=auth_method,
            public_key=_import_public_key(public_key) if public_key is not None else None,
            scope=scope,
        )
        with self._lock:
            self._clients[client_id] = client
        return client

    def register_service_account(
        self,
        *,
        project_id: str = "test-project",
        client_email: str | None = None,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        """Generate an RSA key; register it for the jwt-bearer grant (and private_key_jwt)
        under ``client_email``; return a Google-style service-account key file dict."""
        key = RSAKey.generate_key(2048)
        key_id = secrets.token_hex(20)
        email = client_email or f"sa-{secrets.token_hex(4)}@{project_id}.iam.gserviceaccount.com"
        numeric_id = client_id or str(secrets.randbelow(10**20))
        self.register_client(
            email,
            grant_types=(JWT_BEARER,),
            auth_method="private_key_jwt",
            public_key=key.as_dict(private=False),
        )
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": key_id,
            "private_key": key.as_pem(private=True).decode(),
            "client_email": email,
            "client_id": numeric_id,
            "auth_uri": self.authorize_url,
            "token_uri": self.token_url,
        }

    def inject_fault(
        self,
        kind: FaultKind,
        count: int = 1,
        *,
        status: int = 503,
        seconds: float = 5.0,
        retry_after: int | str = 1,
    ) -> None:
        """Queue a fault for the next ``count`` token requests (faults apply in FIFO order).

        5xx: answer ``status``; hang: hold the request ``seconds`` (released at stop) then 503;
        429: with ``Retry-After: retry_after``; invalid_grant: 400; invalid_client: 401;
        late_invalid_grant: hold ``seconds``, then 400 invalid_grant; slow_success: grant the
        request (a refresh token rotates), then hold the answer ``seconds``."""
        with self._lock:
            self._faults.append(
                Fault(kind, count, status=status, seconds=seconds, retry_after=retry_after)
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def counts(self) -> dict[str, int]:
        """Token requests so far: ``total`` plus one key per grant_type seen (also refused)."""
        with self._lock:
            return {"total": 0, **dict(self._counts)}

    def count(self, grant_type: str = "total") -> int:
        with self._lock:
            return self._counts.get(grant_type, 0)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    def is_valid(self, access_token: str) -> bool:
        """True for an issued, unexpired access token whose grant family is not revoked."""
        with self._lock:
            rec = self._access.get(access_token)
            if rec is None:
                return False
            if rec.family is not None and self._families[rec.family].revoked:
                return False
            return rec.expires_at is None or rec.expires_at > self.now()

    def revoke(self, token: str) -> None:
        """Revoke an access or refresh token (a refresh token takes its whole family)."""
        with self._lock:
            self._access.pop(token, None)
            rec = self._refresh.get(token)
            if rec is not None:
                self._families[rec.family].revoked = True

    # ---------------------------------------------------------------- issuing
    def _issue(
        self,
        client_id: str,
        subject: str,
        scope: str,
        *,
        refresh: bool,
        family: str | None = None,
        nonce: str | None = None,
        id_token: bool = False,
    ) -> dict[str, Any]:
        with self._lock:
            lifetime = self.access_token_lifetime
            token = "at-" + secrets.token_urlsafe(24)
            if refresh and family is None:
                family = secrets.token_hex(8)
                self._families[family] = _Family()
            expires_at = self.now() + lifetime if lifetime is not None else None
            self._access[token] = _Access(client_id, subject, scope, expires_at, family)
            body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
            if lifetime is not None:
                body["expires_in"] = lifetime
            if self.include_scope and scope:
                body["scope"] = scope
            if refresh and family is not None:
                rt = "rt-" + secrets.token_urlsafe(24)
                self._refresh[rt] = _Refresh(family, client_id, subject, scope)
                fam = self._families[family]
                fam.access_token, fam.refresh_token = token, rt
                fam.tokens.append(token)
                body["refresh_token"] = rt
            if id_token and self.openid and "openid" in scope.split():
                body["id_token"] = self.make_id_token(client_id, subject, nonce=nonce)
            body.update(self.extra_fields)
            return body

    def make_id_token(
        self, audience: str, subject: str, *, nonce: str | None = None, **claims: Any
    ) -> str:
        """An RS256 ID token signed with the server key (iss, aud, sub, iat, exp, nonce)."""
        now = int(self.now())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + 300,
            **self.id_token_claims,
            **claims,
        }
        if nonce is not None:
            payload["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": "authz-1"}, payload, self.signing_key)

    # ---------------------------------------------------------------- verification
    def _verify_assertion(self, assertion: str, key: RSAKey | ECKey, *, issuer: str) -> Any:
        try:
            tok = jwt.decode(assertion, key, algorithms=["RS256", "ES256"])
        except Exception as exc:
            raise _OAuthError("invalid_grant", description="assertion signature") from exc
        claims = tok.claims
        now = self.now()
        if claims.get("iss") != issuer:
            raise _OAuthError("invalid_grant", description="assertion iss")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not {self.token_url, self.issuer, self.issuer + "/"} & set(auds):
            raise _OAuthError("invalid_grant", description="assertion aud")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= now:
            raise _OAuthError("invalid_grant", description="assertion exp")
        return claims

    def _authenticate(self, form: Mapping[str, str], grant_type: str) -> RegisteredClient | None:
        """Resolve the client by the method it used; None only for jwt-bearer without one."""
        auth = flask.request.authorization
        with self._lock:
            clients = dict(self._clients)
        if auth is not None and auth.type == "basic":
            client = clients.get(auth.username or "")
            if (
                client is None
                or client.auth_method != "client_secret_basic"
                or not secrets.compare_digest(client.client_secret or "", auth.password or "")
            ):
                raise _OAuthError("invalid_client", 401)
            return client
        if form.get("client_assertion_type") == CLIENT_ASSERTION_TYPE:
            assertion = form.get("client_assertion", "")
            try:
                iss = _unverified_iss(assertion)
            except Exception as exc:
                raise _OAuthError("invalid_client", 401) from exc
            client = clients.get(form.get("client_id") or iss)
            if client is None or client.auth_method != "private_key_jwt" or not client.public_key:
                raise _OAuthError("invalid_client", 401)
            try:
                claims = self._verify_assertion(
                    assertion, client.public_key, issuer=client.client_id
                )
            except _OAuthError as exc:
                raise _OAuthError("invalid_client", 401) from exc
            if claims.get("sub") != client.client_id:
                raise _OAuthError("invalid_client", 401)
            return client
        client_id = form.get("client_id")
        if client_id is None:
            if grant_type == JWT_BEARER:
                return None
            raise _OAuthError("invalid_client", 401)
        client = clients.get(client_id)
        if client is None:
            raise _OAuthError("invalid_client", 401)
        if "client_secret" in form:
            if client.auth_method != "client_secret_post" or not secrets.compare_digest(
                client.client_secret or "", form["client_secret"]
            ):
                raise _OAuthError("invalid_client", 401)
            return client
        if client.auth_method != "none":
            raise _OAuthError("invalid_client", 401)
        return client

    # ---------------------------------------------------------------- grants
    def _grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        if grant_type not in ALL_GRANTS:
            raise _OAuthError("unsupported_grant_type")
        client = self._authenticate(form, grant_type)
        if client is not None and grant_type not in client.grant_types:
            raise _OAuthError("unauthorized_client")
        refresh_ok = self.issue_refresh_token and (
            client is not None and "refresh_token" in client.grant_types
        )
        if grant_type == "client_credentials":
            assert client is not None
            scope = form.get("scope", client.scope or "")
            return self._issue(client.client_id, client.client_id, scope, refresh=False)
        if grant_type == "password":
            assert client is not None
            username, password = form.get("username", ""), form.get("password", "")
            if not secrets.compare_digest(self.users.get(username, "\0"), password):
                raise _OAuthError("invalid_grant")
            return self._issue(
                client.client_id, username, form.get("scope", ""), refresh=refresh_ok
            )
        if grant_type == "authorization_code":
            assert client is not None
            with self._lock:
                code = self._codes.pop(form.get("code", ""), None)
            if code is None or code.client_id != client.client_id:
                raise _OAuthError("invalid_grant")
            if form.get("redirect_uri", code.redirect_uri) != code.redirect_uri:
                raise _OAuthError("invalid_grant", description="redirect_uri")
            if code.challenge:
                verifier = form.get("code_verifier")
                if not verifier or create_s256_code_challenge(verifier) != code.challenge:
                    raise _OAuthError("invalid_grant", description="code_verifier")
            return self._issue(
                client.client_id,
                code.subject,
                code.scope,
                refresh=refresh_ok,
                nonce=code.nonce,
                id_token=True,
            )
        if grant_type == "refresh_token":
            assert client is not None
            return self._refresh_grant(client, form.get("refresh_token", ""))
        return self._jwt_bearer(client, form)

    def _refresh_grant(self, client: RegisteredClient, token: str) -> dict[str, Any]:
        with self._lock:
            rec = self._refresh.get(token)
            if rec is None or rec.client_id != client.client_id:
                raise _OAuthError("invalid_grant")
            fam = self._families[rec.family]
            if fam.revoked:
                raise _OAuthError("invalid_grant")
            if self.refresh_mode == "static":
                body = self._issue(rec.client_id, rec.subject, rec.scope, refresh=False)
                self._access[body["access_token"]].family = rec.family
                return body
            if rec.rotated_at is not None:
                if (
                    self.refresh_mode == "grace"
                    and self.now() - rec.rotated_at <= self.grace_seconds
                ):
                    return self._current_pair(rec.family)
                fam.revoked = True  # reuse of a rotated token: the whole family is revoked
                raise _OAuthError("invalid_grant", description="refresh token reuse")
            rec.rotated_at = self.now()
            return self._issue(
                rec.client_id, rec.subject, rec.scope, refresh=True, family=rec.family
            )

    def _current_pair(self, family: str) -> dict[str, Any]:
        fam = self._families[family]
        acc = self._access[fam.access_token]
        body: dict[str, Any] = {
            "access_token": fam.access_token,
            "token_type": "Bearer",
            "refresh_token": fam.refresh_token,
        }
        if acc.expires_at is not None:
            body["expires_in"] = max(0, int(acc.expires_at - self.now()))
        if self.include_scope and acc.scope:
            body["scope"] = acc.scope
        body.update(self.extra_fields)
        return body

    def _jwt_bearer(
        self, client: RegisteredClient | None, form: Mapping[str, str]
    ) -> dict[str, Any]:
        assertion = form.get("assertion", "")
        try:
            iss = _unverified_iss(assertion)
        except Exception as exc:
            raise _OAuthError("invalid_grant", description="assertion") from exc
        with self._lock:
            issuer_client = self._clients.get(iss)
        if issuer_client is None or issuer_client.public_key is None:
            raise _OAuthError("invalid_grant", description="assertion iss")
        claims = self._verify_assertion(assertion, issuer_client.public_key, issuer=iss)
        subject = claims.get("sub") or iss
        scope = form.get("scope") or claims.get("scope") or ""
        owner = client.client_id if client is not None else iss
        return self._issue(owner, subject, scope, refresh=False)

    # ---------------------------------------------------------------- HTTP
    def _take_fault(self) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.count -= 1
            if fault.count <= 0:
                self._faults.popleft()
            return fault

    def _apply_fault(self, fault: Fault) -> flask.Response:
        def err(error: str, status: int) -> flask.Response:
            resp = flask.jsonify(error=error)
            resp.status_code = status
            return resp

        if fault.kind == "hang":
            self._stopping.wait(fault.seconds)
            return err("temporarily_unavailable", 503)
        if fault.kind == "429":
            resp = err("slow_down", 429)
            resp.headers["Retry-After"] = str(fault.retry_after)
            return resp
        if fault.kind == "invalid_grant":
            return err("invalid_grant", 400)
        if fault.kind == "late_invalid_grant":
            # Hold the request, then refuse it: lets another client's refresh finish first.
            self._stopping.wait(fault.seconds)
            return err("invalid_grant", 400)
        if fault.kind == "invalid_client":
            return err("invalid_client", 401)
        return err("server_error", fault.status)

    def _build_app(self) -> flask.Flask:
        app = flask.Flask("flowcred_test_authz")
        server = self

        def no_store(resp: flask.Response) -> flask.Response:
            resp.headers["Cache-Control"] = "no-store"
            return resp

        @app.post("/token")
        def token() -> flask.Response:
            form = flask.request.form.to_dict()
            with server._lock:
                server._counts["total"] += 1
                server._counts[form.get("grant_type", "")] += 1
            if server.delay:
                server._stopping.wait(server.delay)
            fault = server._take_fault()
            if fault is not None and fault.kind != "slow_success":
                return no_store(server._apply_fault(fault))
            try:
                body = server._grant(form)
            except _OAuthError as exc:
                payload = {"error": exc.error}
                if exc.description:
                    payload["error_description"] = exc.description
                resp = flask.jsonify(payload)
                resp.status_code = exc.status
                if exc.status == 401:
                    resp.headers["WWW-Authenticate"] = 'Basic realm="token"'
                return no_store(resp)
            if fault is not None:
                # slow_success: the grant took effect (a refresh token rotated) but the answer
                # is held, so the client can be killed before it stores the new pair.
                server._stopping.wait(fault.seconds)
            return no_store(flask.jsonify(body))

        @app.get("/authorize")
        def authorize() -> flask.Response:
            args = flask.request.args
            with server._lock:
                client = server._clients.get(args.get("client_id", ""))
            if client is None:
                return flask.Response("unknown client", status=400)
            redirect_uri = args.get("redirect_uri")
            if redirect_uri is None and len(client.redirect_uris) == 1:
                redirect_uri = client.redirect_uris[0]
            if redirect_uri not in client.redirect_uris:
                return flask.Response("redirect_uri mismatch", status=400)
            assert redirect_uri is not None
            state = args.get("state")

            def back(params: dict[str, str]) -> flask.Response:
                if state is not None:
                    params["state"] = state
                sep = "&" if "?" in redirect_uri else "?"
                resp = flask.Response(status=302)
                resp.headers["Location"] = redirect_uri + sep + urlencode(params)
                return resp

            if args.get("response_type") != "code":
                return back({"error": "unsupported_response_type"})
            challenge = args.get("code_challenge", "")
            method = args.get("code_challenge_method", "plain" if challenge else "")
            if challenge and method != "S256":
                return back({"error": "invalid_request", "error_description": "S256 only"})
            if server.require_pkce and not challenge:
                return back({"error": "invalid_request", "error_description": "PKCE required"})
            code = secrets.token_urlsafe(24)
            with server._lock:
                server._codes[code] = _Code(
                    client.client_id,
                    redirect_uri,
                    challenge,
                    args.get("scope", ""),
                    args.get("nonce"),
                    server.user,
                )
            return back({"code": code, "iss": server.issuer})

        @app.get("/resource")
        def resource() -> flask.Response:
            auth = flask.request.headers.get("Authorization", "")
            scheme, _, token_value = auth.partition(" ")
            if scheme.lower() == "bearer" and server.is_valid(token_value.strip()):
                with server._lock:
                    rec = server._access[token_value.strip()]
                return flask.jsonify(sub=rec.subject, client_id=rec.client_id, scope=rec.scope)
            resp = flask.jsonify(error="invalid_token")
            resp.status_code = 401
            resp.headers["WWW-Authenticate"] = 'Bearer realm="resource", error="invalid_token"'
            return resp

        @app.get("/.well-known/openid-configuration")
        @app.get("/.well-known/oauth-authorization-server")
        def discovery() -> flask.Response:
            if not server.openid:
                return flask.Response(status=404)
            return flask.jsonify(
                issuer=server.issuer,
                authorization_endpoint=server.authorize_url,
                token_endpoint=server.token_url,
                jwks_uri=server.jwks_url,
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                code_challenge_methods_supported=["S256"],
                grant_types_supported=list(ALL_GRANTS),
                token_endpoint_auth_methods_supported=[
                    "client_secret_basic",
                    "client_secret_post",
                    "private_key_jwt",
                    "none",
                ],
            )

        @app.get("/jwks")
        def jwks() -> flask.Response:
            if not server.openid:
                return flask.Response(status=404)
            return flask.jsonify(keys=[server.signing_key.as_dict(private=False)])

        @app.get("/_counts")
        def get_counts() -> flask.Response:
            return flask.jsonify(server.counts())

        @app.delete("/_counts")
        def del_counts() -> flask.Response:
            server.reset_counts()
            return flask.Response(status=204)

        @app.post("/_faults")
        def post_faults() -> flask.Response:
            data = flask.request.get_json(force=True)
            if "delay" in data:
                server.delay = float(data["delay"])
            if data.get("clear"):
                server.clear_faults()
            if "kind" in data:
                server.inject_fault(
                    data["kind"],
                    int(data.get("count", 1)),
                    status=int(data.get("status", 503)),
                    seconds=float(data.get("seconds", 5.0)),
                    retry_after=data.get("retry_after", 1),
                )
            return flask.Response(status=204)

        @app.post("/_clients")
        def post_clients() -> flask.Response:
            data = flask.request.get_json(force=True)
            server.register_client(
                data["client_id"],
                data.get("client_secret"),
                redirect_uris=data.get("redirect_uris", ()),
                grant_types=data.get("grant_types", ALL_GRANTS),
                auth_method=data.get("auth_method"),
                public_key=data.get("public_key"),
                scope=data.get("scope"),
            )
            return flask.Response(status=204)

        @app.post("/_service_accounts")
        def post_service_account() -> flask.Response:
            return flask.jsonify(server.register_service_account())

        return app


def basic_auth_header(client_id: str, secret: str) -> str:
    """``Basic`` header value for client_secret_basic (RFC 6749 2.3.1 form-encoding skipped:
    test ids/secrets are URL-safe)."""
    raw = f"{client_id}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@contextmanager
def run_oidc_provider(
    *,
    require_client_registration: bool = False,
    require_nonce: bool = False,
    issue_refresh_token: bool = True,
    access_token_max_age: timedelta = timedelta(hours=1),
    user_claims: Sequence[Any] = (),
) -> Iterator[str]:
    """Run oidc-provider-mock on 127.0.0.1 (free port) in a thread; yield its issuer URL
    (``http://127.0.0.1:PORT``; the mock derives its issuer from the request host)."""
    with warnings.catch_warnings():  # it imports authlib.jose, deprecated in Authlib 1.7+
        warnings.simplefilter("ignore", DeprecationWarning)
        import oidc_provider_mock

    app = oidc_provider_mock.app(
        require_client_registration=require_client_registration,
        require_nonce=require_nonce,
        issue_refresh_token=issue_refresh_token,
        access_token_max_age=access_token_max_age,
        user_claims=user_claims,
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
