"""The bindings registry: which flows reference which credentials.

SQL only: the rules (references must name credentials of the tenant, a platform caller must
name a tenant, every change is audited) live in :class:`flowcred.bindings.Bindings`, which every
caller (REST, CLI, Python) goes through. The number of flows referencing a credential is its
``connections``, and a credential still referenced cannot be deleted without ``force``.

Matching a stored reference to a credential never raises: a row written by an older version
(say the text ``"²"``, which ``str.isdigit`` accepted) is a handle that matches nothing, so it can
never make a credential read or delete fail.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from flowcred.clock import Clock
from flowcred.records import Credential
from flowcred.references import is_id_text
from flowcred.store.credentials import as_utc
from flowcred.store.engine import read_connection, write_transaction
from flowcred.store.tables import bindings

Reference = int | str


@dataclass(frozen=True, slots=True)
class Binding:
    """One flow's registered references within a tenant."""

    flow: str
    tenant: str
    references: list[Reference]
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "tenantId": self.tenant,
            "references": self.references,
            "updatedAt": self.updated_at.isoformat(),
        }


def _refers_to(reference: object, record: Credential) -> bool:
    if isinstance(reference, bool):
        return False
    if isinstance(reference, int):
        return reference == record.id
    if isinstance(reference, str):
        if is_id_text(reference):
            return len(reference) <= 19 and int(reference) == record.id
        return reference == record.handle
    return False


class BindingStore:
    """Reads and replaces flows' references."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def put(self, flow: str, tenant: str, references: Sequence[Reference]) -> Binding:
        """Replace ``flow``'s references in ``tenant`` (an empty list unregisters the flow)."""
        now = self._clock.now()
        unique = list(dict.fromkeys(references))
        with write_transaction(self._engine) as conn:
            conn.execute(
                delete(bindings).where(bindings.c.flow == flow, bindings.c.tenant == tenant)
            )
            if unique:
                conn.execute(
                    insert(bindings).values(
                        flow=flow, tenant=tenant, refs=json.dumps(unique), updated_at=now
                    )
                )
        return Binding(flow, tenant, unique, now)

    def delete(self, flow: str, tenant: str) -> bool:
        """Unregister ``flow`` in ``tenant``; False when it was not registered."""
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                delete(bindings).where(bindings.c.flow == flow, bindings.c.tenant == tenant)
            )
        return bool(result.rowcount)

    def get(self, flow: str, tenant: str) -> Binding | None:
        found = [b for b in self.list(tenant) if b.flow == flow]
        return found[0] if found else None

    def list(self, tenant: str | None = None) -> builtins.list[Binding]:
        with read_connection(self._engine) as conn:
            return self.list_in(conn, tenant)

    @staticmethod
    def list_in(conn: Any, tenant: str | None = None) -> builtins.list[Binding]:
        """:meth:`list` on an open connection (inside a delete's write transaction)."""
        query = select(bindings).order_by(bindings.c.tenant, bindings.c.flow)
        if tenant is not None:
            query = query.where(bindings.c.tenant == tenant)
        rows = conn.execute(query).mappings().all()
        result = []
        for row in rows:
            updated = as_utc(row["updated_at"])
            assert updated is not None
            try:
                refs = json.loads(row["refs"])
            except ValueError:
                refs = []
            if not isinstance(refs, builtins.list):
                refs = []
            result.append(Binding(row["flow"], row["tenant"], refs, updated))
        return result

    def connections(self, records: Sequence[Credential]) -> dict[int, int]:
        """Number of flows referencing each credential (by id or by its handle)."""
        counts = {r.id: 0 for r in records}
        if not records:
            return counts
        tenants = {r.tenant for r in records}
        for binding in (b for tenant in sorted(tenants) for b in self.list(tenant)):
            for record in records:
                if record.tenant == binding.tenant and any(
                    _refers_to(ref, record) for ref in binding.references
                ):
                    counts[record.id] += 1
        return counts

    def flows_using(self, record: Credential, conn: Any = None) -> builtins.list[str]:
        """Flows of the credential's tenant that reference it (on ``conn`` when given)."""
        found = self.list(record.tenant) if conn is None else self.list_in(conn, record.tenant)
        return [b.flow for b in found if any(_refers_to(ref, record) for ref in b.references)]
