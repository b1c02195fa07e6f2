"""Item 9 (TLS part): ``serve --tls-cert/--tls-key`` with a missing or malformed file prints one
``error:`` line naming the file and what is wrong, exit code 2, before uvicorn starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.tls_certificates import self_signed

from ._helpers import cli, closed_port


def write_pair(directory: Path, name: str = "tls") -> tuple[Path, Path]:
    return self_signed(directory, cert_name=f"{name}.crt", key_name=f"{name}.key")


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """uvicorn.run replaced by a recorder: these tests must never start a server."""
    import uvicorn

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append(k))
    return calls


def serve(cert: Path, key: Path) -> tuple[int, str, str]:
    return cli(
        "serve", "--port", str(closed_port()), "--tls-cert", str(cert), "--tls-key", str(key)
    )


def assert_one_line(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: invalid TLS file: ")
    for needle in needles:
        assert needle in err, err


def test_missing_certificate_file(tmp_path: Path, no_server: list[object]) -> None:
    _, key = write_pair(tmp_path)
    code, _, err = serve(tmp_path / "nope.crt", key)
    assert_one_line(code, err, "--tls-cert", "nope.crt", "no such file")
    assert no_server == []


def test_missing_key_file(tmp_path: Path, no_server: list[object]) -> None:
    cert, _ = write_pair(tmp_path)
    code, _, err = serve(cert, tmp_path / "nope.key")
    assert_one_line(code, err, "--tls-key", "nope.key", "no such file")


def test_malformed_certificate(tmp_path: Path, no_server: list[object]) -> None:
    _, key = write_pair(tmp_path)
    bad = tmp_path / "bad.crt"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    code, _, err = serve(bad, key)
    assert_one_line(code, err, "--tls-cert", "bad.crt", "not a PEM certificate")


def test_key_given_as_certificate(tmp_path: Path, no_server: list[object]) -> None:
    _, key = write_pair(tmp_path)
    code, _, err = serve(key, key)
    assert_one_line(code, err, "--tls-cert", "not a PEM certificate")


def test_malformed_key(tmp_path: Path, no_server: list[object]) -> None:
    cert, _ = write_pair(tmp_path)
    bad = tmp_path / "bad.key"
    bad.write_text("garbage\n")
    code, _, err = serve(cert, bad)
    assert_one_line(code, err, "--tls-key", "bad.key", "not a PEM private key")


def test_key_of_another_certificate(tmp_path: Path, no_server: list[object]) -> None:
    cert, _ = write_pair(tmp_path, "one")
    _, other_key = write_pair(tmp_path, "two")
    code, _, err = serve(cert, other_key)
    assert_one_line(code, err, "--tls-key", "two.key", "does not belong to the certificate")


def test_directory_as_certificate(tmp_path: Path, no_server: list[object]) -> None:
    _, key = write_pair(tmp_path)
    code, _, err = serve(tmp_path, key)
    assert_one_line(code, err, "--tls-cert", "not a file")


def test_valid_pair_reaches_uvicorn(tmp_path: Path, no_server: list[dict[str, object]]) -> None:
    cert, key = write_pair(tmp_path)
    code, _, err = serve(cert, key)
    assert code == 0, err
    assert [c["ssl_certfile"] for c in no_server] == [str(cert)]
