"""Snowflake: one documented login request over HTTPS, password or key-pair (JWT).

snowflake-connector-python pulls in boto3, pyarrow-sized dependencies and its own retry loop
(minutes by default), so this test speaks the connector's login protocol directly with httpx:
``POST /session/v1/login-request`` with ``{"data": {ACCOUNT_NAME, LOGIN_NAME, PASSWORD}}``
(or ``AUTHENTICATOR: SNOWFLAKE_JWT`` and ``TOKEN``: an RS256 JWT with ``iss`` =
``ACCOUNT.USER.SHA256:<public key fingerprint>``, ``sub`` = ``ACCOUNT.USER``). Snowflake answers
HTTP 200 either way with ``success`` and, on failure, a code (390100: wrong user or password,
390144: JWT not valid). The session opened by a success is closed again straight away.

The host is ``https://<account>.snowflakecomputing.com`` unless ``api_base_url`` overrides it
(PrivateLink, a proxy, a test server).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.provider_api import base_url, json_object, send, short, unexpected_status
from flowcred.errors import InvalidCredential
from flowcred.runtime.jwt_bearer import load_private_key

_ACCOUNT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MEANINGS = {
    "390100": "incorrect user name or password",
    "390144": "the key-pair JWT was not accepted (wrong key or no public key set for the user)",
    "390102": "the user is locked",
    "390104": "the user is disabled",
    "390106": "the password has expired",
    "390201": "the account, database or warehouse does not exist or is not authorized",
}


def _jwt(pem: str, account: str, user: str, now: float) -> str:
    try:
        key = load_private_key(pem, field="private_key")
    except InvalidCredential:
        raise ConnectionTestError("private_key is not a usable PEM private key") from None
    if not isinstance(key, RSAKey):
        raise ConnectionTestError("private_key must be an RSA key for Snowflake key-pair auth")
    # A "PUBLIC KEY" PEM is the base64 of the DER SubjectPublicKeyInfo Snowflake fingerprints.
    public = key.as_pem(private=False).decode("ascii")
    der = base64.b64decode("".join(line for line in public.splitlines() if "-----" not in line))
    fingerprint = base64.b64encode(hashlib.sha256(der).digest()).decode()
    subject = f"{account}.{user}"
    iat = int(now)
    claims = {"iss": f"{subject}.SHA256:{fingerprint}", "sub": subject, "iat": iat, "exp": iat + 60}
    return jwt.encode({"alg": "RS256"}, claims, key)


@register("snowflake")
class SnowflakeTest(ConnectionTest):
    live_tested = False  # no Snowflake account in CI

    def check(self, target: TestTarget, timeout: float) -> str:
        config = target.config
        account = str(config.get("account") or "")
        if not _ACCOUNT_RE.match(account):
            raise ConnectionTestError("account must be a Snowflake account identifier")
        user = str(config.get("username") or "")
        root = base_url(target, f"https://{account}.snowflakecomputing.com")
        account_name = account.split(".", 1)[0].upper()
        data: dict[str, Any] = {
            "CLIENT_APP_ID": "flowcred",
            "CLIENT_APP_VERSION": "1",
            "ACCOUNT_NAME": account_name,
            "LOGIN_NAME": user,
        }
        pem = target.reveal("private_key")
        if pem:
            data["AUTHENTICATOR"] = "SNOWFLAKE_JWT"
            data["TOKEN"] = _jwt(pem, account_name, user.upper(), time.time())
        else:
            data["PASSWORD"] = target.reveal("password") or ""
        params = {"requestId": str(uuid.uuid4())}
        for field, name in (
            ("warehouse", "warehouse"),
            ("database", "databaseName"),
            ("schema", "schemaName"),
            ("role", "roleName"),
        ):
            if config.get(field):
                params[name] = str(config[field])
        response = send(
            "POST",
            f"{root}/session/v1/login-request",
            timeout=timeout,
            what="Snowflake",
            headers={"Accept": "application/json"},
            params=params,
            json_body={"data": data},
        )
        if response.status_code != 200:
            raise unexpected_status("Snowflake", response)
        body = json_object(response)
        if body.get("success") is not True:
            code = short(body.get("code") or "?", 10)
            meaning = _MEANINGS.get(code) or short(body.get("message") or "login refused")
            raise ConnectionTestError(f"Snowflake refused the login: {meaning} (code {code})")
        session = body.get("data") if isinstance(body.get("data"), dict) else {}
        token = session.get("token") if isinstance(session, dict) else None
        if isinstance(token, str) and token:
            self._logout(root, token, timeout)
        return "Snowflake accepted the login"

    @staticmethod
    def _logout(root: str, token: str, timeout: float) -> None:
        """Close the session the login opened; a failure here does not fail the test."""
        try:
            send(
                "POST",
                f"{root}/session",
                timeout=min(timeout, 3.0),
                what="Snowflake",
                headers={"Authorization": f'Snowflake Token="{token}"'},
                params={"delete": "true"},
            )
        except ConnectionTestError:
            pass
