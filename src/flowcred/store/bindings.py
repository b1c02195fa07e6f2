"""The bindings registry: which flows reference which credentials.

A flow registers its references (ids or handles) with ``PUT /api/bindings/{flow}``; the number of
flows referencing a credential is its ``connections``, and a credential still referenced cannot
be deleted without ``force``. References are stored as given and matched to credentials when
counted, so a flow may register a handle before the credential exists.
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


def _refers_to(reference: Reference, record: Credential) -> bool:
    if isinstance(reference, int) or (isinstance(reference, str) and reference.isdigit()):
        return int(reference) == record.id
    return reference == record.handle


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

    def list(self, tenant: str | None = None) -> builtins.list[Binding]:
        query = select(bindings).order_by(bindings.c.tenant, bindings.c.flow)
        if tenant is not None:
            query = query.where(bindings.c.tenant == tenant)
        with read_connection(self._engine) as conn:
            rows = conn.execute(query).mappings().all()
        result = []
        for row in rows:
            updated = as_utc(row["updated_at"])
            assert updated is not None
            result.append(Binding(row["flow"], row["tenant"], json.loads(row["refs"]), updated))
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

    def flows_using(self, record: Credential) -> builtins.list[str]:
        return [
            b.flow
            for b in self.list(record.tenant)
            if any(_refers_to(ref, record) for ref in b.references)
        ]
