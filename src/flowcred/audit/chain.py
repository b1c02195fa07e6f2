"""Verification of the audit hash chain: recompute every hash and check every link.

Row *n* stores ``prev_hash`` and ``hash = HMAC(key of key_version, prev_hash || body)``. An intact
chain has ids 1, 2, 3, … without gaps, each row's MAC recomputes from its own stored values, and
each row's ``prev_hash`` equals the previous row's ``hash`` (32 zero bytes for the first).

Verification stops at the first broken row and says how it broke:

``modified``    the row's MAC does not recompute (body, prev_hash, hash or key version changed)
``inserted``    a row whose MAC does not recompute, with the next row linking past it
``missing``     an id is absent (a deleted row)
``reordered``   an authentic row in the wrong place (its MAC recomputes, its link does not)
``duplicated``  an authentic row that also appears elsewhere in the chain
``truncated``   the chain ends before, or differs from, the last checkpoint written outside
                the database

Following cryptography's rule that ignoring a failed check must be impossible, a break raises
:class:`AuditChainBroken` instead of returning ``False``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from flowcred.crypto import GENESIS
from flowcred.crypto.chain_mac import same
from flowcred.errors import FlowcredError

BreakKind = Literal["modified", "inserted", "missing", "reordered", "duplicated", "truncated"]
# (id, key_version, prev_hash, hash, body)
Row = tuple[int, int, bytes, bytes, str]
MacFor = Callable[[int], Callable[[bytes, bytes], bytes] | None]


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a verification, in the shape of Flowker's verify endpoint."""

    is_valid: bool
    total_checked: int
    message: str
    first_invalid_id: int | None = None
    kind: BreakKind | None = None
    last_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "isValid": self.is_valid,
            "firstInvalidId": self.first_invalid_id,
            "totalChecked": self.total_checked,
            "message": self.message,
            "kind": self.kind,
        }


class AuditChainBroken(FlowcredError):
    """Raised when verification finds a broken chain: ``event_id`` is the first broken event.

    In a report scoped to one tenant (``AuditLog.verify(tenant=...)``) it is the tenant's first
    event at or after the break, or ``None`` when the break lies after the tenant's last event.
    """

    def __init__(self, report: VerifyReport) -> None:
        assert report.kind is not None
        self.report = report
        self.event_id: int | None = report.first_invalid_id
        self.kind: BreakKind = report.kind
        super().__init__(report.message)


@dataclass(frozen=True)
class Checkpoint:
    """The last event id and hash, as recorded outside the database."""

    last_id: int
    hash: bytes


def _describe(kind: BreakKind, event_id: int) -> str:
    what = {
        "modified": "was modified (its hash does not recompute)",
        "inserted": "was inserted (its hash does not recompute and the next event links past it)",
        "missing": "is missing (deleted)",
        "reordered": "is out of order (authentic, but linked to a different predecessor)",
        "duplicated": "is a duplicate of another event",
        "truncated": "and later events are missing or rewritten (compared to the checkpoint)",
    }[kind]
    return f"audit chain broken: event {event_id} {what}"


def verify_rows(
    batches: Iterable[Sequence[Row]],
    mac_for: MacFor,
    *,
    checkpoint: Checkpoint | None = None,
    up_to: int | None = None,
    hash_count: Callable[[bytes], int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Verify rows given in id order (in batches). Returns the report or raises AuditChainBroken.

    ``mac_for(key_version)`` returns the MAC function for that key version, or ``None`` when the
    version is unknown (treated as a modified row). ``hash_count(h)`` tells how many rows carry
    hash ``h`` (used only to tell a duplicate from a reordered row, once, at a break).
    """
    expected = 1
    previous = GENESIS
    macs: dict[int, Callable[[bytes, bytes], bytes] | None] = {}
    use_checkpoint = checkpoint is not None and checkpoint.last_id > 0
    pinned = checkpoint.last_id if checkpoint is not None and use_checkpoint else -1
    pinned_hash: bytes | None = None
    rows = _flatten(batches, progress)
    for row in rows:
        if up_to is not None and expected > up_to:
            break
        event_id, key_version, prev_hash, digest, body = row
        if event_id != expected:
            _fail("missing" if event_id > expected else "duplicated", expected, expected - 1)
        mac = macs.get(key_version, _UNSET)
        if mac is _UNSET:
            mac = macs[key_version] = mac_for(key_version)
        authentic = mac is not None and same(mac(prev_hash, body.encode()), digest)
        if authentic and prev_hash == previous:
            previous = digest
            expected += 1
            if event_id == pinned:
                pinned_hash = digest
            continue
        if not authentic:
            following = next(rows, None)
            linked_past = following is not None and same(following[2], previous)
            _fail("inserted" if linked_past else "modified", event_id, expected - 1)
        duplicate = hash_count is not None and hash_count(digest) > 1
        _fail("duplicated" if duplicate else "reordered", event_id, expected - 1)
    checked = expected - 1
    if checkpoint is not None and use_checkpoint:
        # The checkpoint proves the chain reached its id, so any range up to there must be full.
        reach = checkpoint.last_id if up_to is None else min(up_to, checkpoint.last_id)
        if checked < reach:
            _fail("truncated", checked + 1, checked)
        if checked >= checkpoint.last_id and (
            pinned_hash is None or not same(pinned_hash, checkpoint.hash)
        ):
            # The event the checkpoint pins is authentic but not the one that was there: the
            # tail was cut and the chain grew again from the cut.
            _fail("truncated", checkpoint.last_id, checkpoint.last_id - 1)
    return VerifyReport(
        is_valid=True,
        total_checked=checked,
        message=f"audit chain intact: {checked} events verified",
        last_id=checked or None,
    )


def _flatten(
    batches: Iterable[Sequence[Row]], progress: Callable[[int], None] | None
) -> Iterator[Row]:
    done = 0
    for batch in batches:
        yield from batch
        done += len(batch)
        if progress is not None:
            progress(done)


def _fail(kind: BreakKind, event_id: int, checked: int) -> None:
    raise AuditChainBroken(
        VerifyReport(
            is_valid=False,
            total_checked=checked,
            message=_describe(kind, event_id),
            first_invalid_id=event_id,
            kind=kind,
        )
    )


_UNSET: Any = object()
