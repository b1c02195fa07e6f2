"""Tests for credential type validation and the secretValue round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowcred.catalog import Catalog, CredentialType, FieldSpec
from flowcred.catalog.schema import derive_label
from flowcred.errors import FieldProblem, InvalidCredential

CANARY = "CANARY-7f3a9c"

# DESIGN §2: canonical field names and whether each is secret.
DESIGN_TABLE: dict[str, dict[str, bool]] = {
    "no_auth": {},
    "api_key": {"api_key": True, "key_name": False, "location": False, "prefix": False},
    "bearer_token": {"token": True, "header_name": False, "prefix": False},
    "basic_auth": {"username": False, "password": True},
    "oauth2": {
        "authorization_url": False,
        "token_url": False,
        "client_id": False,
        "client_secret": True,
        "scopes": False,
        "redirect_uri": False,
        "auth_method": False,
    },
    "oauth2_client_credentials": {
        "token_url": False,
        "issuer": False,
        "client_id": False,
        "client_secret": True,
        "scopes": False,
        "audience": False,
        "auth_method": False,
        "extra_params": False,
    },
    "oidc_user": {
        "issuer": False,
        "client_id": False,
        "client_secret": True,
        "username": False,
        "password": True,
        "scopes": False,
        "audience": False,
    },
    "service_account_jwt": {"service_account_json": True, "scopes": False, "subject": False},
    "postgres": {
        "host": False,
        "port": False,
        "database": False,
        "username": False,
        "password": True,
        "ssl_mode": False,
    },
    "slack": {"token": True},
    "twilio": {"accountSid": True, "authToken": True},
}

PRIVATE_KEY = f"-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----\n"


def service_account(**overrides: Any) -> dict[str, Any]:
    key: dict[str, Any] = {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": "0123abcd",
        "private_key": PRIVATE_KEY,
        "client_email": "robot@demo-project.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    key.update(overrides)
    return {k: v for k, v in key.items() if v is not None}


def assert_no_canary(exc: BaseException) -> None:
    assert CANARY not in str(exc)
    assert CANARY not in repr(exc)
    # A chained parser error (json's carries the whole document) must not ride along.
    assert exc.__cause__ is None
    assert exc.__context__ is None


def problem_fields(exc: InvalidCredential) -> set[str]:
    return {problem.field for problem in exc.problems}


@pytest.mark.parametrize("type_name", sorted(DESIGN_TABLE))
def test_design_table_fields_exist_with_secret_flags(catalog: Catalog, type_name: str) -> None:
    ctype = catalog.get(type_name)
    for field_name, secret in DESIGN_TABLE[type_name].items():
        assert ctype.field(field_name).name == field_name
        assert ctype.field(field_name).secret is secret, f"{type_name}.{field_name}"


def test_design_table_defaults(catalog: Catalog) -> None:
    api_key = catalog.get("api_key")
    assert api_key.field("location").enum == ["header", "query", "cookie"]
    assert api_key.defaults["prefix"] == ""
    assert catalog.get("bearer_token").defaults == {
        "header_name": "Authorization",
        "prefix": "Bearer ",
    }
    assert catalog.get("postgres").defaults["port"] == 5432


def test_secret_and_config_fields(catalog: Catalog) -> None:
    twilio = catalog.get("twilio")
    assert [f.name for f in twilio.secret_fields] == ["accountSid", "authToken"]
    # Its only config field says where the connection test sends the pair.
    assert [f.name for f in twilio.config_fields] == ["api_base_url"]
    assert twilio.is_composite
    assert not catalog.get("slack").is_composite
    assert not catalog.get("no_auth").is_composite
    assert catalog.get("apns").is_composite
    assert [f.name for f in catalog.get("smtp").secret_fields] == ["password"]


def test_field_lookup_by_alias(catalog: Catalog) -> None:
    assert catalog.get("oidc_user").field("issuer_url").name == "issuer"
    with pytest.raises(KeyError):
        catalog.get("slack").field("nope")


def test_postgres_validates_and_coerces(catalog: Catalog) -> None:
    config, secret = catalog.get("postgres").validate(
        {"host": "db.internal", "port": "6432", "database": "app", "username": "svc"},
        {"password": "hunter2"},
    )
    assert config == {
        "host": "db.internal",
        "port": 6432,
        "database": "app",
        "username": "svc",
        "ssl_mode": "prefer",
    }
    assert secret == {"password": "hunter2"}


def test_every_problem_is_reported_at_once_without_values(catalog: Catalog) -> None:
    ctype = catalog.get("postgres")
    with pytest.raises(InvalidCredential) as info:
        ctype.validate(
            {
                "host": f"https://{CANARY}",
                "port": f"{CANARY}",
                "ssl_mode": CANARY,
                "mystery": CANARY,
                "password": CANARY,
            },
            {"username": CANARY},
        )
    exc = info.value
    assert exc.type_name == "postgres"
    assert problem_fields(exc) == {
        "host",
        "port",
        "ssl_mode",
        "mystery",
        "password",
        "username",
        "database",
    }
    reported = {(problem.field, problem.message) for problem in exc.problems}
    assert ("mystery", "unknown field") in reported
    assert ("password", "is a secret field; pass it as the secret, not in config") in reported
    # The password was put in the wrong place, so the secret still lacks it.
    assert ("password", "is required") in reported
    assert ("username", "is not a secret field; pass it in config") in reported
    assert ("database", "is required") in reported
    assert ("port", "must be an integer") in reported
    assert_no_canary(exc)


def bad_value(spec: FieldSpec) -> Any:
    """A value that fails ``spec`` and carries the canary."""
    return {
        "string": f"{CANARY}\r\nX-Injected: 1",
        "text": f"{CANARY}\x00",
        "integer": CANARY,
        "boolean": CANARY,
        "list": [CANARY, 7],
        "json": f'{{"{CANARY}": ',
    }[spec.kind]


def test_canaries_never_leak_from_any_type(catalog: Catalog) -> None:
    for ctype in catalog:
        config = {spec.name: bad_value(spec) for spec in ctype.config_fields}
        secret = {spec.name: bad_value(spec) for spec in ctype.secret_fields}
        if not config and not secret:
            continue
        with pytest.raises(InvalidCredential) as info:
            ctype.validate(config, secret)
        assert problem_fields(info.value) >= {spec.name for spec in ctype.fields}, ctype.name
        assert_no_canary(info.value)


@pytest.mark.parametrize(
    ("type_name", "field_name", "value"),
    [
        ("postgres", "host", f"{CANARY}:5432"),
        ("postgres", "host", f"{CANARY} db"),
        ("postgres", "port", 70000),
        ("smtp", "from_address", f"{CANARY}-not-an-email"),
        ("oauth2", "token_url", f"ftp://{CANARY}/token"),
        ("oauth2", "token_url", f"https:///{CANARY}"),
        ("kafka", "bootstrap_servers", f"broker-1:9092,{CANARY}"),
        ("kafka", "bootstrap_servers", f"{CANARY}:99999"),
        ("kafka", "security_protocol", CANARY),
        ("redis", "db", "-1"),
        ("elasticsearch", "urls", f"https://ok.example.com,{CANARY}"),
        ("nats", "servers", f"http://{CANARY}"),
        ("google_service_account", "subject", CANARY),
        ("mssql", "encrypt", CANARY),
        ("oauth2_client_credentials", "extra_params", f'["{CANARY}"]'),
    ],
)
def test_config_checks_fail_without_echo(
    catalog: Catalog, type_name: str, field_name: str, value: Any
) -> None:
    with pytest.raises(InvalidCredential) as info:
        catalog.get(type_name).validate_config({field_name: value})
    assert field_name in problem_fields(info.value)
    assert_no_canary(info.value)


@pytest.mark.parametrize(
    ("type_name", "secret"),
    [
        ("slack", {"token": f"xoxp-{CANARY}"}),
        ("sendgrid", {"api_key": f"{CANARY}"}),
        ("twilio", {"accountSid": f"XX{CANARY}", "authToken": "t"}),
        ("apns", {"p8Key": CANARY, "teamId": "T", "keyId": "K", "bundleId": "B"}),
        ("fcm", {"service_account_json": f"{{{CANARY}"}),
        ("fcm", {"service_account_json": json.dumps(service_account(type=CANARY))}),
        ("nats", {"nkey_seed": f"SA{CANARY}"}),
        ("mongodb", {"connection_string": f"postgres://{CANARY}"}),
    ],
)
def test_secret_checks_fail_without_echo(
    catalog: Catalog, type_name: str, secret: dict[str, Any]
) -> None:
    with pytest.raises(InvalidCredential) as info:
        catalog.get(type_name).validate_secret(secret)
    assert info.value.problems
    assert_no_canary(info.value)


def test_service_account_reports_missing_keys_by_name(catalog: Catalog) -> None:
    key = service_account(client_email=None, token_uri=None, project_id=7)
    with pytest.raises(InvalidCredential) as info:
        catalog.get("google_service_account").validate_secret({"service_account_json": key})
    (problem,) = info.value.problems
    assert problem.field == "service_account_json"
    assert "missing client_email, token_uri" in problem.message
    assert "not strings: project_id" in problem.message
    assert_no_canary(info.value)


def test_service_account_json_is_kept_as_given(catalog: Catalog) -> None:
    text = json.dumps(service_account(), indent=4)
    fcm = catalog.get("fcm")
    secret = fcm.validate_secret(fcm.parse_secret_value(text))
    assert secret == {"service_account_json": text}
    assert fcm.secret_value_of(secret) == text


def test_service_account_given_as_object_becomes_text(catalog: Catalog) -> None:
    secret = catalog.get("bigquery").validate_secret({"service_account_json": service_account()})
    assert json.loads(secret["service_account_json"]) == service_account()


def test_cli_strings_are_coerced(catalog: Catalog) -> None:
    redis = catalog.get("redis").validate_config(
        {"host": "cache", "port": " 6380 ", "db": "3", "tls": "TRUE"}
    )
    assert redis == {"host": "cache", "port": 6380, "db": 3, "tls": True}
    mssql = catalog.get("mssql").validate_config(
        {"host": "sql", "username": "sa", "encrypt": "false", "trust_server_certificate": "yes"}
    )
    assert mssql["encrypt"] is False and mssql["trust_server_certificate"] is True
    google = catalog.get("google_service_account")
    assert google.validate_config({"scopes": "a, b,c"}) == {"scopes": ["a", "b", "c"]}
    assert google.validate_config({"scopes": "read write profile"}) == {
        "scopes": ["read", "write", "profile"]
    }
    assert google.validate_config({"scopes": ["x"]}) == {"scopes": ["x"]}
    extra = catalog.get("oauth2_client_credentials").validate_config(
        {"token_url": "https://id.example.com/token", "client_id": "c", "extra_params": '{"a": 1}'}
    )
    assert extra["extra_params"] == {"a": 1}


@pytest.mark.parametrize("value", ["5432.5", "", "0x10", True, 3.5, [1]])
def test_integer_coercion_refuses_non_integers(catalog: Catalog, value: Any) -> None:
    with pytest.raises(InvalidCredential, match="port: must be an integer"):
        catalog.get("postgres").validate_config(
            {"host": "h", "database": "d", "username": "u", "port": value}
        )


def test_field_aliases_are_accepted(catalog: Catalog) -> None:
    flowker = catalog.get("api_key")
    config, secret = flowker.validate(
        {"header_name": "X-Token", "location": "header"}, {"key": "abc"}
    )
    assert config == {"key_name": "X-Token", "location": "header", "prefix": ""}
    assert secret == {"api_key": "abc"}
    assert (
        flowker.validate_config({"query_param_name": "k", "location": "query"})["key_name"] == "k"
    )
    oidc = catalog.get("oidc_client_credentials").validate_config(
        {
            "issuer_url": "https://id.example.com",
            "client_id": "c",
            "token_endpoint_auth_method": "client_secret_post",
        }
    )
    assert oidc["issuer"] == "https://id.example.com"
    assert oidc["auth_method"] == "client_secret_post"
    s3 = catalog.get("s3").validate_config({"aws_access_key_id": "AKIA", "aws_region": "eu-west-1"})
    assert s3 == {"access_key_id": "AKIA", "region": "eu-west-1"}


def test_a_field_given_twice_is_a_problem(catalog: Catalog) -> None:
    with pytest.raises(InvalidCredential) as info:
        catalog.get("api_key").validate_config({"key_name": "A", "header_name": CANARY})
    (problem,) = info.value.problems
    assert problem == FieldProblem(
        "key_name", "is given more than once (as key_name and header_name)"
    )
    assert_no_canary(info.value)


def test_null_means_not_given(catalog: Catalog) -> None:
    config = catalog.get("bearer_token").validate_config({"prefix": None})
    assert config["prefix"] == "Bearer "
    with pytest.raises(InvalidCredential, match="token: is required"):
        catalog.get("bearer_token").validate_secret({"token": None})


def test_empty_prefix_overrides_the_default(catalog: Catalog) -> None:
    assert catalog.get("bearer_token").validate_config({"prefix": ""})["prefix"] == ""


def test_required_fields_must_not_be_empty(catalog: Catalog) -> None:
    with pytest.raises(InvalidCredential, match="token: must not be empty"):
        catalog.get("bearer_token").validate_secret({"token": ""})


def test_defaults_are_copied(catalog: Catalog) -> None:
    ctype = catalog.get("postgres")
    first = ctype.validate_config({"host": "h", "database": "d", "username": "u"})
    first["ssl_mode"] = "disable"
    assert ctype.defaults["ssl_mode"] == "prefer"


def test_unknown_key_that_looks_like_a_secret_is_not_echoed(catalog: Catalog) -> None:
    with pytest.raises(InvalidCredential) as info:
        catalog.get("slack").validate_secret({f"xoxb {CANARY} with spaces": "x", "token": "xoxb-1"})
    [problem] = info.value.problems
    assert problem.field == "secret" and problem.message.startswith("unknown field")
    assert_no_canary(info.value)


def test_non_mapping_input_is_a_problem(catalog: Catalog) -> None:
    with pytest.raises(InvalidCredential, match="config: must be an object"):
        catalog.get("slack").validate_config([CANARY])  # type: ignore[arg-type]


def test_one_of_within_the_secret(catalog: Catalog) -> None:
    es = catalog.get("elasticsearch")
    with pytest.raises(InvalidCredential) as info:
        es.validate_secret({})
    assert info.value.problems == (
        FieldProblem("password", "at least one of password, api_key is required"),
    )
    assert es.validate_secret({"api_key": "k"}) == {"api_key": "k"}


def test_one_of_across_config_and_secret(catalog: Catalog) -> None:
    mongo = catalog.get("mongodb")
    with pytest.raises(InvalidCredential, match="at least one of host, connection_string"):
        mongo.validate({}, {})
    config, secret = mongo.validate({}, {"connection_string": "mongodb+srv://u:p@cluster/db"})
    assert secret == {"connection_string": "mongodb+srv://u:p@cluster/db"}
    assert config["auth_source"] == "admin"
    mongo.validate({"host": "mongo"}, {})


def test_one_of_within_the_config(catalog: Catalog) -> None:
    with pytest.raises(InvalidCredential, match="at least one of token_url, issuer"):
        catalog.get("oauth2_client_credentials").validate_config({"client_id": "c"})


def test_validate_merges_problems_of_both_sides(catalog: Catalog) -> None:
    with pytest.raises(InvalidCredential) as info:
        catalog.get("basic_auth").validate({}, {})
    assert problem_fields(info.value) == {"username", "password"}


@pytest.mark.parametrize(
    "host", ["db.example.com", "10.0.0.5", "::1", "[2001:db8::1]", "localhost", "my_db"]
)
def test_hostname_format_accepts(catalog: Catalog, host: str) -> None:
    assert catalog.get("redis").validate_config({"host": host})["host"] == host


@pytest.mark.parametrize("servers", ["k1:9092", "k1:9092, k2:9093", "10.0.0.1:9092,[::1]:9092"])
def test_host_list_format_accepts(catalog: Catalog, servers: str) -> None:
    config = catalog.get("kafka").validate_config({"bootstrap_servers": servers})
    assert config["bootstrap_servers"] == servers


def test_pem_format(catalog: Catalog) -> None:
    sftp = catalog.get("sftp")
    assert sftp.validate_secret({"private_key": PRIVATE_KEY}) == {"private_key": PRIVATE_KEY}
    with pytest.raises(InvalidCredential, match="private_key: must be a PEM block"):
        sftp.validate_secret({"private_key": CANARY})


# The secretValue round trip (Flow Studio).


def test_single_secret_value_round_trip(catalog: Catalog) -> None:
    slack = catalog.get("slack")
    secret = slack.parse_secret_value("xoxb-123-abc")
    assert secret == {"token": "xoxb-123-abc"}
    assert slack.secret_value_of(slack.validate_secret(secret)) == "xoxb-123-abc"


def test_twilio_secret_value_has_the_flow_studio_shape(catalog: Catalog) -> None:
    twilio = catalog.get("twilio")
    stored = '{"accountSid":"AC0123","authToken":"tok"}'
    secret = twilio.validate_secret(twilio.parse_secret_value(stored))
    assert secret == {"accountSid": "AC0123", "authToken": "tok"}
    assert twilio.secret_value_of({"authToken": "tok", "accountSid": "AC0123"}) == stored


def test_apns_secret_value_round_trip(catalog: Catalog) -> None:
    apns = catalog.get("apns")
    value = json.dumps({"p8Key": PRIVATE_KEY, "teamId": "T1", "keyId": "K1", "bundleId": "com.x"})
    secret = apns.validate_secret(apns.parse_secret_value(value))
    assert json.loads(apns.secret_value_of(secret)) == json.loads(value)
    assert list(json.loads(apns.secret_value_of(secret))) == [
        "p8Key",
        "teamId",
        "keyId",
        "bundleId",
    ]


def test_composite_secret_value_leaves_out_absent_fields(catalog: Catalog) -> None:
    s3 = catalog.get("aws_s3")
    assert s3.secret_value_of({"secret_access_key": "s"}) == '{"secret_access_key":"s"}'


@pytest.mark.parametrize(
    "value", [f'{{"accountSid": "{CANARY}"', f'["{CANARY}"]', CANARY, f'"{CANARY}"']
)
def test_bad_composite_secret_value_is_not_echoed(catalog: Catalog, value: str) -> None:
    with pytest.raises(InvalidCredential) as info:
        catalog.get("twilio").parse_secret_value(value)
    assert info.value.problems == (
        FieldProblem("secretValue", "must be a JSON object with fields accountSid, authToken"),
    )
    assert_no_canary(info.value)


def test_no_secret_type_secret_value(catalog: Catalog) -> None:
    no_auth = catalog.get("none")
    assert no_auth.parse_secret_value("") == {}
    assert no_auth.secret_value_of({}) == ""
    with pytest.raises(InvalidCredential) as info:
        no_auth.parse_secret_value(CANARY)
    assert problem_fields(info.value) == {"secretValue"}
    assert_no_canary(info.value)


def test_secret_value_of_a_missing_single_secret(catalog: Catalog) -> None:
    with pytest.raises(InvalidCredential, match="token: is required"):
        catalog.get("slack").secret_value_of({})


def test_secret_value_of_a_json_secret_is_compact_json() -> None:
    ctype = CredentialType.model_validate(
        {
            "name": "blob",
            "title": "Blob",
            "family": "custom",
            "description": "A JSON secret.",
            "fields": [{"name": "blob", "kind": "json", "secret": True, "required": True}],
        }
    )
    secret = ctype.validate_secret(ctype.parse_secret_value('{"a": [1, 2]}'))
    assert secret == {"blob": {"a": [1, 2]}}
    assert ctype.secret_value_of(secret) == '{"a":[1,2]}'


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("access_key_id", "Access key ID"),
        ("accountSid", "Account SID"),
        ("url", "URL"),
        ("ssl_mode", "SSL mode"),
        ("host", "Host"),
    ],
)
def test_derived_labels(name: str, label: str) -> None:
    assert derive_label(name) == label
    assert FieldSpec(name=name).label == label
