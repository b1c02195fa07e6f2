"""Credential ids are never reused on SQLite: rebuild ``credentials`` with AUTOINCREMENT.

Without AUTOINCREMENT SQLite hands out ``max(id) + 1``, so deleting the newest credential and
creating another gave the new one the old id: a flow bound to the old id (or holding its integer
``credentialId``) then silently received the new credential's secret, and the two audit histories
mixed. PostgreSQL ids come from a sequence, which never goes back; nothing changes there.

SQLite cannot add AUTOINCREMENT to a table in place, so the table is rebuilt, keeping every row
and its id. The migration runs inside flowcred's write transaction, where ``PRAGMA foreign_keys``
cannot be switched off, and dropping a parent table performs an implicit DELETE, whose ON DELETE
CASCADE would empty ``secret_versions``. So every table with a foreign key to ``credentials`` is
rebuilt first as a copy that references the *new* table; only then are the old tables dropped and
the new ones renamed into place (renaming rewrites the references to the final name). Indexes and
triggers of the rebuilt tables are recreated from their stored SQL.

``sqlite_sequence`` starts at the highest id the database has ever handed out: the highest id
kept, or the highest credential id named on the audit chain (a credential deleted before this
migration must not have its id given out again either).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import re
from typing import Any

from alembic import op
from sqlalchemy import text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_NEW = "__rebuild_0006"


def _master(conn: Any, kind: str, table: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = :kind AND tbl_name = :table "
            "AND sql IS NOT NULL"
        ),
        {"kind": kind, "table": table},
    ).all()
    return [(str(name), str(sql)) for name, sql in rows]


def _children(conn: Any) -> list[str]:
    """Tables with a foreign key to ``credentials`` (secret_versions, and any added later)."""
    tables = [
        str(name)
        for (name,) in conn.execute(
            text(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name <> 'credentials'"
            )
        ).all()
    ]
    children = []
    for table in tables:
        fks = conn.execute(text(f'PRAGMA foreign_key_list("{table}")')).all()
        if any(str(fk[2]) == "credentials" for fk in fks):
            children.append(table)
    return children


def _renamed_create(sql: str, old: str, new: str) -> str:
    """``CREATE TABLE old (...)`` as ``CREATE TABLE new (...)``."""
    out, count = re.subn(
        rf'^\s*CREATE\s+TABLE\s+"?{re.escape(old)}"?',
        f'CREATE TABLE "{new}"',
        sql,
        count=1,
        flags=re.IGNORECASE,
    )
    if count != 1:
        raise RuntimeError(f"migration 0006: unexpected schema of table {old}")
    return out


def _with_autoincrement(sql: str) -> str:
    """The credentials table's SQL with ``id INTEGER ... PRIMARY KEY AUTOINCREMENT``."""
    out, n_col = re.subn(
        r'(\bid"?\s+INTEGER)\s+NOT\s+NULL\s*,',
        r"\1 NOT NULL PRIMARY KEY AUTOINCREMENT,",
        sql,
        count=1,
        flags=re.IGNORECASE,
    )
    out, n_pk = re.subn(r',\s*PRIMARY\s+KEY\s*\(\s*"?id"?\s*\)', "", out, count=1, flags=re.I)
    if n_col != 1 or n_pk != 1:
        raise RuntimeError("migration 0006: unexpected schema of table credentials")
    return out


def _highest_id_ever(conn: Any) -> int:
    kept = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM credentials")).scalar_one()
    audited = 0
    has_audit = conn.execute(
        text("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'")
    ).scalar_one()
    if has_audit:
        audited = conn.execute(
            text(
                "SELECT COALESCE(MAX(CAST(json_extract(body, '$.resource_id') AS INTEGER)), 0) "
                "FROM audit_events "
                "WHERE json_extract(body, '$.resource_type') = 'credential' "
                "AND json_extract(body, '$.resource_id') GLOB '[0-9]*' "
                "AND NOT json_extract(body, '$.resource_id') GLOB '*[^0-9]*' "
                "AND length(json_extract(body, '$.resource_id')) <= 18"
            )
        ).scalar_one()
    return max(int(kept or 0), int(audited or 0))


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return  # PostgreSQL: SERIAL ids come from a sequence, which never reuses a value.
    [(_, credentials_sql)] = _master(conn, "table", "credentials")
    if re.search(r"\bAUTOINCREMENT\b", credentials_sql, re.IGNORECASE):
        return  # created by a flowcred that already declares it
    highest = _highest_id_ever(conn)
    conn.execute(text("PRAGMA legacy_alter_table = OFF"))  # renames rewrite FK references
    children = _children(conn)
    saved = {
        table: _master(conn, "index", table) + _master(conn, "trigger", table)
        for table in ["credentials", *children]
    }
    parent_new = f"credentials{_NEW}"
    conn.execute(
        text(_renamed_create(_with_autoincrement(credentials_sql), "credentials", parent_new))
    )
    conn.execute(text(f'INSERT INTO "{parent_new}" SELECT * FROM credentials'))
    for child in children:
        [(_, child_sql)] = _master(conn, "table", child)
        child_sql = _renamed_create(child_sql, child, f"{child}{_NEW}")
        child_sql, n = re.subn(
            r'(REFERENCES\s+)"?credentials"?(\s*\()',
            rf'\1"{parent_new}"\2',
            child_sql,
            flags=re.IGNORECASE,
        )
        if n < 1:
            raise RuntimeError(f"migration 0006: unexpected schema of table {child}")
        conn.execute(text(child_sql))
        conn.execute(text(f'INSERT INTO "{child}{_NEW}" SELECT * FROM "{child}"'))
    for child in children:
        conn.execute(text(f'DROP TABLE "{child}"'))  # a child: dropping it cascades nowhere
    conn.execute(text("DROP TABLE credentials"))  # no table references it any more
    conn.execute(text(f'ALTER TABLE "{parent_new}" RENAME TO credentials'))
    for child in children:
        conn.execute(text(f'ALTER TABLE "{child}{_NEW}" RENAME TO "{child}"'))
    for objects in saved.values():
        for _name, sql in objects:
            conn.execute(text(sql))
    # Inserting the kept ids set the sequence to max(id); raise it to the highest id ever used.
    conn.execute(text("DELETE FROM sqlite_sequence WHERE name = 'credentials'"))
    conn.execute(
        text("INSERT INTO sqlite_sequence (name, seq) VALUES ('credentials', :seq)"),
        {"seq": highest},
    )
    problems = conn.execute(text("PRAGMA foreign_key_check")).all()
    if problems:
        raise RuntimeError("migration 0006: foreign keys broken by the rebuild; nothing changed")


def downgrade() -> None:
    """Nothing to undo that matters: AUTOINCREMENT only stops ids from being reused."""
