"""flowcred.files.load_credentials: every flowgen family, its errors, and what never leaks.

Malformed files carry a canary secret; no message and no repr may contain it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import pytest

import flowcred.files
from flowcred.errors import CredentialsFileMalformed, CredentialsFileUnreadable, InvalidInput
from flowcred.files import (
    AzureCredentials,
    GcsCredentials,
    HttpCredentials,
    S3Credentials,
    kind_for_task,
    load_credentials,
    permission_warning,
)
from flowcred.redaction import default_registry

CANARY = "CANARY-" + secrets.token_hex(8)
PEM = f"-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----\n"
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "proj-1",
    "private_key_id": "key-id-1",
    "private_key": PEM,
    "client_email": "svc@proj-1.iam.gserviceaccount.com",
    "client_id": "1234",
    "token_uri": "https://oauth2.googleapis.com/token",
    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
}


def write(tmp_path: Path, content: Any, *, name: str = "creds.json", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    path.chmod(mode)
    return path


def assert_no_canary(*texts: object) -> None:
    for text in texts:
        assert CANARY not in str(text)
        assert CANARY not in repr(text)


# --- valid files, one family at a time ------------------------------------------------------


def test_http_bearer_wins_over_basic(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"bearer_auth": CANARY, "basic_auth": {"username": "u", "password": "p" + CANARY}},
    )
    creds = load_credentials(path, "http")
    assert creds.bearer_auth is not None and creds.bearer_auth.reveal() == CANARY
    material = creds.to_material()
    assert material.reveal_headers() == {"Authorization": f"Bearer {CANARY}"}
    assert material.handle == str(path) and material.credential_id == 0
    assert material.type == "http"
    assert_no_canary(creds, material, material.to_dict())


def test_http_basic_header_is_base64_of_user_and_password(tmp_path: Path) -> None:
    path = write(tmp_path, {"basic_auth": {"username": "Aladdin", "password": "open sesame"}})
    material = load_credentials(path, "http").to_material(handle="webhook")
    assert material.reveal_headers() == {"Authorization": "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}
    assert material.handle == "webhook"


def test_http_empty_object_means_no_auth(tmp_path: Path) -> None:
    creds = load_credentials(write(tmp_path, {}), "http_endpoint")
    assert creds == HttpCredentials()
    assert not creds.configured
    assert dict(creds.to_material().headers) == {}


def test_mcp_api_keys(tmp_path: Path) -> None:
    creds = load_credentials(write(tmp_path, {"api_keys": [CANARY, "second-key"]}), "mcp_tool")
    assert [k.reveal() for k in creds.api_keys] == [CANARY, "second-key"]
    assert creds.to_material().reveal_headers() == {"Authorization": f"Bearer {CANARY}"}
    assert_no_canary(creds, creds.to_material())
    empty = load_credentials(write(tmp_path, {"api_keys": []}, name="e.json"), "mcp")
    assert not empty.configured and dict(empty.to_material().headers) == {}


def test_nats_seed(tmp_path: Path) -> None:
    seed = "SU" + CANARY
    creds = load_credentials(write(tmp_path, {"nkey": {"seed": seed}}), "nats_jetstream_publisher")
    assert creds.nkey_seed.reveal() == seed
    assert creds.to_material().reveal_fields() == {"nkey_seed": seed}
    assert_no_canary(creds, creds.to_material())


def test_gcp_service_account(tmp_path: Path) -> None:
    creds = load_credentials(write(tmp_path, SERVICE_ACCOUNT), "gcp_bigquery_query")
    assert creds.project_id == "proj-1" and creds.client_email.startswith("svc@")
    assert creds.private_key.reveal() == PEM
    fields = creds.to_material().reveal_fields()
    assert fields["private_key"] == PEM and fields["token_uri"].endswith("/token")
    assert creds.to_material().type == "gcp_service_account"
    assert_no_canary(creds, creds.to_material())


def test_salesforce(tmp_path: Path) -> None:
    data = {
        "client_id": "cid",
        "client_secret": CANARY,
        "instance_url": "https://example.my.salesforce.com",
        "tenant_id": "00D000000000001",
    }
    creds = load_credentials(write(tmp_path, data), "salesforce_pubsub_subscriber")
    assert creds.to_material().reveal_fields() == data
    assert_no_canary(creds, creds.to_material())


def test_mssql_defaults_are_the_safe_ones(tmp_path: Path) -> None:
    data = {"host": "db", "database": "sales", "username": "sa", "password": CANARY}
    creds = load_credentials(write(tmp_path, data), "mssql_query")
    assert (creds.port, creds.encrypt, creds.trust_server_certificate) == (1433, True, False)
    assert creds.to_material().reveal_fields()["password"] == CANARY
    assert_no_canary(creds, creds.to_material())
    custom = load_credentials(
        write(tmp_path, {**data, "port": 14330, "encrypt": False}, name="c.json"), "mssql"
    )
    assert (custom.port, custom.encrypt) == (14330, False)


def test_object_store_detects_s3(tmp_path: Path) -> None:
    data = {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": CANARY}
    creds = load_credentials(write(tmp_path, data), "object_store")
    assert isinstance(creds, S3Credentials)
    assert creds.aws_session_token is None and creds.aws_region is None
    assert creds.to_material().reveal_fields() == data
    assert_no_canary(creds, creds.to_material())


def test_object_store_detects_gcs(tmp_path: Path) -> None:
    creds = load_credentials(write(tmp_path, SERVICE_ACCOUNT), "object_store_writer")
    assert isinstance(creds, GcsCredentials)
    assert creds.to_material().type == "gcs"
    assert_no_canary(creds)


@pytest.mark.parametrize(
    ("data", "key", "sas"),
    [
        ({"azure_storage_account_name": "acct", "azure_storage_account_key": CANARY}, CANARY, None),
        ({"account_name": "acct", "sas_token": "sv=" + CANARY}, None, "sv=" + CANARY),
    ],
)
def test_object_store_detects_azure(
    tmp_path: Path, data: dict[str, str], key: str | None, sas: str | None
) -> None:
    creds = load_credentials(write(tmp_path, data), "object_store")
    assert isinstance(creds, AzureCredentials) and creds.account_name == "acct"
    assert (creds.account_key and creds.account_key.reveal()) == (key or None)
    assert (creds.sas_token and creds.sas_token.reveal()) == (sas or None)
    assert creds.to_material().type == "azure_blob"
    assert_no_canary(creds)


def test_git_username_defaults_and_token_goes_in_a_header(tmp_path: Path) -> None:
    creds = load_credentials(write(tmp_path, {"token": CANARY}), "git_sync")
    assert creds.username == "x-access-token"
    material = creds.to_material()
    assert material.reveal_fields() == {"username": "x-access-token", "token": CANARY}
    assert material.reveal_headers()["Authorization"].startswith("Basic ")
    assert_no_canary(creds, material)
    named = load_credentials(write(tmp_path, {"token": "t0ken", "username": "me"}, name="g"), "git")
    assert named.username == "me"


def test_unknown_fields_are_ignored(tmp_path: Path) -> None:
    creds = load_credentials(write(tmp_path, {"token": "t0ken-1", "comment": "x", "n": 3}), "git")
    assert creds.token.reveal() == "t0ken-1"


def test_loaded_secrets_are_registered_for_log_redaction(tmp_path: Path) -> None:
    value = "registered-" + secrets.token_hex(8)
    load_credentials(write(tmp_path, {"bearer_auth": value}), "http")
    assert default_registry().redact(f"header {value}") == "header ***"


# --- invalid files: each says what is wrong and never what was in it --------------------------

INVALID: list[tuple[str, Any, str]] = [
    ("http", {"bearer_auth": 12}, "field 'bearer_auth' must be a string, not number"),
    ("http", {"bearer_auth": ""}, "field 'bearer_auth' must not be empty"),
    ("http", {"basic_auth": {"username": CANARY}}, "missing field 'basic_auth.password'"),
    ("http", {"basic_auth": CANARY}, "field 'basic_auth' must be an object, not string"),
    ("mcp", {"api_keys": CANARY}, "field 'api_keys' must be an array of strings, not string"),
    ("mcp", {"api_keys": [CANARY, 7]}, "field 'api_keys[1]' must be a string, not number"),
    ("nats", {"seed": CANARY}, "missing field 'nkey'"),
    ("nats", {"nkey": {"public": CANARY}}, "missing field 'nkey.seed'"),
    ("gcp", {**SERVICE_ACCOUNT, "type": "user"}, "field 'type' must be 'service_account'"),
    ("gcp", {**SERVICE_ACCOUNT, "private_key": CANARY}, "field 'private_key' is not a PEM"),
    (
        "gcp",
        {k: v for k, v in SERVICE_ACCOUNT.items() if k != "client_email"},
        "missing field 'client_email'",
    ),
    *[
        (
            "salesforce",
            {
                k: v
                for k, v in {
                    "client_id": "cid",
                    "client_secret": CANARY,
                    "instance_url": "https://x.my.salesforce.com",
                    "tenant_id": "t",
                }.items()
                if k != missing
            },
            f"missing field '{missing}'",
        )
        for missing in ("client_id", "client_secret", "instance_url", "tenant_id")
    ],
    (
        "salesforce",
        {"client_id": "c", "client_secret": CANARY, "instance_url": CANARY, "tenant_id": "t"},
        "field 'instance_url' must be an http(s) URL",
    ),
    (
        "mssql",
        {"host": "h", "database": "d", "username": "u", "password": "p", "port": CANARY},
        "field 'port' must be an integer, not string",
    ),
    (
        "mssql",
        {"host": "h", "database": "d", "username": "u", "password": "p", "port": 70000},
        "field 'port' must be between 1 and 65535",
    ),
    (
        "mssql",
        {"host": "h", "database": "d", "username": "u", "password": CANARY, "encrypt": "no"},
        "field 'encrypt' must be true or false, not string",
    ),
    ("mssql", {"host": "h", "database": "d", "username": "u"}, "missing field 'password'"),
    ("object_store", {"password": CANARY}, "cannot tell the object store"),
    ("object_store", {"aws_secret_access_key": CANARY}, "missing field 'aws_access_key_id'"),
    (
        "object_store",
        {"aws_access_key_id": "AKIA1", "aws_secret_access_key": CANARY, "account_name": "a"},
        "fields of more than one object store are present (S3, Azure)",
    ),
    (
        "object_store",
        {"account_name": "a", "account_key": CANARY, "sas_token": CANARY},
        "fields 'account_key' and 'sas_token' exclude each other",
    ),
    ("object_store", {"account_name": "a"}, "missing field 'azure_storage_account_key'"),
    ("git", {"username": CANARY}, "missing field 'token'"),
]


@pytest.mark.parametrize(("kind", "data", "reason"), INVALID)
def test_invalid_file_names_the_field_not_the_value(
    tmp_path: Path, kind: str, data: Any, reason: str
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(CredentialsFileMalformed) as caught:
        load_credentials(path, kind)
    message = str(caught.value)
    assert message.startswith(f"Failed to parse credentials file at {path}: ")
    assert reason in message
    assert caught.value.path == str(path)
    assert_no_canary(caught.value, caught.value.args)


@pytest.mark.parametrize(
    ("content", "position"),
    [
        (
            '{\n  "bearer_auth": "' + CANARY + '",\n  oops\n}',
            "line 3 column 3: Expecting property name enclosed in double quotes",
        ),
        ('{"bearer_auth": "' + CANARY, "line 1 column 17: Unterminated string starting at"),
        ("", "line 1 column 1: Expecting value"),
        ('{"bearer_auth": "x"} ' + CANARY, "line 1 column 22: Extra data"),
    ],
)
def test_malformed_json_gives_the_position_never_the_content(
    tmp_path: Path, content: str, position: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(CredentialsFileMalformed) as caught:
        load_credentials(path, "http")
    assert str(caught.value) == f"Failed to parse credentials file at {path}: {position}"
    # The decoder's error holds the whole document: it must not ride along as the context.
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert_no_canary(caught.value, caught.value.args)


def test_top_level_must_be_an_object(tmp_path: Path) -> None:
    with pytest.raises(CredentialsFileMalformed, match=r"expected a JSON object .* not array"):
        load_credentials(write(tmp_path, [CANARY]), "git")


def test_not_utf8_names_the_byte_not_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "bin.json"
    path.write_bytes(b'{"token": "' + CANARY.encode() + b'\xff"}')
    path.chmod(0o600)
    with pytest.raises(CredentialsFileMalformed, match=r"not UTF-8 text \(byte \d+\)") as caught:
        load_credentials(path, "git")
    assert_no_canary(caught.value)
    assert caught.value.__context__ is None


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(CredentialsFileUnreadable) as caught:
        load_credentials(path, "http")
    assert str(caught.value) == (
        f"Failed to read credentials file at {path}: No such file or directory"
    )


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(CredentialsFileUnreadable, match="Failed to read credentials file at"):
        load_credentials(tmp_path, "http")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(tmp_path: Path) -> None:
    path = write(tmp_path, {"bearer_auth": CANARY}, mode=0o000)
    with pytest.raises(CredentialsFileUnreadable, match="Permission denied") as caught:
        load_credentials(path, "http")
    assert_no_canary(caught.value)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown kind 'ftp_upload'"):
        load_credentials("/nonexistent", "ftp_upload")


# --- permissions ------------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_group_or_other_readable_file_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    path = write(tmp_path, {"bearer_auth": CANARY}, mode=mode)
    with caplog.at_level(logging.WARNING, logger="flowcred.files"):
        creds = load_credentials(path, "http")
    assert creds.configured
    warning = permission_warning(path)
    assert warning is not None and f"{mode:04o}" in warning and "chmod 600" in warning
    records = [r for r in caplog.records if r.name == "flowcred.files"]
    assert [r.getMessage() for r in records] == [warning]
    assert_no_canary(warning, *(r.getMessage() for r in records))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_file_does_not_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    path = write(tmp_path, {}, mode=mode)
    with caplog.at_level(logging.WARNING, logger="flowcred.files"):
        load_credentials(path, "http")
    assert permission_warning(path) is None
    assert not [r for r in caplog.records if r.name == "flowcred.files"]


def test_permission_warning_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert permission_warning(tmp_path / "absent.json") is None


# --- task types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "kind"),
    [
        ("http_endpoint", "http"),
        ("http_request", "http"),
        ("mcp_tool", "mcp"),
        ("nats_jetstream_subscriber", "nats"),
        ("nats_kv_store", "nats"),
        ("gcp_bigquery_query", "gcp"),
        ("salesforce_restapi_sobject", "salesforce"),
        ("mssql_query", "mssql"),
        ("object_store", "object_store"),
        ("object_store_reader", "object_store"),
        ("git_sync", "git"),
        ("git", "git"),
        ("convert", None),
        ("mssql_other", None),
    ],
)
def test_kind_for_task(task: str, kind: str | None) -> None:
    assert kind_for_task(task) == kind


def test_module_is_importable_by_name() -> None:
    assert flowcred.files.load_credentials is load_credentials
