"""The Alembic migrations create exactly the schema in store/tables.py, on both databases."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import exc, text

from flowcred.store import migrate
from flowcred.store.engine import make_engine
from flowcred.store.tables import metadata

EXPRESSION_INDEXES = {"ix_audit_resource_id", "ix_audit_actor"}


def test_migrations_match_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn, warnings.catch_warnings():
            # The audit table's JSON expression indexes cannot be reflected; they are checked
            # by name below instead.
            warnings.filterwarnings("ignore", "Skipped unsupported reflection", exc.SAWarning)
            context = MigrationContext.configure(
                conn,
                opts={"include_object": lambda _o, name, kind, *_: name not in EXPRESSION_INDEXES},
            )
            diff = compare_metadata(context, metadata)
        assert diff == []
        migrate.upgrade(engine)  # idempotent
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                names = {
                    r[0]
                    for r in conn.execute(
                        text("SELECT name FROM sqlite_master WHERE type = 'index'")
                    )
                }
            else:
                names = {
                    r[0]
                    for r in conn.execute(
                        text("SELECT indexname FROM pg_indexes WHERE tablename = 'audit_events'")
                    )
                }
        assert EXPRESSION_INDEXES <= names
    finally:
        engine.dispose()
