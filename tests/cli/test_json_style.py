"""Item 18: one --json style (the REST API's camelCase and its UTC ``Z`` timestamps), help that
says what ``credentials list`` does, error prefixes that name the right thing, quiet Alembic."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from flowcred.api.schemas import CredentialPublic, VersionPublic
from flowcred.broker import open_broker
from flowcred.settings import load_settings

from ._helpers import add_api_key, cli

OPAQUE = {"config", "details", "fields", "headers", "query", "cookies", "entry"}
ZULU = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def keys_and_times(data: Any, path: str = "") -> tuple[set[str], list[str]]:
    """Every JSON key (outside config, headers and the like) and every timestamp value."""
    keys: set[str] = set()
    times: list[str] = []
    if isinstance(data, list):
        for item in data:
            k, t = keys_and_times(item, path)
            keys |= k
            times += t
    elif isinstance(data, dict):
        for key, value in data.items():
            keys.add(key)
            if key.endswith("At") and value is not None:
                times.append(value)
            if key not in OPAQUE:
                k, t = keys_and_times(value, f"{path}.{key}")
                keys |= k
                times += t
    return keys, times


def json_of(*args: str, input: str | None = None) -> Any:
    code, out, err = cli(*args, "--json", input=input)
    assert code == 0, err
    return json.loads(out)


def test_every_json_output_uses_camel_case_keys_and_z_timestamps() -> None:
    add_api_key("stripe", "--expires-at", "2030-01-01T00:00:00")
    outputs = [
        json_of("credentials", "list"),
        json_of("credentials", "show", "stripe"),
        json_of("credentials", "rotate", "stripe", "--secret-stdin", input="s3cret-two"),
        json_of("credentials", "edit", "stripe", "--set", "prefix=Key "),
        json_of("resolve", "stripe"),
        json_of("apikeys", "create", "--role", "viewer"),
        json_of("apikeys", "list"),
        json_of("audit", "list"),
        json_of("audit", "verify"),
        json_of("keys", "status"),
    ]
    seen_times = 0
    for data in outputs:
        keys, times = keys_and_times(data)
        assert not [k for k in keys if "_" in k], data
        assert all(isinstance(t, str) and ZULU.match(t) for t in times), times
        seen_times += len(times)
    assert seen_times > 10  # control: timestamps were there to check
    shown = outputs[1]
    assert shown["expiresAt"] == "2030-01-01T00:00:00Z"


def test_credential_json_uses_the_rest_api_names() -> None:
    add_api_key("stripe")
    shown = json_of("credentials", "show", "stripe")
    versions = shown.pop("versions")
    assert set(shown) <= set(CredentialPublic.model_fields)
    assert {"credentialId", "tenantId", "currentVersion", "createdAt"} <= set(shown)
    assert set(versions[0]) == set(VersionPublic.model_fields)
    assert shown["config"]["key_name"] == "X-API-Key"  # field names are data, not renamed


def test_list_without_tenant_lists_every_tenant_as_its_help_says() -> None:
    add_api_key("stripe")
    add_api_key("stripe", "--tenant", "acme")
    listed = json_of("credentials", "list")
    assert sorted(c["tenantId"] for c in listed) == ["acme", "default"]
    code, out, _ = cli("credentials", "list", "--help")
    assert code == 0
    assert "every tenant" in " ".join(out.split())
    assert "default: default" not in out


@pytest.mark.parametrize(
    ("args", "prefix"),
    [
        (["audit", "list", "--since", "yesterday"], "error: invalid audit query: --since"),
        (["apikeys", "create", "--role", "boss"], "error: invalid API key input: role"),
        (["apikeys", "revoke", "nosuchkey"], "error: invalid API key input: id"),
        (["serve", "--tls-cert", "cert.pem"], "error: invalid TLS option: --tls-key"),
    ],
)
def test_error_prefixes_name_the_right_thing(args: list[str], prefix: str) -> None:
    code, _, err = cli(*args)
    assert code == 2
    assert err.startswith(prefix), err
    assert "invalid credential" not in err


def test_alembic_does_not_log_at_info_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(home=tmp_path / "home")
    open_broker(settings=settings).close()  # the first open creates the schema
    with caplog.at_level(logging.INFO):
        open_broker(settings=settings).close()
    assert [r for r in caplog.records if r.name.startswith("alembic")] == []
