"""Item 8: a database password in FLOWCRED_DATABASE_URL never reaches output, messages or reprs."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowcred.broker import open_broker
from flowcred.settings import load_settings

from ._helpers import cli, closed_port

CANARY = "Canary-Pw-7f3a9"


def with_password(url: str, password: str = CANARY) -> str:
    """``url`` with a password for its user (the test server trusts 127.0.0.1 and ignores it)."""
    scheme, rest = url.split("://", 1)
    userinfo, host = rest.split("@", 1)
    return f"{scheme}://{userinfo.split(':')[0]}:{password}@{host}"


def test_mask_url_replaces_only_the_password() -> None:
    from flowcred.url_masking import mask_text, mask_url

    assert mask_url(f"postgresql+psycopg://app:{CANARY}@db:5432/fc") == (
        "postgresql+psycopg://app:***@db:5432/fc"
    )
    assert mask_url("postgresql://db:5432/fc") == "postgresql://db:5432/fc"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    # '@' inside an unencoded password, a query string, and libpq keyword form.
    assert CANARY not in mask_url(f"postgresql://app:{CANARY}@x@db/fc?sslmode=require")
    assert mask_text(f"invalid dsn: host=db password={CANARY} user=app") == (
        "invalid dsn: host=db password=*** user=app"
    )


def test_settings_repr_masks_the_database_password() -> None:
    settings = load_settings(database_url=f"postgresql+psycopg://app:{CANARY}@db/fc")
    assert CANARY not in repr(settings) and CANARY not in str(settings)
    assert "app:***@db" in repr(settings)
    assert settings.display_database_url == "postgresql+psycopg://app:***@db/fc"


@pytest.mark.postgres
def test_init_masks_the_database_password(
    clean_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWCRED_DATABASE_URL", with_password(clean_pg_url))
    code, out, err = cli("init")
    assert code == 0, err
    assert CANARY not in out + err
    assert "postgres:***@127.0.0.1" in out


@pytest.mark.postgres
def test_serve_start_up_masks_the_database_password(
    clean_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setenv("FLOWCRED_DATABASE_URL", with_password(clean_pg_url))
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    code, out, err = cli("serve", "--port", str(closed_port()))
    assert code == 0, err
    assert CANARY not in out + err
    assert "database: postgresql+psycopg://postgres:***@127.0.0.1" in out


def test_connection_error_masks_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv(
        "FLOWCRED_DATABASE_URL", f"postgresql+psycopg://app:{CANARY}@127.0.0.1:{port}/fc"
    )
    code, out, err = cli("credentials", "list")
    assert code == 1
    assert CANARY not in out + err
    assert f"127.0.0.1:{port}" in err


def test_python_api_errors_and_repr_mask_the_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://app:{CANARY}@127.0.0.1:{closed_port()}/fc"
    with pytest.raises(Exception) as info:
        open_broker(url, home=str(tmp_path / "home"))
    assert CANARY not in str(info.value) and CANARY not in repr(info.value)


@pytest.mark.postgres
def test_broker_repr_has_no_password(clean_pg_url: str, tmp_path: Path) -> None:
    broker = open_broker(with_password(clean_pg_url), home=str(tmp_path / "home"))
    try:
        assert CANARY not in repr(broker) and CANARY not in repr(broker.settings)
    finally:
        broker.close()


def test_readiness_check_reports_a_driver_error_without_its_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from flowcred.errors import StoreError
    from flowcred.store import kek_versions

    broker = open_broker(settings=load_settings(home=tmp_path / "home"))
    try:

        def down(*_: object) -> None:
            raise OperationalError(
                "SELECT 1", {}, Exception(f'server at "db", port 5432 failed: password={CANARY}')
            )

        monkeypatch.setattr(kek_versions, "open_ring", down)
        with pytest.raises(StoreError) as info:
            broker.check_ready()
        assert CANARY not in str(info.value)
        assert str(info.value).startswith("readiness check failed")
    finally:
        broker.close()
