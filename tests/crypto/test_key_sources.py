"""Key sources: the key file on disk and FLOWCRED_MASTER_KEY, as an operator meets them."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from flowcred.clock import ManualClock
from flowcred.crypto import (
    EnvKeySource,
    KeyFileSource,
    KeySource,
    build_ring,
    fingerprint,
    generate_key,
    key_source_from_settings,
)
from flowcred.errors import ConfigurationError, InsecureKeyFile
from flowcred.settings import FlowcredSettings

CANARY = "CANARYc0ffee"


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Run with umask 000, the worst case for files that must end up private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "master.key"


def _write_raw(path: Path, content: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)


def _key_file(*keys: bytes) -> bytes:
    entries = [{"created_at": "2026-01-01T00:00:00Z", "key": _b64(k)} for k in keys]
    return json.dumps({"format": "flowcred-kek-file/1", "keys": entries}).encode()


class TestKeyFileSource:
    def test_missing_file_means_no_keys_yet(self, key_path: Path) -> None:
        assert KeyFileSource(key_path).load() == []
        assert not key_path.parent.exists()

    @pytest.mark.usefixtures("permissive_umask")
    def test_create_initial_writes_a_private_file_in_a_private_directory(
        self, key_path: Path
    ) -> None:
        clock = ManualClock(datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
        source = KeyFileSource(key_path, clock=clock)
        key = source.create_initial()
        assert len(key) == 32
        assert _mode(key_path) == 0o600
        assert _mode(key_path.parent) == 0o700
        assert source.load() == [key]
        assert json.loads(key_path.read_text()) == {
            "format": "flowcred-kek-file/1",
            "keys": [{"created_at": "2026-03-04T05:06:07Z", "key": _b64(key)}],
        }
        # The temporary file was moved into place, not left behind.
        assert os.listdir(key_path.parent) == ["master.key"]

    def test_an_existing_directory_keeps_its_mode(self, tmp_path: Path) -> None:
        tmp_path.chmod(0o755)
        KeyFileSource(tmp_path / "master.key").create_initial()
        assert _mode(tmp_path) == 0o755

    def test_create_initial_refuses_to_overwrite(self, key_path: Path) -> None:
        source = KeyFileSource(key_path)
        key = source.create_initial()
        with pytest.raises(ConfigurationError, match="already exists; refusing to overwrite"):
            source.create_initial()
        assert source.load() == [key]

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o601, 0o660, 0o666])
    def test_refuses_a_file_others_can_access(self, key_path: Path, mode: int) -> None:
        source = KeyFileSource(key_path)
        key = source.create_initial()
        key_path.chmod(mode)
        with pytest.raises(InsecureKeyFile) as info:
            source.load()
        message = str(info.value)
        assert str(key_path) in message
        assert f"{mode:04o}" in message
        assert f"run: chmod 600 {key_path}" in message
        assert _b64(key) not in message
        # Following the advice fixes it.
        key_path.chmod(0o600)
        assert source.load() == [key]

    @pytest.mark.parametrize("mode", [0o400, 0o600, 0o700])
    def test_owner_only_modes_are_accepted(self, key_path: Path, mode: int) -> None:
        key = generate_key()
        _write_raw(key_path, _key_file(key), mode)
        assert KeyFileSource(key_path).load() == [key]

    @pytest.mark.parametrize(
        "content",
        [
            f"not json {CANARY}".encode(),
            b"\xff\xfe" + CANARY.encode(),
            f'["{CANARY}"]'.encode(),
            json.dumps({"format": CANARY, "keys": []}).encode(),
            json.dumps({"format": "flowcred-kek-file/1", "keys": []}).encode(),
            json.dumps({"format": "flowcred-kek-file/1", "keys": CANARY}).encode(),
            json.dumps({"format": "flowcred-kek-file/1", "keys": [CANARY]}).encode(),
            json.dumps({"format": "flowcred-kek-file/1", "keys": [{"key": CANARY + "!"}]}).encode(),
            json.dumps(
                {"format": "flowcred-kek-file/1", "keys": [{"key": _b64(CANARY.encode())}]}
            ).encode(),
            json.dumps({"format": "flowcred-kek-file/1", "keys": [{"key": 12345}]}).encode(),
            b"",
        ],
        ids=[
            "not-json",
            "not-utf8",
            "list",
            "wrong-format",
            "no-keys",
            "keys-not-list",
            "entry-not-object",
            "bad-base64",
            "wrong-length",
            "key-not-string",
            "empty",
        ],
    )
    def test_garbage_is_a_configuration_error_naming_the_path_not_the_content(
        self, key_path: Path, content: bytes
    ) -> None:
        _write_raw(key_path, content)
        with pytest.raises(ConfigurationError) as info:
            KeyFileSource(key_path).load()
        message = str(info.value)
        assert message.startswith(f"Failed to parse key file at {key_path}: ")
        assert CANARY not in message
        # No inner exception (a JSON decoder's message could quote the content) is chained on.
        exc = info.value
        assert exc.__cause__ is None
        assert exc.__context__ is None or exc.__suppress_context__

    def test_a_bad_second_key_is_reported_by_position(self, key_path: Path) -> None:
        good = generate_key()
        _write_raw(key_path, _key_file(good, b"short"))
        with pytest.raises(ConfigurationError, match=r"keys\[1\]\.key is not base64 of 32 bytes"):
            KeyFileSource(key_path).load()

    def test_unreadable_path_is_a_configuration_error(self, key_path: Path) -> None:
        key_path.mkdir(parents=True, mode=0o700)
        with pytest.raises(ConfigurationError, match=f"key file at {key_path}"):
            KeyFileSource(key_path).load()

    @pytest.mark.usefixtures("permissive_umask")
    def test_add_key_puts_the_new_key_first_and_keeps_the_older_ones(self, key_path: Path) -> None:
        clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
        source = KeyFileSource(key_path, clock=clock)
        first = source.create_initial()
        clock.advance(86400)
        second = generate_key()
        source.add_key(second)
        clock.advance(86400)
        third = generate_key()
        source.add_key(third)
        assert source.load() == [third, second, first]
        created = [e["created_at"] for e in json.loads(key_path.read_text())["keys"]]
        assert created == ["2026-01-03T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"]
        assert _mode(key_path) == 0o600
        assert os.listdir(key_path.parent) == ["master.key"]

    def test_add_key_refusals(self, key_path: Path) -> None:
        source = KeyFileSource(key_path)
        with pytest.raises(ConfigurationError, match="no key file at"):
            source.add_key(generate_key())
        key = source.create_initial()
        with pytest.raises(ValueError, match="already in"):
            source.add_key(key)
        with pytest.raises(ValueError, match="32 bytes"):
            source.add_key(b"short")
        key_path.chmod(0o644)
        with pytest.raises(InsecureKeyFile):
            source.add_key(generate_key())
        key_path.chmod(0o600)
        assert source.load() == [key]

    def test_description_and_repr_name_the_path_only(self, key_path: Path) -> None:
        source = KeyFileSource(key_path)
        key = source.create_initial()
        assert source.description == f"key file {key_path}"
        assert str(key_path) in repr(source)
        assert _b64(key) not in repr(source)
        assert isinstance(source, KeySource)

    def test_first_run_then_rotation_with_build_ring(self, key_path: Path) -> None:
        source = KeyFileSource(key_path)
        first = source.create_initial()
        registered = {1: fingerprint(first)}
        build_ring(source.load(), registered, 1, source_description=source.description)
        second = generate_key()
        source.add_key(second)
        registered[2] = fingerprint(second)
        ring = build_ring(source.load(), registered, 2, source_description=source.description)
        assert ring.versions == {1, 2}


class TestEnvKeySource:
    def test_parses_comma_separated_keys_newest_first(self) -> None:
        new, old = generate_key(), generate_key()
        source = EnvKeySource(f" {_b64(new)} , {_b64(old)} ")
        assert source.load() == [new, old]
        assert source.description == "FLOWCRED_MASTER_KEY"
        assert isinstance(source, KeySource)

    @pytest.mark.parametrize("value", ["", "   "])
    def test_empty_means_no_keys(self, value: str) -> None:
        assert EnvKeySource(value).load() == []

    @pytest.mark.parametrize(
        ("suffix", "position"),
        [(",", 2), (f",{CANARY}", 2), (",c2hvcnQ=", 2)],
        ids=["empty-part", "not-base64", "wrong-length"],
    )
    def test_bad_part_is_named_by_position_not_value(self, suffix: str, position: int) -> None:
        key = generate_key()
        with pytest.raises(ConfigurationError) as info:
            EnvKeySource(_b64(key) + suffix).load()
        message = str(info.value)
        assert f"key {position} of 2" in message
        assert CANARY not in message
        assert _b64(key) not in message

    def test_refuses_to_create_or_add_keys(self) -> None:
        source = EnvKeySource(_b64(generate_key()))
        with pytest.raises(ConfigurationError, match="operator supplies the keys"):
            source.create_initial()
        with pytest.raises(ConfigurationError) as info:
            source.add_key(generate_key())
        message = str(info.value)
        assert "prepend it (comma-separated) to FLOWCRED_MASTER_KEY" in message
        assert "`flowcred keys rotate` finishes" in message

    def test_repr_hides_the_value(self) -> None:
        key = generate_key()
        source = EnvKeySource(_b64(key))
        for text in (repr(source), str(source), repr([source])):
            assert _b64(key) not in text
            assert _b64(key)[:8] not in text


class TestFromSettings:
    def test_master_key_selects_the_environment(self, tmp_path: Path) -> None:
        key = generate_key()
        settings = FlowcredSettings(home=tmp_path, master_key=SecretStr(_b64(key)), key_file=None)
        source = key_source_from_settings(settings)
        assert isinstance(source, EnvKeySource)
        assert source.load() == [key]

    def test_otherwise_the_key_file(self, tmp_path: Path) -> None:
        settings = FlowcredSettings(home=tmp_path, master_key=None, key_file=None)
        source = key_source_from_settings(settings)
        assert isinstance(source, KeyFileSource)
        assert source.path == tmp_path / "master.key"

    def test_explicit_key_file(self, tmp_path: Path) -> None:
        settings = FlowcredSettings(home=tmp_path, master_key=None, key_file=tmp_path / "k.json")
        source = key_source_from_settings(settings)
        assert source.description == f"key file {tmp_path / 'k.json'}"
