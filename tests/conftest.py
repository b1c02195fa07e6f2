"""Shared fixtures: an isolated FLOWCRED_HOME per test, brokers on SQLite and real PostgreSQL.

PostgreSQL tests use a database created for this test session on 127.0.0.1:5432 and dropped at the
end. When the server is absent they skip with the reason on a developer's laptop, but under
``CI=true`` they fail: CI must prove the PostgreSQL path, not skip it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.oauth_support.fixtures import authz_server, oidc_provider  # noqa: F401  (fixtures)

from flowcred.broker import Broker, open_broker
from flowcred.settings import load_settings

PG_ADMIN_DSN = os.environ.get(
    "FLOWCRED_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """A parameter holding a canary gets a fixed id: canaries are random per process, and
    pytest-xdist refuses to run when its workers collect different test names."""
    if isinstance(val, str) and "canary" in val.lower():
        return f"{argname}-canary"
    return None


def require_service(reason: str) -> None:
    """Skip locally, fail under CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"service required under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No FLOWCRED_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("FLOWCRED_") and name != "FLOWCRED_TEST_PG_ADMIN_DSN":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOWCRED_HOME", str(tmp_path / "home"))
    yield


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, as a SQLAlchemy URL."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        require_service(f"PostgreSQL not reachable at 127.0.0.1:5432 ({type(exc).__name__})")
        raise  # unreachable: require_service always raises
    name = f"flowcred_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def reset_postgres(url: str) -> None:
    """Empty every flowcred table (and the KEK registry) so each test starts fresh."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            ).fetchall()
        ]
        if tables:
            joined = ", ".join(f'"{t}"' for t in tables)
            # The audit table refuses TRUNCATE through triggers; a test reset switches them off
            # for the duration, as only the table owner can.
            if "audit_events" in tables:
                conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
            conn.execute(f"TRUNCATE {joined} RESTART IDENTITY CASCADE")
            if "audit_events" in tables:
                conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test once on the embedded SQLite file and once on real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'flowcred.db'}"
    url: str = request.getfixturevalue("pg_url")
    reset_postgres(url)
    return url


@pytest.fixture
def broker(database_url: str, tmp_path: Path) -> Iterator[Broker]:
    settings = load_settings(home=tmp_path / "home", database_url=database_url)
    b = open_broker(settings=settings)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def sqlite_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker on the embedded default only (for tests that inspect the SQLite file)."""
    b = open_broker(settings=load_settings(home=tmp_path / "home"))
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def clean_pg_url(pg_url: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    reset_postgres(pg_url)
    return pg_url
