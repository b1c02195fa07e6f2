"""The connection tests of systems without a server on the CI machines (``live_tested = False``).

What can be proven without the server: each driver of the ``flowcred[connectors]`` extra
imports; each test, pointed at a closed loopback port, fails within its timeout with a clear
network reason ("connection refused") and never with the password in the message; a missing
driver gives "install flowcred[connectors]" instead of an ImportError. Whether each one logs in
to a real server is NOT proven here (see the README's list of untested types).
"""

from __future__ import annotations

import base64
import importlib
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.connectors.google_key_stub import GoogleAccount
from tests.connectors.provider_stub import CANARY, closed_port, failure, target

from flowcred.connectors.base import ConnectionTest, registered
from flowcred.connectors.optional_drivers import load_driver

TIMEOUT = 1.5
SHORT = 0.7  # for the silent-server tests, which always wait the whole timeout
# How much longer than its timeout a test may take: drivers add their own bookkeeping.
SLACK = 1.5

DRIVERS = {
    "mongodb": "pymongo",
    "kafka": "kafka",
    "mssql": "pytds",
    "oracle": "oracledb",
    "elasticsearch": "elasticsearch",
    "azure_blob": "azure.storage.blob",
}


def closed_target(kind: str, port: int) -> Any:
    """A valid credential of ``kind`` whose destination is 127.0.0.1:``port``."""
    loopback = f"http://127.0.0.1:{port}"
    service_account = {
        "service_account_json": GoogleAccount().key_file(loopback + "/token"),
    }
    specs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "mongodb": (
            {"host": "127.0.0.1", "port": port, "username": "app"},
            {"password": CANARY},
        ),
        "kafka": (
            {
                "bootstrap_servers": f"127.0.0.1:{port}",
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "username": "app",
            },
            {"password": CANARY},
        ),
        "mssql": (
            {"host": "127.0.0.1", "port": port, "username": "sa"},
            {"password": CANARY},
        ),
        "oracle": (
            {"host": "127.0.0.1", "port": port, "service_name": "FREEPDB1", "username": "app"},
            {"password": CANARY},
        ),
        "elasticsearch": (
            {"urls": loopback, "username": "elastic"},
            {"password": CANARY},
        ),
        "snowflake": (
            {"account": "acme-prod", "username": "app", "api_base_url": loopback},
            {"password": CANARY},
        ),
        "bigquery": ({"project_id": "acme", "api_base_url": loopback}, service_account),
        "gcs": ({"bucket": "acme-data", "api_base_url": loopback}, service_account),
        "azure_blob": (
            {"account_name": "acmedata", "blob_endpoint": f"{loopback}/acmedata"},
            {"account_key": base64.b64encode(CANARY.encode()).decode()},
        ),
    }
    config, secret = specs[kind]
    return target(kind, config, secret)


KINDS = [
    "mongodb",
    "kafka",
    "mssql",
    "oracle",
    "elasticsearch",
    "snowflake",
    "bigquery",
    "gcs",
    "azure_blob",
]


def family(kind: str) -> ConnectionTest:
    importlib.import_module("flowcred.connectors.families")
    return registered()[kind]()


@pytest.mark.parametrize("module", sorted({*DRIVERS.values(), "h2", "OpenSSL"}))
def test_each_driver_of_the_extra_imports(module: str) -> None:
    assert load_driver(module, module) is not None


@pytest.mark.parametrize("kind", KINDS)
def test_each_is_registered_and_marked_not_live_tested(kind: str) -> None:
    test = family(kind)
    assert test.kind == kind and test.live_tested is False


@pytest.mark.parametrize("kind", KINDS)
def test_a_closed_port_is_connection_refused_within_the_timeout(kind: str) -> None:
    built = closed_target(kind, closed_port())
    started = time.monotonic()
    message = failure(lambda: family(kind).check(built, TIMEOUT))
    elapsed = time.monotonic() - started
    assert "connection refused" in message, message
    assert message.startswith("cannot reach"), message
    assert CANARY not in message and "127.0.0.1" not in message
    assert elapsed < TIMEOUT + SLACK


@pytest.mark.parametrize("kind", sorted(DRIVERS))
def test_a_missing_driver_says_which_extra_to_install(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = DRIVERS[kind].split(".")[0]
    for name in list(sys.modules):
        if name == top or name.startswith(top + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, top, None)  # makes "import top" raise ImportError
    message = failure(lambda: family(kind).check(closed_target(kind, closed_port()), TIMEOUT))
    assert message.startswith("the driver for this test is not installed: pip install")
    assert "flowcred[connectors]" in message


@pytest.mark.parametrize(
    ("kind", "config", "secret", "expected"),
    [
        (
            "mongodb",
            {},
            {"connection_string": f"mongodb://app:{CANARY}@127.0.0.1:notaport/db"},
            "the MongoDB connection settings are invalid",
        ),
        (
            "azure_blob",
            {"account_name": "acmedata", "blob_endpoint": "http://127.0.0.1:9/acmedata"},
            {"account_key": f"not base64 {CANARY}!"},
            "account_key is not a valid base64 storage key",
        ),
    ],
)
def test_unusable_settings_fail_before_any_connection_without_the_secret(
    kind: str, config: dict[str, Any], secret: dict[str, Any], expected: str
) -> None:
    message = failure(lambda: family(kind).check(target(kind, config, secret), TIMEOUT))
    assert message == expected


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("kind", KINDS)
def test_a_silent_server_is_timed_out_within_the_timeout(kind: str, silent_port: int) -> None:
    built = closed_target(kind, silent_port)
    started = time.monotonic()
    message = failure(lambda: family(kind).check(built, SHORT))
    elapsed = time.monotonic() - started
    assert "timed out" in message, message
    assert CANARY not in message
    assert elapsed < SHORT + SLACK


def test_registering_the_families_imports_no_driver() -> None:
    """The broker starts without the extra: drivers load only inside check()."""
    import subprocess

    probe = (
        "import sys, flowcred.connectors.families; "
        f"print(','.join(m for m in {sorted({d.split('.')[0] for d in DRIVERS.values()})!r} "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""
