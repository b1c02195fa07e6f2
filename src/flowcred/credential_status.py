"""What a credential's status is *now*: the one rule every reader of a credential meets.

A stored status (``active`` / ``error``, set by writes and by connection tests) goes stale the
moment time passes an ``expires_at``; a status nobody refreshes is a lie. So the status shown is
derived on every read, in :func:`flowcred.store.credential_rows.credential_from_row`, by
:class:`StatusRule`:

* ``expires_at`` at or before now -> ``expired``, whatever was stored (a credential past its
  expiry is unusable, whether its last test passed or not);
* otherwise the stored status, and ``expiring_soon`` is true when ``expires_at`` falls within the
  window (``FLOWCRED_EXPIRING_SOON_DAYS``, default 7; 0 turns the marker off).

Filters (``status=`` in the API, ``--status`` in the CLI, ``broker.credentials.list``) take
``active``, ``expired``, ``error`` or ``expiring_soon``; ``active`` includes the active
credentials expiring soon, and ``expiring_soon`` selects the not-yet-expired ones within the
window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from flowcred.clock import Clock
from flowcred.errors import FieldProblem, InvalidInput
from flowcred.records import Credential, CredentialStatus

__all__ = [
    "DEFAULT_EXPIRING_SOON_DAYS",
    "STATUS_FILTERS",
    "StatusRule",
    "check_status_filter",
    "matches_status",
]

DEFAULT_EXPIRING_SOON_DAYS: Final = 7.0
#: Every value a status filter accepts.
STATUS_FILTERS: Final = ("active", "expired", "error", "expiring_soon")


@dataclass(frozen=True, slots=True)
class StatusRule:
    """Derives ``(status, expiring_soon)`` from the stored status and ``expires_at``."""

    clock: Clock
    expiring_soon_window: timedelta = timedelta(days=DEFAULT_EXPIRING_SOON_DAYS)

    def apply(
        self, stored: CredentialStatus, expires_at: datetime | None
    ) -> tuple[CredentialStatus, bool]:
        if expires_at is None:
            return stored, False
        left = expires_at - self.clock.now()
        if left <= timedelta(0):
            return "expired", False
        return stored, stored != "expired" and left <= self.expiring_soon_window


def check_status_filter(value: str | None) -> None:
    """Raise :class:`InvalidInput` naming the accepted values for an unknown status filter."""
    if value is not None and value not in STATUS_FILTERS:
        raise InvalidInput(
            [FieldProblem("status", "must be one of " + ", ".join(STATUS_FILTERS))],
            subject="filter",
        )


def matches_status(record: Credential, wanted: str) -> bool:
    """Whether ``record`` (already derived by :class:`StatusRule`) passes filter ``wanted``."""
    if wanted == "expiring_soon":
        return record.expiring_soon
    return record.status == wanted
