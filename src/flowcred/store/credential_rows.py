"""Rows of the ``credentials`` table as :class:`~flowcred.records.Credential` records.

Split out of :mod:`flowcred.store.credentials` (which knows SQL and sealing) so the mapping --
the one place every read of a credential passes, whoever the caller -- stays small and is where
the derived fields (the status as of now) are computed. ``as_utc`` lives here too, since both
drivers' datetimes are normalised on the way out of a row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import RowMapping

from flowcred.records import Credential, CredentialStatus

if TYPE_CHECKING:
    from flowcred.credential_status import StatusRule


def as_utc(value: datetime | str | None) -> datetime | None:
    """Normalise a datetime read from either driver (SQLite gives naive values or text) to UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def credential_from_row(
    row: RowMapping, *, family_of: Callable[[str], str], rule: StatusRule
) -> Credential:
    """The record of ``row``, its status derived as of now by ``rule``
    (:mod:`flowcred.credential_status`: past ``expires_at`` is expired, and so on)."""
    expires_at = as_utc(row["expires_at"])
    stored: CredentialStatus = row["status"]
    status, expiring_soon = rule.apply(stored, expires_at)
    created_at = as_utc(row["created_at"])
    updated_at = as_utc(row["updated_at"])
    assert created_at is not None and updated_at is not None
    return Credential(
        id=row["id"],
        tenant=row["tenant"],
        environment=row["environment"],
        handle=row["handle"],
        name=row["name"],
        type=row["type"],
        family=family_of(row["type"]),
        config=json.loads(row["config"]),
        status=status,
        created_at=created_at,
        updated_at=updated_at,
        last_used_at=as_utc(row["last_used_at"]),
        expires_at=expires_at,
        current_version=row["current_version"],
        expiring_soon=expiring_soon,
    )
