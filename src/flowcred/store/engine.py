"""Database engines: the embedded SQLite default and PostgreSQL.

Two kinds of connection are handed out:

* :func:`write_transaction` — a SQLAlchemy connection inside a transaction that takes the write
  lock up front (SQLite ``BEGIN IMMEDIATE``), so two writers never deadlock upgrading a read
  lock and a concurrent writer waits (``busy_timeout``) instead of failing.
* :class:`HotReader` — one raw DB-API connection per thread in autocommit mode, for the resolve
  path. Resolving is a single primary-key read, and SQLAlchemy's pool checkout and result
  machinery would cost several times the read itself, so this path talks to the driver directly
  with a fixed SQL string. Nothing else uses it.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from flowcred.errors import ConfigurationError, DatabaseUnavailable, StoreError
from flowcred.url_masking import mask_text

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "flowcred_write"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``; for SQLite also create the parent directory (mode 0700).

    SQLite runs in WAL mode with ``synchronous=FULL``: a committed rotation survives a power loss,
    not only a process crash, because losing a new secret after the old one was revoked at its
    provider would strand every flow that uses it.
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigurationError("FLOWCRED_DATABASE_URL is not a valid database URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _create_sqlite_file(Path(parsed.database))
        engine = create_engine(
            parsed,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() not in ("psycopg", ""):
            raise ConfigurationError("PostgreSQL URLs must use psycopg 3: postgresql+psycopg://...")
        if parsed.get_driver_name() == "":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    raise ConfigurationError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql+psycopg"
    )


def _create_sqlite_file(db_path: Path) -> None:
    """Create the directory (0700) and the file (0600) or say, by path, why that is impossible."""
    try:
        db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot create the directory {str(db_path.parent)!r} of the SQLite database: "
            f"{_os_reason(exc)}"
        ) from None
    try:
        # Create the file owner-only before SQLite does: it gives its -wal and -shm files
        # the database file's mode, so metadata stays private too.
        os.close(os.open(db_path, os.O_CREAT | os.O_RDWR, 0o600))
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot open the SQLite database file {str(db_path)!r} for reading and writing: "
            f"{_os_reason(exc)}"
        ) from None


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    if isinstance(exc, NotADirectoryError | FileExistsError):
        return "a part of the path is a file, not a directory"
    return (exc.strerror or type(exc).__name__).lower()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Driver-level autocommit: transactions are begun explicitly below, so the sqlite3
        # module's own implicit BEGIN cannot open a transaction we did not ask for.
        dbapi_connection.isolation_level = None
        _sqlite_pragmas(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _sqlite_pragmas(dbapi_connection: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction holding the write lock; commits on success, else rolls back."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for consistent reads (a deferred transaction on SQLite)."""
    with engine.connect() as conn, conn.begin():
        yield conn


def connect_raw(engine: Engine) -> Any:
    """A new raw driver connection in autocommit mode (transactions are begun explicitly)."""
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    conn = engine.dialect.connect(*cargs, **cparams)
    if is_sqlite(engine):
        conn.isolation_level = None
        _sqlite_pragmas(conn)
    else:
        conn.autocommit = True
    return conn


def translate_placeholders(engine: Engine, sql: str) -> str:
    """``?`` placeholders to the driver's style (``%s`` for psycopg)."""
    return sql.replace("?", "%s") if engine.dialect.paramstyle in ("format", "pyformat") else sql


class HotReader:
    """Per-thread raw driver connections for the single-row reads of the resolve path.

    Connections are autocommit, so a read never leaves a transaction (or a PostgreSQL snapshot)
    open between calls. SQL is written with ``?`` placeholders and translated once for drivers
    that use ``%s``.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._format_style = engine.dialect.paramstyle in ("format", "pyformat")
        self._sqlite = is_sqlite(engine)
        # True when reads are local file reads (SQLite) rather than network round trips.
        self.is_local = self._sqlite

    def sql(self, text: str) -> str:
        """Translate a ``?``-placeholder statement for this driver (do it once, not per call)."""
        return text.replace("?", "%s") if self._format_style else text

    def _connect(self) -> Any:
        conn = connect_raw(self._engine)
        with self._lock:
            self._all.append(conn)
        self._local.conn = conn
        return conn

    def fetchone(self, sql: str, params: Sequence[Any]) -> Any:
        """Run a prepared statement (see :meth:`sql`) and return its first row or ``None``."""
        conn = getattr(self._local, "conn", None) or self._connect()
        try:
            if self._sqlite:
                return conn.execute(sql, params).fetchone()
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchone()
        except self._engine.dialect.loaded_dbapi.Error as exc:
            # Drop this thread's connection so the next call reconnects, and report the failure
            # without the driver's text, which may quote parameters.
            self._local.conn = None
            raise StoreError(f"database read failed ({type(exc).__name__})") from None

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except Exception:
                pass  # Closing is best effort at shutdown.
        self._local = threading.local()


def translate_db_error(exc: DBAPIError, what: str, url: URL | None = None) -> StoreError:
    """A StoreError saying what went wrong, never the driver's parameters or a password.

    Connection problems a person can fix — refused connection, failed authentication, missing
    database, unwritable SQLite file — become :class:`~flowcred.errors.DatabaseUnavailable`
    naming host and port (or the file), database and user. Anything else names the operation
    and the driver error class only: a driver's message may quote the values of a statement.
    ``url`` (the engine's) fills in what the driver's message leaves out.
    """
    orig = exc.orig if exc.orig is not None else exc
    diagnosis = diagnose_db_error(str(orig), url)
    if diagnosis is not None:
        return DatabaseUnavailable(f"{what} failed: {diagnosis}")
    return StoreError(f"{what} failed ({type(orig).__name__})")


_SERVER_AT = re.compile(r'server at "(?P<host>[^"]*)"(?: \([^)]*\))?, port (?P<port>\d+)')
_SOCKET_AT = re.compile(r'server on socket "(?P<socket>[^"]*)"')
_QUOTED_ROLE = re.compile(r'role "(?P<name>[^"]*)" does not exist')
_QUOTED_DB = re.compile(r'database "(?P<name>[^"]*)" does not exist')
_AUTH_USER = re.compile(r'authentication failed for user "(?P<name>[^"]*)"')
_RESOLVE_HOST = re.compile(r"(?:resolve host|translate host name) '?\"?(?P<host>[^'\" :]+)")


def diagnose_db_error(message: str, url: URL | None = None) -> str | None:
    """What a driver's connection-level ``message`` means, in words, or ``None`` if it is not one.

    Works on the text because libpq reports connection failures without an SQLSTATE. The
    result names host, port, user, database or file, which are not secret; it never contains
    the message itself, and is passed through :func:`~flowcred.url_masking.mask_text` anyway.
    """
    text = message.lower()
    sqlite = url is not None and url.get_backend_name() == "sqlite"
    where = _where(message, url)
    user = url.username if url is not None and url.username else None
    if "connection refused" in text:
        said = f"connection refused at {where}" if where else "connection refused"
        return mask_text(said + " (is the database server running and listening there?)")
    if m := _AUTH_USER.search(message):
        return mask_text(f"authentication failed for user {m['name']!r} at {where or 'the server'}")
    if "authentication failed" in text or "no password supplied" in text:
        who = f" for user {user!r}" if user else ""
        return mask_text(f"authentication failed{who} at {where or 'the server'}")
    if m := _QUOTED_ROLE.search(message):
        return mask_text(
            f"authentication failed: role {m['name']!r} does not exist at {where or 'the server'}"
        )
    if "no pg_hba.conf entry" in text:
        who = f" for user {user!r}" if user else ""
        return mask_text(
            f"the server at {where or '?'} refuses connections from this host{who} (pg_hba.conf)"
        )
    if m := _QUOTED_DB.search(message):
        return mask_text(f"database {m['name']!r} does not exist at {where or 'the server'}")
    if m := _RESOLVE_HOST.search(message):
        return mask_text(f"unknown database host {m['host']!r}")
    if "timeout expired" in text or "timed out" in text:
        return mask_text(f"connection to {where or 'the database server'} timed out")
    if sqlite and url is not None:
        path = url.database or ""
        if "unable to open database file" in text:
            return mask_text(
                f"cannot open the SQLite database file {path!r} (missing directory or no "
                "permission to read or write it)"
            )
        if "readonly database" in text:
            return mask_text(
                f"the SQLite database file {path!r} is read-only (check the permissions of the "
                "file and its directory)"
            )
        if "file is not a database" in text:
            return mask_text(f"{path!r} is not a SQLite database file")
        if "disk i/o error" in text:
            return mask_text(f"disk I/O error on the SQLite database file {path!r}")
    return None


def _where(message: str, url: URL | None) -> str | None:
    """``host:port`` (or the socket) from the engine URL, else from the driver's message."""
    if url is not None and url.get_backend_name() != "sqlite" and url.host:
        return f"{url.host}:{url.port or 5432}"
    if m := _SERVER_AT.search(message):
        return f"{m['host']}:{m['port']}"
    if m := _SOCKET_AT.search(message):
        return m["socket"]
    return None
