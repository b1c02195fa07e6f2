"""Tests for loading the catalog files and looking types up."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from flowcred.catalog import Catalog, CredentialType, default_catalog, load_catalog
from flowcred.errors import ConfigurationError, InvalidCredential, UnknownCredentialType

DATA_FILES = sorted(
    entry.name
    for entry in resources.files("flowcred.catalog").joinpath("data").iterdir()
    if entry.name.endswith(".yaml")
)

MINIMAL_TYPE = """\
name: {name}
title: Example
family: custom
provider: Example
description: An example type.
fields:
  - name: token
    secret: true
    required: true
request:
  style: bearer
  secret_field: token
"""


def write_type(directory: Path, name: str, text: str | None = None) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(text if text is not None else MINIMAL_TYPE.format(name=name))
    return path


def test_there_are_type_files() -> None:
    assert len(DATA_FILES) >= 30


@pytest.mark.parametrize("file_name", DATA_FILES)
def test_every_data_file_loads_on_its_own(tmp_path: Path, file_name: str) -> None:
    source = resources.files("flowcred.catalog").joinpath("data", file_name)
    (tmp_path / file_name).write_text(source.read_text(encoding="utf-8"))
    catalog = load_catalog(tmp_path)
    assert catalog.names() == [file_name.removesuffix(".yaml")]


def test_default_catalog_has_one_type_per_file(catalog: Catalog) -> None:
    assert catalog.names() == [name.removesuffix(".yaml") for name in DATA_FILES]
    assert len(catalog) == len(DATA_FILES)


def test_names_and_aliases_are_unique(catalog: Catalog) -> None:
    seen: list[str] = []
    for ctype in catalog:
        seen.extend([ctype.name, *ctype.aliases])
    assert len(seen) == len(set(seen))


def test_every_type_is_described(catalog: Catalog) -> None:
    for ctype in catalog:
        assert ctype.title and ctype.provider and ctype.description, ctype.name
        assert "\n" not in ctype.description, ctype.name
        for spec in ctype.fields:
            assert spec.help, f"{ctype.name}.{spec.name}"
            assert spec.label, f"{ctype.name}.{spec.name}"


def test_every_placement_names_existing_fields(catalog: Catalog) -> None:
    for ctype in catalog:
        for name in ctype.request.field_names():
            assert ctype.field(name).name == name, ctype.name


def test_families_are_populated(catalog: Catalog) -> None:
    assert {t.name for t in catalog.by_family("messaging")} == {
        "slack",
        "smtp",
        "sendgrid",
        "twilio",
        "vonage",
        "fcm",
        "apns",
    }
    assert {"no_auth", "api_key", "bearer_token", "basic_auth", "oauth2"} <= {
        t.name for t in catalog.by_family("custom")
    }
    assert [t.name for t in catalog.by_family("service_account")] == ["google_service_account"]
    assert len(catalog.by_family("connector")) >= 19


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("bearer", "bearer_token"),
        ("basic", "basic_auth"),
        ("none", "no_auth"),
        ("oidc_client_credentials", "oauth2_client_credentials"),
        ("service_account_jwt", "google_service_account"),
        ("postgresql", "postgres"),
        ("Bearer", "bearer_token"),
        ("sql-server", "mssql"),
    ],
)
def test_type_aliases_resolve(catalog: Catalog, alias: str, canonical: str) -> None:
    assert catalog.get(alias).name == canonical
    assert alias in catalog


def test_flowker_auth_type_names_all_resolve(catalog: Catalog) -> None:
    for name in ("none", "api_key", "bearer", "basic", "oidc_client_credentials", "oidc_user"):
        assert name in catalog


def test_unknown_type_raises(catalog: Catalog) -> None:
    with pytest.raises(UnknownCredentialType) as info:
        catalog.get("telepathy")
    assert isinstance(info.value, InvalidCredential)
    assert "telepathy" not in catalog
    assert 42 not in catalog


def test_iteration_is_sorted(catalog: Catalog) -> None:
    names = [ctype.name for ctype in catalog]
    assert names == sorted(names) == catalog.names()


def test_default_catalog_is_cached() -> None:
    assert default_catalog() is default_catalog()


def test_source_of_names_the_file(catalog: Catalog) -> None:
    assert catalog.source_of("basic").endswith("basic_auth.yaml")


def test_loads_a_directory(tmp_path: Path) -> None:
    write_type(tmp_path, "example")
    (tmp_path / "README.txt").write_text("not a type")
    catalog = load_catalog(tmp_path)
    assert catalog.names() == ["example"]
    assert isinstance(catalog.get("example"), CredentialType)


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    write_type(tmp_path, "good")
    write_type(tmp_path, "broken", "name: broken\nfields: [\n  - {name: x\n")
    with pytest.raises(ConfigurationError, match=r"broken\.yaml.*not valid YAML"):
        load_catalog(tmp_path)


def test_invalid_type_names_the_file_and_problem(tmp_path: Path) -> None:
    text = MINIMAL_TYPE.format(name="bad").replace("family: custom", "family: telepathy")
    write_type(tmp_path, "bad", text)
    with pytest.raises(ConfigurationError, match=r"bad\.yaml is invalid: family"):
        load_catalog(tmp_path)


def test_placement_naming_a_missing_field_fails(tmp_path: Path) -> None:
    text = MINIMAL_TYPE.format(name="bad").replace("secret_field: token", "secret_field: tokn")
    write_type(tmp_path, "bad", text)
    with pytest.raises(ConfigurationError, match=r"bad\.yaml.*request\.secret_field names 'tokn'"):
        load_catalog(tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    required: true\n", "    required: true\n    default: x\n", "cannot have a default"),
        ("    secret: true\n", "    secret: true\n    pattern: '(['\n", "not a valid regular"),
        ("    secret: true\n", "    secret: true\n    kind: integer\n", "must be string, text"),
        ("request:\n", "one_of: [[token, nothing]]\nrequest:\n", "one_of names unknown"),
        ("  style: bearer\n", "  style: basic\n", "needs username_field"),
        ("  style: bearer\n", "  style: fields\n", "takes no field names"),
        ("family: custom\n", "family: custom\nsurprise: 1\n", "surprise"),
    ],
)
def test_inconsistent_declarations_fail(tmp_path: Path, old: str, new: str, expected: str) -> None:
    text = MINIMAL_TYPE.format(name="bad")
    assert old in text
    write_type(tmp_path, "bad", text.replace(old, new, 1))
    with pytest.raises(ConfigurationError, match=r"bad\.yaml") as info:
        load_catalog(tmp_path)
    assert expected in str(info.value)


def test_default_that_fails_its_own_checks_is_refused(tmp_path: Path) -> None:
    text = MINIMAL_TYPE.format(name="bad").replace(
        "request:", "  - name: port\n    kind: integer\n    format: port\n    default: 0\nrequest:"
    )
    write_type(tmp_path, "bad", text)
    with pytest.raises(ConfigurationError, match="the default must be a port number"):
        load_catalog(tmp_path)


def test_file_name_must_match_type_name(tmp_path: Path) -> None:
    write_type(tmp_path, "one", MINIMAL_TYPE.format(name="two"))
    with pytest.raises(ConfigurationError, match=r"one\.yaml declares name 'two'"):
        load_catalog(tmp_path)


def test_duplicate_alias_names_both_files(tmp_path: Path) -> None:
    write_type(tmp_path, "first", MINIMAL_TYPE.format(name="first") + "aliases: [shared]\n")
    write_type(tmp_path, "second", MINIMAL_TYPE.format(name="second") + "aliases: [shared]\n")
    with pytest.raises(ConfigurationError) as info:
        load_catalog(tmp_path)
    message = str(info.value)
    assert "first.yaml" in message and "second.yaml" in message and "'shared'" in message


def test_alias_equal_to_another_type_name_is_refused(tmp_path: Path) -> None:
    write_type(tmp_path, "first")
    write_type(tmp_path, "second", MINIMAL_TYPE.format(name="second") + "aliases: [first]\n")
    with pytest.raises(ConfigurationError, match=r"first\.yaml and .*second\.yaml"):
        load_catalog(tmp_path)


def test_duplicate_field_alias_is_refused(tmp_path: Path) -> None:
    text = MINIMAL_TYPE.format(name="bad").replace(
        "request:", "  - name: other\n    aliases: [token]\nrequest:"
    )
    write_type(tmp_path, "bad", text)
    with pytest.raises(ConfigurationError, match="declared twice"):
        load_catalog(tmp_path)


def test_missing_or_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_catalog(tmp_path / "nowhere")
    with pytest.raises(ConfigurationError, match="holds no"):
        load_catalog(tmp_path)


def test_non_mapping_file_is_refused(tmp_path: Path) -> None:
    write_type(tmp_path, "bad", "- just\n- a list\n")
    with pytest.raises(ConfigurationError, match=r"bad\.yaml must hold a mapping"):
        load_catalog(tmp_path)
