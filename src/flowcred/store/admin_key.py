"""The first platform admin key: created once on an empty store and written to a 0600 file.

Split out of :mod:`flowcred.store.api_keys` (which re-exports :func:`ensure_admin_key`): this is
the one place an API key touches the file system, and it needs care of its own (exclusive
creation, no partial file, no stored key that nobody holds).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from flowcred.errors import ConfigurationError
from flowcred.store.api_key_format import DEFAULT_LIFETIME, PLATFORM_TENANT
from flowcred.store.engine import is_sqlite, translate_db_error, write_transaction
from flowcred.store.tables import api_keys

if TYPE_CHECKING:
    from flowcred.store.api_keys import ApiKeyStore

ADMIN_KEY_FILE = "admin.key"
INITIAL_ADMIN_NAME = "initial admin"


def _write_new_file(path: Path, content: str) -> None:
    """Create ``path`` with mode 0600 holding ``content``; never replaces an existing file.

    Written to a private temporary name, synced, then hard-linked into place: the link fails if
    the name exists (the O_EXCL rule) and the final name never shows a partial file.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:
            # A file system without hard links: create the final name exclusively instead.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def ensure_admin_key(store: ApiKeyStore, home: Path) -> str | None:
    """Create the first platform admin key when there is no key at all; return it, or ``None``.

    Only when the database holds no API key (revoked ones count) and none is configured: then a
    key with role ``admin``, tenant ``*``, name ``"initial admin"`` and the default expiry is
    created, written to ``home / "admin.key"`` (mode 0600) and returned for the caller to print
    once. The file is written before the key commits, so a crash cannot leave a stored key that
    nobody has; the check and the insert share one locked transaction, so two processes starting
    at once make one key. An existing ``admin.key`` is never overwritten: if one is there while
    the database has no key, :class:`ConfigurationError` asks the operator to move it away.
    """
    if store.has_bootstrap_keys:
        return None
    if store.count_stored() > 0:  # cheap check first; repeated under the lock
        return None
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return _create_initial_admin(store, home / ADMIN_KEY_FILE)


def _create_initial_admin(store: ApiKeyStore, path: Path) -> str | None:
    """See :func:`ensure_admin_key`: insert + file write in one locked transaction."""
    written = False
    try:
        with write_transaction(store.engine) as conn:
            if not is_sqlite(store.engine):
                # SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL needs a
                # lock that makes "count, then insert" atomic across processes.
                conn.exec_driver_sql("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE")
            if conn.execute(select(func.count()).select_from(api_keys)).scalar_one() > 0:
                return None
            now = store.clock.now()
            _, raw = store.insert_key(
                conn,
                role="admin",
                tenant=PLATFORM_TENANT,
                name=INITIAL_ADMIN_NAME,
                expires_at=now + DEFAULT_LIFETIME,
                now=now,
            )
            try:
                _write_new_file(path, raw + "\n")
            except FileExistsError:
                raise ConfigurationError(
                    f"{path} exists but the database has no API key: move the stale file "
                    "away and run again"
                ) from None
            except OSError as exc:
                raise ConfigurationError(f"cannot write {path} ({type(exc).__name__})") from None
            written = True
    except DBAPIError as exc:
        if written:
            # The commit failed after the file was written: the key in it was never stored.
            with contextlib.suppress(OSError):
                path.unlink()
        raise translate_db_error(exc, "creating the first admin API key") from None
    return raw
