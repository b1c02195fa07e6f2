"""The Kubernetes secret-volume source, on the kubelet's real ``..data`` symlink layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flowcred.errors import SecretSourceError
from flowcred.sources.base import SecretSource
from flowcred.sources.kubernetes_secrets import KubernetesSecretsSource
from flowcred.testing.source_contract import SecretSourceContract, canary


def mount(
    directory: Path, secrets: dict[str, str], version: str = "..2026_12_03_09_00_00.1"
) -> None:
    """Write ``secrets`` the way the kubelet does: files in a timestamped directory,
    ``..data`` pointing at it (swapped atomically), ``key -> ..data/key`` per key."""
    directory.mkdir(parents=True, exist_ok=True)
    versioned = directory / version
    versioned.mkdir()
    for key, value in secrets.items():
        (versioned / key).write_text(value + "\n", encoding="utf-8")  # kubectl keeps the newline
    tmp_link = directory / "..data_tmp"
    tmp_link.symlink_to(version)
    os.replace(tmp_link, directory / "..data")
    for key in secrets:
        link = directory / key
        if not link.is_symlink():
            link.symlink_to(f"..data/{key}")


class TestKubernetesSecrets(SecretSourceContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "secrets"

    def make_source(self, secrets: dict[str, str]) -> SecretSource:
        mount(self.dir, secrets)
        return KubernetesSecretsSource(self.dir)

    def make_broken_source(self) -> SecretSource:
        return KubernetesSecretsSource(self.dir / "not-mounted")


def test_an_update_swaps_every_key_at_once(tmp_path: Path) -> None:
    first, second = canary("first"), canary("second")
    mount(tmp_path, {"api_token": first})
    source = KubernetesSecretsSource(tmp_path)
    assert source.get("api_token").reveal() == first  # type: ignore[union-attr]
    mount(tmp_path, {"api_token": second}, version="..2026_12_03_10_00_00.2")
    assert source.get("api_token").reveal() == second  # type: ignore[union-attr]


def test_only_one_trailing_newline_is_stripped(tmp_path: Path) -> None:
    (tmp_path / "pem").write_text("line one\nline two\n\n", encoding="utf-8")
    found = KubernetesSecretsSource(tmp_path).get("pem")
    assert found is not None and found.reveal() == "line one\nline two\n"


def test_secret_hash_key_reads_a_mount_below(tmp_path: Path) -> None:
    value = canary()
    mount(tmp_path / "sales-google", {"client_secret": value})
    found = KubernetesSecretsSource(tmp_path).get("sales-google#client_secret")
    assert found is not None and found.reveal() == value


def test_kubelet_entries_and_escapes_are_not_secrets(tmp_path: Path) -> None:
    mount(tmp_path / "m", {"k": canary()})
    (tmp_path / "outside").write_text(canary(), encoding="utf-8")
    (tmp_path / "m" / "escape").symlink_to(tmp_path / "outside")
    source = KubernetesSecretsSource(tmp_path / "m")
    assert source.get("..data") is None
    assert source.get("../outside") is None
    with pytest.raises(SecretSourceError, match="outside"):
        source.get("escape")


def test_non_utf8_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(SecretSourceError, match="UTF-8"):
        KubernetesSecretsSource(tmp_path).get("blob")
