"""Helpers shared by the CLI hardening tests: run the command, find a closed loopback port."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from flowcred.cli.main import app

runner = CliRunner()


def cli(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def add_api_key(name: str = "stripe", *extra: str, secret: str = "s3cret-value") -> None:
    code, _, err = cli(
        "credentials",
        "add",
        "--type",
        "api_key",
        "--name",
        name,
        "--set",
        "key_name=X-API-Key",
        "--set",
        "location=header",
        *extra,
        "--secret-stdin",
        input=secret,
    )
    assert code == 0, err
