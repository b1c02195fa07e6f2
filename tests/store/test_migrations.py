"""The Alembic migrations create exactly the schema in store/tables.py, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from flowcred.store import migrate
from flowcred.store.engine import make_engine
from flowcred.store.tables import metadata


def test_migrations_match_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        migrate.upgrade(engine)  # idempotent
    finally:
        engine.dispose()
