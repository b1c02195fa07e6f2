"""Snowflake, BigQuery, Cloud Storage and Elasticsearch against loopback servers that implement
each documented call: contract tests (the protocol flowcred speaks), not live tests.

* Snowflake ``POST /session/v1/login-request`` (the protocol of snowflake-connector-python):
  ``{"data": {ACCOUNT_NAME, LOGIN_NAME, PASSWORD | AUTHENTICATOR=SNOWFLAKE_JWT + TOKEN}}``;
  HTTP 200 with ``success`` and ``code`` 390100 for a wrong password; the session is then
  deleted with ``POST /session?delete=true``.
* BigQuery ``GET /bigquery/v2/projects/{p}/datasets?maxResults=1`` and Cloud Storage
  ``GET /storage/v1/b/{bucket}``, each with a token from the key file's token_uri.
* Elasticsearch ``GET /`` through the official client (which insists on the
  ``X-Elastic-Product`` header) with basic auth; 401 ``security_exception`` when refused.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.errors import JoseError
from tests.connectors.google_key_stub import GoogleAccount, google_error, rsa_key
from tests.connectors.provider_stub import (
    CANARY,
    TIMEOUT,
    Answer,
    Seen,
    failure,
    running_stubs,
    target,
)

from flowcred.connectors.base import ConnectionTest, registered

PASSWORD = f"pw-{CANARY}"


@pytest.fixture
def provider_stub():
    yield from running_stubs()


def family(kind: str) -> ConnectionTest:
    import flowcred.connectors.families  # noqa: F401  (registers the families)

    return registered()[kind]()


def fingerprint(key) -> str:
    der = serialization.load_pem_public_key(key.as_pem(private=False)).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def snowflake_server(seen: Seen) -> Answer:
    if seen.path == "/session" and seen.query.get("delete") == ["true"]:
        ok = seen.headers.get("authorization") == 'Snowflake Token="session-token"'
        return Answer(200, {"success": ok, "code": None, "message": None, "data": None})
    if seen.method != "POST" or seen.path != "/session/v1/login-request":
        return Answer(404, {"success": False})
    data = seen.json()["data"]
    accepted = data.get("ACCOUNT_NAME") == "ACME-PROD" and data.get("LOGIN_NAME") == "app"
    if data.get("AUTHENTICATOR") == "SNOWFLAKE_JWT":
        key = rsa_key("snowflake-user")
        try:
            claims = jwt.decode(data["TOKEN"], key, algorithms=["RS256"]).claims
        except (JoseError, ValueError):
            claims = {}
        accepted = accepted and claims.get("iss") == f"ACME-PROD.APP.{fingerprint(key)}"
        refused = {"code": "390144", "message": "JWT token is invalid."}
    else:
        accepted = accepted and data.get("PASSWORD") == PASSWORD
        refused = {"code": "390100", "message": "Incorrect username or password was specified."}
    if not accepted:
        return Answer(200, {"data": {"nextAction": "RETRY_LOGIN"}, "success": False, **refused})
    return Answer(
        200,
        {
            "data": {"token": "session-token", "masterToken": "m"},
            "code": None,
            "message": None,
            "success": True,
        },
    )


def snowflake(stub, secret):
    return target(
        "snowflake", {"account": "acme-prod", "username": "app", "api_base_url": stub.url}, secret
    )


def test_snowflake_password_login_and_logout(provider_stub) -> None:
    stub = provider_stub(snowflake_server)
    message = family("snowflake").check(snowflake(stub, {"password": PASSWORD}), TIMEOUT)
    assert message == "Snowflake accepted the login"
    assert [s.path for s in stub.seen] == ["/session/v1/login-request", "/session"]
    wrong = failure(
        lambda: family("snowflake").check(snowflake(stub, {"password": CANARY}), TIMEOUT)
    )
    assert wrong == ("Snowflake refused the login: incorrect user name or password (code 390100)")


def test_snowflake_key_pair_login(provider_stub) -> None:
    stub = provider_stub(snowflake_server)
    good = rsa_key("snowflake-user").as_pem(private=True).decode()
    other = rsa_key("not-registered").as_pem(private=True).decode()
    assert family("snowflake").check(snowflake(stub, {"private_key": good}), TIMEOUT) == (
        "Snowflake accepted the login"
    )
    refused = failure(
        lambda: family("snowflake").check(snowflake(stub, {"private_key": other}), TIMEOUT)
    )
    assert "(code 390144)" in refused and "PRIVATE KEY" not in refused


def google_api(account: GoogleAccount, token_uri: list[str]):
    def respond(seen: Seen) -> Answer:
        if seen.path == "/token":
            return account.token_endpoint(seen, token_uri[0])
        scope = account.scope_of(seen)
        if scope is None:
            return google_error(401, "UNAUTHENTICATED", "Invalid Credentials")
        if seen.path == "/bigquery/v2/projects/acme/datasets" and "bigquery" in scope:
            return Answer(200, {"kind": "bigquery#datasetList", "datasets": []})
        if seen.path.startswith("/bigquery/v2/projects/"):
            return google_error(403, "PERMISSION_DENIED", "Access Denied: bigquery.datasets.list")
        if seen.path == "/storage/v1/b/acme-data" and "devstorage" in scope:
            return Answer(200, {"name": "acme-data"})
        return Answer(
            404, {"error": {"code": 404, "message": "The specified bucket does not exist."}}
        )

    return respond


@pytest.mark.parametrize(
    ("kind", "good", "bad", "refusal"),
    [
        ("bigquery", {"project_id": "acme"}, {"project_id": "other"}, "HTTP 403"),
        ("gcs", {"bucket": "acme-data"}, {"bucket": "gone"}, "HTTP 404"),
    ],
)
def test_google_rest_tests_use_the_service_account_token(
    provider_stub, kind, good, bad, refusal
) -> None:
    account = GoogleAccount()
    token_uri: list[str] = []
    stub = provider_stub(google_api(account, token_uri))
    token_uri.append(stub.url + "/token")
    secret = {"service_account_json": account.key_file(token_uri[0])}

    def built(config):
        return target(kind, {**config, "api_base_url": stub.url}, secret)

    assert family(kind).check(built(good), TIMEOUT)
    message = failure(lambda: family(kind).check(built(bad), TIMEOUT))
    assert refusal in message and "PRIVATE KEY" not in message


def elasticsearch_server(seen: Seen) -> Answer:
    expected = "Basic " + base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()
    if seen.headers.get("authorization") != expected:
        return Answer(
            401,
            {
                "error": {
                    "type": "security_exception",
                    "reason": "unable to authenticate user [elastic]",
                },
                "status": 401,
            },
            {"WWW-Authenticate": 'Basic realm="security"'},
        )
    return Answer(
        200,
        {
            "name": "node-1",
            "cluster_name": "acme-es",
            "version": {"number": "8.13.0"},
            "tagline": "You Know, for Search",
        },
        {"X-Elastic-Product": "Elasticsearch"},
    )


def test_elasticsearch_basic_auth_through_the_official_client(provider_stub) -> None:
    stub = provider_stub(elasticsearch_server)

    def built(password):
        return target(
            "elasticsearch", {"urls": stub.url, "username": "elastic"}, {"password": password}
        )

    assert family("elasticsearch").check(built(PASSWORD), TIMEOUT) == (
        "Elasticsearch cluster 'acme-es' (version 8.13.0) accepted the credentials"
    )
    message = failure(lambda: family("elasticsearch").check(built(CANARY), TIMEOUT))
    assert message == "Elasticsearch rejected the credentials (HTTP 401)"


GOOD_SIG = f"sig-{CANARY}"


def azure_server(seen: Seen) -> Answer:
    """Get Account Information (``GET /?restype=account&comp=properties``), SAS-authorised:
    the service checks the ``sig`` of the SAS and answers 403 AuthenticationFailed otherwise."""
    if seen.query.get("restype") != ["account"] or seen.query.get("comp") != ["properties"]:
        return Answer(400, None, {"x-ms-error-code": "InvalidQueryParameterValue"})
    if seen.query.get("sig") != [GOOD_SIG]:
        return Answer(403, None, {"x-ms-error-code": "AuthenticationFailed"})
    return Answer(
        200,
        None,
        {
            "x-ms-sku-name": "Standard_LRS",
            "x-ms-account-kind": "StorageV2",
            "x-ms-version": "2025-01-05",
        },
    )


def test_azure_blob_account_information_with_a_sas(provider_stub) -> None:
    stub = provider_stub(azure_server)

    def built(sig):
        sas = f"sv=2025-01-05&ss=b&srt=sco&sp=rl&se=2030-01-01T00:00:00Z&sig={sig}"
        return target(
            "azure_blob",
            {"account_name": "acmedata", "blob_endpoint": f"{stub.url}/acmedata"},
            {"sas_token": sas},
        )

    assert family("azure_blob").check(built(GOOD_SIG), TIMEOUT) == (
        "account accepted the credential (StorageV2)"
    )
    message = failure(lambda: family("azure_blob").check(built(f"bad-{CANARY}"), TIMEOUT))
    assert message == "Azure Storage refused the credential (HTTP 403 AuthenticationFailed)"
