"""Bring a database to the newest schema with Alembic, on every open.

The check is cheap when the schema is current (one SELECT of ``alembic_version``), so every CLI
command and ``serve`` can call it; the upgrade itself runs under the write lock, so two
processes opening a fresh database at once do not both create the tables.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from flowcred.errors import StoreError
from flowcred.store.engine import translate_db_error, write_transaction

_MIGRATIONS = Path(__file__).parent / "migrations"

# Alembic logs "Context impl SQLiteImpl." and "Will assume non-transactional DDL." at INFO each
# time a migration context is made, which is every open: noise on every CLI command and in the
# server log. Upgrades that actually run still show, at WARNING and above only on trouble.
logging.getLogger("alembic").setLevel(logging.WARNING)


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


@lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise StoreError("no database migrations found")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Upgrade the schema to the newest revision if it is behind; a no-op when current."""
    try:
        if current_revision(engine) == head_revision():
            return
        with write_transaction(engine) as conn:
            cfg = _config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except DBAPIError as exc:
        raise translate_db_error(exc, "opening the database", engine.url) from None
