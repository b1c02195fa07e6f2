"""Item 14: database errors say what is wrong (refused, authentication, missing database,
unwritable SQLite file), never the password; not "database migration failed (OperationalError)"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flowcred.broker import open_broker

from ._helpers import cli, closed_port


def admin_url(pg_url: str, *, user: str | None = None, database: str | None = None) -> str:
    scheme, rest = pg_url.split("://", 1)
    userinfo, hostpart = rest.split("@", 1)
    host, _, name = hostpart.partition("/")
    return f"{scheme}://{user or userinfo}:pw-7f3a9@{host}/{database or name}"


def test_refused_connection_names_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("FLOWCRED_DATABASE_URL", f"postgresql+psycopg://app:pw@127.0.0.1:{port}/fc")
    code, _, err = cli("credentials", "list")
    assert code == 1
    assert f"connection refused at 127.0.0.1:{port}" in err
    assert "OperationalError" not in err and "migration" not in err


def test_refused_connection_from_the_python_api_is_database_unavailable(tmp_path: Path) -> None:
    from flowcred.errors import DatabaseUnavailable, StoreError

    port = closed_port()
    with pytest.raises(DatabaseUnavailable, match=f"connection refused at 127.0.0.1:{port}"):
        open_broker(f"postgresql+psycopg://app:pw@127.0.0.1:{port}/fc", home=str(tmp_path))
    assert issubclass(DatabaseUnavailable, StoreError)


@pytest.mark.postgres
def test_missing_database_is_named(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWCRED_DATABASE_URL", admin_url(pg_url, database="flowcred_no_such_db"))
    code, _, err = cli("credentials", "list")
    assert code == 1
    assert "database 'flowcred_no_such_db' does not exist at 127.0.0.1:5432" in err
    assert "pw-7f3a9" not in err


@pytest.mark.postgres
def test_unknown_role_is_an_authentication_failure(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test server trusts 127.0.0.1, so a wrong password cannot be provoked; an unknown role
    # is refused in the same authentication step.
    monkeypatch.setenv("FLOWCRED_DATABASE_URL", admin_url(pg_url, user="flowcred_no_such_role"))
    code, _, err = cli("credentials", "list")
    assert code == 1
    assert "authentication failed: role 'flowcred_no_such_role' does not exist" in err
    assert "pw-7f3a9" not in err


def test_password_authentication_failure_is_named() -> None:
    from flowcred.store.engine import diagnose_db_error

    # libpq's text for a wrong password (not reproducible against the trust-auth test server).
    message = (
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        'FATAL:  password authentication failed for user "app"'
    )
    assert diagnose_db_error(message) == "authentication failed for user 'app' at 127.0.0.1:5432"


def test_sqlite_home_under_a_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("FLOWCRED_HOME", str(blocker / "home"))
    code, _, err = cli("credentials", "list")
    assert code == 1
    assert "cannot create the directory" in err and str(blocker / "home") in err
    assert "Traceback" not in err


def test_sqlite_database_path_that_is_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "flowcred.db").mkdir(parents=True)
    monkeypatch.setenv("FLOWCRED_HOME", str(home))
    code, _, err = cli("credentials", "list")
    assert code == 1
    assert "SQLite database file" in err and str(home / "flowcred.db") in err
    assert "it is a directory" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_sqlite_directory_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    monkeypatch.setenv("FLOWCRED_HOME", str(locked / "home"))
    try:
        code, _, err = cli("credentials", "list")
    finally:
        locked.chmod(0o700)
    assert code == 1 and "permission denied" in err


def test_sqlite_unopenable_file_diagnosis_names_the_file() -> None:
    from sqlalchemy.engine import make_url

    from flowcred.store.engine import diagnose_db_error

    url = make_url("sqlite:////srv/flowcred/flowcred.db")
    said = diagnose_db_error("attempt to write a readonly database", url)
    assert said is not None and "/srv/flowcred/flowcred.db" in said and "read-only" in said
    said = diagnose_db_error("unable to open database file", url)
    assert said is not None and "cannot open the SQLite database file" in said
