"""Shared fixtures of the REST API tests: a broker, API keys for every role and tenant, an app.

``api_env`` is the usual entry point (embedded SQLite). ``make_api_env`` builds more of them, with
other settings (CORS, HTTPS, body limit) or another database (``database_url``). Each environment
holds one raw API key per role (admin, developer, viewer, worker) and tenant (platform ``*``,
``acme``, ``globex``), and a :class:`fastapi.testclient.TestClient` entered as a context manager
so the app's lifespan runs.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from flowcred.api.app import create_app
from flowcred.broker import Broker, open_broker
from flowcred.records import Credential
from flowcred.settings import FlowcredSettings, load_settings

# Starlette warns once, at import, that it runs on httpx rather than httpx2; the project runs with
# warnings as errors, and that warning is about the test client's dependencies, not flowcred.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROLES = ("admin", "developer", "viewer", "worker")
TENANTS = ("*", "acme", "globex")
API_KEY_HEADER = "X-API-Key"
# A well-formed but unknown key (right prefix, id and length), and a plainly malformed one.
BAD_KEY = "fck_aaaaaaaaaaaa_" + "A" * 43


@dataclass
class ApiEnv:
    """One running app with its broker, settings, raw API keys and a test client."""

    broker: Broker
    app: FastAPI
    client: TestClient
    settings: FlowcredSettings
    keys: dict[tuple[str, str], str] = field(default_factory=dict)
    _seq: int = 0

    def headers(self, role: str, tenant: str = "*", **extra: str) -> dict[str, str]:
        """The ``X-API-Key`` header of the key with ``role`` in ``tenant`` (plus ``extra``)."""
        return {API_KEY_HEADER: self.keys[(role, tenant)], **extra}

    def admin(self, **extra: str) -> dict[str, str]:
        return self.headers("admin", "*", **extra)

    def new_client(self, **kwargs: Any) -> TestClient:
        """Another client of the same app (enter it with ``with``)."""
        return TestClient(self.app, **kwargs)

    def seed(
        self,
        tenant: str = "acme",
        *,
        name: str | None = None,
        type: str = "api_key",
        secret: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> Credential:
        """A credential created straight through the broker (not through the API under test)."""
        self._seq += 1
        return self.broker.credentials.create(
            name=name or f"seed {tenant} {self._seq}",
            type=type,
            tenant=tenant,
            config=config,
            secret=secret if secret is not None else {"api_key": f"seed-key-{self._seq:06d}"},
        )


@contextmanager
def open_api_env(
    tmp_path: Path,
    *,
    database_url: str | None = None,
    client_kwargs: dict[str, Any] | None = None,
    **overrides: Any,
) -> Iterator[ApiEnv]:
    """Open a broker, make the 12 keys, build the app and enter a TestClient on it.

    FLOWCRED_* variables of the calling shell are ignored (module-scoped users run before the
    per-test isolation of ``tests/conftest.py``).
    """
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("FLOWCRED_") and name != "FLOWCRED_TEST_PG_ADMIN_DSN":
                mp.delenv(name)
        mp.setenv("FLOWCRED_HOME", str(tmp_path / "home"))
        settings_kw: dict[str, Any] = {"home": tmp_path / "home", **overrides}
        if database_url is not None:
            settings_kw["database_url"] = database_url
        settings = load_settings(**settings_kw)
        broker = open_broker(settings=settings)
    try:
        keys = {}
        for role in ROLES:
            for tenant in TENANTS:
                label = "platform" if tenant == "*" else tenant
                _, raw = broker.api_keys.create(role=role, tenant=tenant, name=f"{role}-{label}")
                keys[(role, tenant)] = raw
        app = create_app(settings, broker=broker)
        with TestClient(app, **(client_kwargs or {})) as client:
            yield ApiEnv(broker=broker, app=app, client=client, settings=settings, keys=keys)
    finally:
        broker.close()


@pytest.fixture
def api_env(tmp_path: Path) -> Iterator[ApiEnv]:
    """The API on the embedded SQLite store, with default settings."""
    with open_api_env(tmp_path) as env:
        yield env


@pytest.fixture
def make_api_env(tmp_path: Path) -> Iterator[Callable[..., ApiEnv]]:
    """A factory of API environments with other settings; each gets its own home."""
    with ExitStack() as stack:
        count = 0

        def make(**overrides: Any) -> ApiEnv:
            nonlocal count
            count += 1
            return stack.enter_context(open_api_env(tmp_path / f"env{count}", **overrides))

        yield make


@pytest.fixture(scope="module")
def module_api_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiEnv]:
    """One API environment shared by a module's tests (for expensive runs such as the matrix)."""
    with open_api_env(tmp_path_factory.mktemp("api")) as env:
        yield env


@pytest.fixture
def any_db_api_env(database_url: str, tmp_path: Path) -> Iterator[ApiEnv]:
    """The API on each database of ``database_url`` (SQLite, and PostgreSQL when present)."""
    with open_api_env(tmp_path, database_url=database_url) as env:
        yield env


@pytest.fixture
def open_api_env_factory() -> Callable[..., Any]:
    """:func:`open_api_env` itself, for tests that manage the environment's lifetime."""
    return open_api_env


@pytest.fixture
def serve() -> Iterator[Any]:
    """Run an app with real uvicorn on 127.0.0.1 (a free port) in a thread; returns its URL."""
    servers: list[uvicorn.Server] = []
    threads: list[threading.Thread] = []

    def start(app: Any) -> str:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        servers.append(server)
        threads.append(thread)
        return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.should_exit = True
    for thread in threads:
        thread.join(timeout=10)
