"""Reading the audit chain: filtered queries, export for SIEM ingestion, and verification.

Filters read fields out of each event's authenticated body with the database's JSON functions
(``json_extract`` on SQLite, ``->>`` on PostgreSQL), so what a query matches on is exactly what
the chain protects. ``resource_id`` and ``actor`` are backed by expression indexes; the other
filters scan (each index would cost every audit commit another page write).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine

from flowcred.audit.chain import AuditChainBroken, Row, VerifyReport, verify_rows
from flowcred.audit.checkpoint import read_checkpoint
from flowcred.audit.events import AuditEvent, format_time
from flowcred.crypto import KekRing, audit_mac
from flowcred.errors import FieldProblem, InvalidCredential, KeyUnavailable
from flowcred.store.engine import connect_raw, is_sqlite, translate_placeholders

VERIFY_BATCH = 5_000
MAX_PAGE = 1_000

# Filter name -> JSON path inside the body. A fixed list: names never reach SQL from callers.
_FIELDS = {
    "event_type": ("event_type",),
    "action": ("action",),
    "result": ("result",),
    "resource_type": ("resource_type",),
    "resource_id": ("resource_id",),
    "tenant": ("tenant",),
    "execution_id": ("execution_id",),
    "actor": ("actor", "id"),
    "created_at": ("created_at",),
}


@dataclass(frozen=True)
class AuditFilter:
    """Query filters; every given one must match. Times compare as UTC instants."""

    event_type: str | None = None
    action: str | None = None
    result: str | None = None
    resource_type: str | None = None
    resource_id: str | int | None = None
    tenant: str | None = None
    execution_id: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditLog:
    """Query, export and verify the chain of one database."""

    def __init__(
        self,
        engine: Engine,
        *,
        ring_for: Callable[[int], KekRing],
        checkpoint_path: Path | None,
    ) -> None:
        self._engine = engine
        # A ring holding the given KEK version, reloaded if another process added it since.
        self._ring_for = ring_for
        self._checkpoint_path = checkpoint_path
        self._sqlite = is_sqlite(engine)

    def _expr(self, name: str) -> str:
        path = _FIELDS[name]
        if self._sqlite:
            return f"json_extract(body, '$.{'.'.join(path)}')"
        if len(path) == 1:
            return f"((body::jsonb) ->> '{path[0]}')"
        return f"(((body::jsonb) -> '{path[0]}') ->> '{path[1]}')"

    def _where(self, flt: AuditFilter, after_id: int | None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for name in (
            "event_type",
            "action",
            "result",
            "resource_type",
            "tenant",
            "execution_id",
            "actor",
        ):
            value = getattr(flt, name)
            if value is not None:
                clauses.append(f"{self._expr(name)} = ?")
                params.append(str(value))
        if flt.resource_id is not None:
            clauses.append(f"{self._expr('resource_id')} = ?")
            params.append(str(flt.resource_id))
        if flt.since is not None:
            clauses.append(f"{self._expr('created_at')} >= ?")
            params.append(format_time(flt.since))
        if flt.until is not None:
            clauses.append(f"{self._expr('created_at')} <= ?")
            params.append(format_time(flt.until))
        if after_id is not None:
            clauses.append("id > ?")
            params.append(after_id)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        # Pooled connections: a page of events is a handful of rows, not worth a new connect.
        with self._engine.connect() as conn:
            result = conn.exec_driver_sql(translate_placeholders(self._engine, sql), tuple(params))
            return [tuple(row) for row in result]

    def list(
        self,
        flt: AuditFilter | None = None,
        *,
        after_id: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[AuditEvent]:
        """Events matching ``flt``, in id order (or newest first), after ``after_id``.

        ``limit`` is capped at 1,000 per page; page on with the last id seen as ``after_id``
        (oldest first) — or, newest first, pass ``before`` semantics by filtering on time.
        """
        if limit < 1 or limit > MAX_PAGE:
            raise InvalidCredential([FieldProblem("limit", f"must be between 1 and {MAX_PAGE}")])
        where, params = self._where(flt or AuditFilter(), None if newest_first else after_id)
        if newest_first and after_id is not None:
            where += (" AND " if where else " WHERE ") + "id < ?"
            params.append(after_id)
        order = "DESC" if newest_first else "ASC"
        rows = self._fetch(
            f"SELECT id, key_version, prev_hash, hash, body FROM audit_events{where} "
            f"ORDER BY id {order} LIMIT {int(limit)}",
            params,
        )
        return [AuditEvent.from_row(*row) for row in rows]

    def get(self, event_id: int) -> AuditEvent | None:
        rows = self._fetch(
            "SELECT id, key_version, prev_hash, hash, body FROM audit_events WHERE id = ?",
            [event_id],
        )
        return AuditEvent.from_row(*rows[0]) if rows else None

    def last_id(self) -> int:
        rows = self._fetch("SELECT MAX(id) FROM audit_events", [])
        return int(rows[0][0] or 0)

    def iter_events(
        self, flt: AuditFilter | None = None, batch: int = MAX_PAGE
    ) -> Iterator[AuditEvent]:
        """Every matching event in id order, fetched a page at a time."""
        after: int | None = None
        while True:
            page = self.list(flt, after_id=after, limit=batch)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].id

    def export_jsonl(self, out: IO[str], flt: AuditFilter | None = None) -> int:
        """Write matching events as JSON lines (one event per line); returns how many."""
        count = 0
        for event in self.iter_events(flt):
            out.write(json.dumps(event.to_dict(), sort_keys=True, ensure_ascii=False) + "\n")
            count += 1
        return count

    # -- verification --------------------------------------------------------------------------

    def verify(
        self,
        *,
        up_to: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        tenant: str | None = None,
    ) -> VerifyReport:
        """Recompute every hash and check every link, up to ``up_to`` (default: the whole chain).

        Returns the report of an intact chain; raises
        :class:`~flowcred.audit.chain.AuditChainBroken` naming the first broken event otherwise.

        ``tenant`` scopes the *answer* to one tenant (a tenant admin's view), not the work: the
        chain is global, so it is still verified from the first event, but the report counts and
        names only that tenant's events and never another tenant's id or the platform-wide
        count. ``up_to`` then means the tenant's last event at or before it (default: its last
        event). A break at one of its events is named as usual; a break at another tenant's
        event is reported at the tenant's first event after it ("broken before event N"), with
        the kind of break but not where exactly it is.
        """
        if tenant is None:
            return self._verify_chain(up_to, progress)
        # With a bound, the tenant's last event within it; without, the whole chain (a cut tail
        # may have taken the tenant's newest events with it).
        end = self._own(tenant, "MAX(id)", up_to) if up_to is not None else None
        if end == 0:
            return VerifyReport(
                is_valid=True,
                total_checked=0,
                message=f"audit chain intact: no events of tenant {tenant} to verify",
            )
        try:
            report = self._verify_chain(end, None)
        except AuditChainBroken as exc:
            raise AuditChainBroken(self._scoped_break(exc.report, tenant)) from None
        own = self._own(tenant, "COUNT(*)", report.total_checked)
        return VerifyReport(
            is_valid=True,
            total_checked=own,
            message=f"audit chain intact: {own} events of tenant {tenant} verified",
            last_id=self._own(tenant, "MAX(id)", report.total_checked) or None,
        )

    def _own(self, tenant: str, aggregate: str, up_to: int | None) -> int:
        """``COUNT(*)`` or ``MAX(id)`` of ``tenant``'s events with id <= ``up_to``."""
        where, params = self._where(AuditFilter(tenant=tenant), None)
        if up_to is not None:
            where += " AND id <= ?"
            params.append(up_to)
        rows = self._fetch(f"SELECT {aggregate} FROM audit_events{where}", params)
        return int(rows[0][0] or 0)

    def _scoped_break(self, report: VerifyReport, tenant: str) -> VerifyReport:
        """``report`` (a break) as the tenant may see it; see :meth:`verify`."""
        broken = report.first_invalid_id
        assert broken is not None and report.kind is not None
        where, params = self._where(AuditFilter(tenant=tenant), None)
        rows = self._fetch(
            f"SELECT MIN(id) FROM audit_events{where} AND id >= ?", [*params, broken]
        )
        first_own = int(rows[0][0]) if rows[0][0] is not None else None
        checked = self._own(tenant, "COUNT(*)", broken - 1)
        if first_own == broken:
            message = report.message  # the broken event is the tenant's own: it may see it
        elif first_own is None:
            message = (
                f"audit chain broken after the last event of tenant {tenant} "
                f"({report.kind}, at an event of another tenant)"
            )
        else:
            message = (
                f"audit chain broken before event {first_own} of tenant {tenant} "
                f"({report.kind}, at an event of another tenant)"
            )
        return VerifyReport(
            is_valid=False,
            total_checked=checked,
            message=message,
            first_invalid_id=first_own,
            kind=report.kind,
        )

    def _verify_chain(
        self, up_to: int | None, progress: Callable[[int, int], None] | None
    ) -> VerifyReport:
        checkpoint = (
            read_checkpoint(self._checkpoint_path, self._ring_for)
            if self._checkpoint_path is not None
            else None
        )
        total = self.last_id() if up_to is None else min(up_to, self.last_id())
        macs: dict[int, Callable[[bytes, bytes], bytes] | None] = {}

        def mac_for(version: int) -> Callable[[bytes, bytes], bytes] | None:
            if version not in macs:
                try:
                    macs[version] = audit_mac(self._ring_for(version), version).bound_mac()
                except KeyUnavailable:
                    macs[version] = None
            return macs[version]

        conn = connect_raw(self._engine)
        try:

            def hash_count(digest: bytes) -> int:
                sql = translate_placeholders(
                    self._engine, "SELECT COUNT(*) FROM audit_events WHERE hash = ?"
                )
                if self._sqlite:
                    return int(conn.execute(sql, (digest,)).fetchone()[0])
                with conn.cursor() as cur:
                    cur.execute(sql, (digest,))
                    return int(cur.fetchone()[0])

            report = verify_rows(
                self._batches(conn, up_to),
                mac_for,
                checkpoint=checkpoint,
                up_to=up_to,
                hash_count=hash_count,
                progress=(lambda done: progress(done, max(total, done))) if progress else None,
            )
        finally:
            conn.close()
        return report

    def _batches(self, conn: Any, up_to: int | None) -> Iterator[Sequence[Row]]:
        sql = "SELECT id, key_version, prev_hash, hash, body FROM audit_events"
        params: tuple[Any, ...] = ()
        if up_to is not None:
            # One row past the limit tells a deleted or forged last event from a clean end.
            sql += " WHERE id <= ?"
            params = (up_to + 1,)
        sql = translate_placeholders(self._engine, sql + " ORDER BY id")
        if self._sqlite:
            cursor = conn.execute(sql, params)
            while batch := cursor.fetchmany(VERIFY_BATCH):
                yield batch
            return
        # A server-side cursor streams a chain of any length in bounded memory.
        with conn.transaction(), conn.cursor(name="flowcred_audit_verify") as cur:
            cur.execute(sql, params)
            while batch := cur.fetchmany(VERIFY_BATCH):
                yield [(r[0], r[1], bytes(r[2]), bytes(r[3]), r[4]) for r in batch]
