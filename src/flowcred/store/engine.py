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
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from flowcred.errors import ConfigurationError, StoreError

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
            db_path = Path(parsed.database)
            db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Create the file owner-only before SQLite does: it gives its -wal and -shm files
            # the database file's mode, so metadata stays private too.
            os.close(os.open(db_path, os.O_CREAT | os.O_RDWR, 0o600))
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


def translate_db_error(exc: DBAPIError, what: str) -> StoreError:
    """A StoreError naming the operation and the driver error class, never its parameters."""
    orig = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
    return StoreError(f"{what} failed ({orig})")
