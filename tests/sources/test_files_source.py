"""The JSON-files source: one file of keys, or a directory of files (``file#key``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowcred.errors import SecretSourceError
from flowcred.sources.base import SecretSource
from flowcred.sources.credentials_files import CredentialsFileSource
from flowcred.testing.source_contract import SecretSourceContract, canary


class TestSingleFile(SecretSourceContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.dir = tmp_path

    def make_source(self, secrets: dict[str, str]) -> SecretSource:
        path = self.dir / "secrets.json"
        path.write_text(json.dumps(secrets), encoding="utf-8")
        return CredentialsFileSource(path)

    def make_broken_source(self) -> SecretSource:
        return CredentialsFileSource(self.dir / "never-written.json")


class TestDirectoryOfFiles(SecretSourceContract):
    """``file#key``: flowgen-style credentials files in one directory."""

    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "credentials"

    def secret_name(self, label: str) -> str:
        return f"task_{label}#password"

    def make_source(self, secrets: dict[str, str]) -> SecretSource:
        self.dir.mkdir(exist_ok=True)
        for name, value in secrets.items():
            file_name, _, key = name.partition("#")
            (self.dir / f"{file_name}.json").write_text(json.dumps({key: value}), "utf-8")
        return CredentialsFileSource(self.dir)

    def make_broken_source(self) -> SecretSource:
        return CredentialsFileSource(self.dir / "missing-directory")


def test_whole_file_and_non_string_values(tmp_path: Path) -> None:
    key_file = {"type": "service_account", "private_key": canary("pk"), "port": 5432}
    (tmp_path / "gcp.json").write_text(json.dumps(key_file), "utf-8")
    source = CredentialsFileSource(tmp_path)
    whole = source.get("gcp")
    assert whole is not None and json.loads(whole.reveal()) == key_file
    port = source.get("gcp#port")
    assert port is not None and port.reveal() == "5432"
    assert source.get("gcp#absent") is None
    assert source.get("absent#key") is None


def test_names_cannot_leave_the_directory(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "outside.json").write_text(json.dumps({"k": canary()}), "utf-8")
    source = CredentialsFileSource(inner)
    assert source.get("../outside#k") is None
    assert source.get("..#k") is None


def test_malformed_json_names_path_and_position_never_content(tmp_path: Path) -> None:
    planted = canary("planted")
    path = tmp_path / "broken.json"
    path.write_text('{\n  "token": "' + planted + '",\n  oops\n}', "utf-8")
    with pytest.raises(SecretSourceError) as caught:
        CredentialsFileSource(path).get("token")
    message = str(caught.value)
    assert str(path) in message and "line 3" in message
    assert planted not in message
