"""The audit chain detects tampering: every kind, at any position, with the exact first broken id.

An attacker here has database-owner rights: they remove the append-only triggers and then edit,
delete, insert, reorder, duplicate or cut rows of ``audit_events`` with plain SQL. They do not
hold the KEK, so they cannot compute the keyed HMAC of a row; the strongest forgeries below
recompute a plain SHA-256 (or an HMAC under a key of their own) and repair the links around the
edit. Verification must recompute every MAC (not only check links, the defect of Flowker's
endpoint) and name the first broken event exactly.

The randomized test runs seeded trials (``random.Random(seed)`` per trial) on a chain of a few
hundred events built once per database (see ``conftest.py``); each trial restores the pristine
rows, applies one tampering, and verifies through the broker, whose checkpoint pins the pristine
end. The expected id and kind of each tampering is derived from the classification rules of
``flowcred.audit.chain.verify_rows`` (spelled out next to each operation), not from running it.

Tests that fail against the current code expose flowcred defects (they pass once fixed):
``test_verify_up_to_boundary_event_is_classified_as_in_a_full_verify`` and
``test_verify_up_to_a_tail_cut_inside_the_range_fails`` (``verify(up_to=k)`` reads no row past k
and ignores a checkpoint beyond k), ``test_checkpoint_naming_an_unknown_key_version_...`` (the
error names a missing KEK, not the forged checkpoint), and
``test_cut_tail_stays_detected_after_the_chain_grows_again[5|12]`` (the recorder moves the
checkpoint onto a chain regrown from a cut, erasing the evidence).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import flowcred
from flowcred.audit import AuditChainBroken, AuditWriteFailed
from flowcred.audit.events import canonical_body
from flowcred.broker import Broker, open_broker
from flowcred.crypto import GENESIS, checkpoint_mac
from flowcred.settings import load_settings
from flowcred.store import kek_versions

if TYPE_CHECKING:  # conftest.py is not importable under --import-mode=importlib
    from conftest import Db, PristineChain, Row

TRIALS = {"sqlite": 1000, "postgres": 1000}
SEED_BASE = {"sqlite": 0, "postgres": 1_000_000}

# -- forging helpers -----------------------------------------------------------------------------

ATTACKER_KEY = secrets.token_bytes(32)


def plain_sha256(prev: bytes, body: str) -> bytes:
    """What an attacker who knows the chain layout but not the key computes."""
    return hashlib.sha256(prev + body.encode()).digest()


def attacker_hmac(prev: bytes, body: str) -> bytes:
    """An HMAC-SHA256 of the right message under a key the attacker made up."""
    return hmac.new(ATTACKER_KEY, prev + body.encode(), hashlib.sha256).digest()


def flip_bit(value: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(value))
    return value[:i] + bytes([value[i] ^ (1 << rng.randrange(8))]) + value[i + 1 :]


def change_char(text: str, rng: random.Random, positions: list[int] | None = None) -> str:
    """``text`` with one character replaced by a different one of the same class."""
    if positions is None:
        positions = list(range(len(text)))
    i = rng.choice(positions)
    c = text[i]
    if c.isdigit():
        pool = "0123456789"
    elif c.islower():
        pool = "abcdefghijklmnopqrstuvwxyz"
    elif c.isupper():
        pool = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    else:
        pool = "-_.:x"
    new = rng.choice([p for p in pool if p != c])
    return text[:i] + new + text[i + 1 :]


def edit_body(body: str, rng: random.Random) -> tuple[str, str]:
    """A realistic edit of an event body; returns the new body and what was changed.

    Field edits keep the body canonical JSON (what an attacker hiding a trace would write);
    the ``raw`` edit changes one character anywhere in the stored text.
    """
    data = json.loads(body)
    assert canonical_body(data) == body, "stored bodies are canonical JSON"
    choices = ["actor", "created_at", "result", "action", "raw"]
    for name in ("tenant", "resource_id", "execution_id", "source"):
        if isinstance(data.get(name), str) and data[name]:
            choices.append(name)
    if data.get("details"):
        choices.append("details")
    what = rng.choice(choices)
    if what == "raw":
        # One letter or digit anywhere in the stored text; the JSON indexes refuse malformed
        # bodies, so the attacker keeps it valid JSON (but not necessarily canonical).
        positions = [i for i, c in enumerate(body) if c.isalnum()]
        while True:
            new = change_char(body, rng, positions)
            try:
                json.loads(new)
            except ValueError:
                continue
            return new, what
    if what == "actor":
        data["actor"]["id"] = change_char(data["actor"]["id"], rng)
    elif what == "created_at":
        stamp = data["created_at"]
        data["created_at"] = change_char(
            stamp, rng, [i for i, c in enumerate(stamp) if c.isdigit()]
        )
    elif what == "result":
        data["result"] = rng.choice(
            [r for r in ("success", "failure", "denied") if r != data[what]]
        )
    elif what == "action":
        # E.g. hide that a secret was read by calling it a metadata view.
        data["action"] = "viewed" if data["action"] != "viewed" else "listed"
    elif what == "details":
        key = rng.choice(sorted(data["details"]))
        value = data["details"][key]
        if isinstance(value, bool):
            data["details"][key] = not value
        elif isinstance(value, int):
            data["details"][key] = value + rng.choice([-1, 1, 10])
        elif isinstance(value, str) and value:
            data["details"][key] = change_char(value, rng)
        else:
            data["details"][key] = "x"
    else:
        data[what] = change_char(data[what], rng)
    new = canonical_body(data)
    assert new != body
    return new, what


def forged_body(rows: list[Row], k: int, rng: random.Random) -> str:
    """A plausible event to slip in before row ``k``: a neighbour's body, re-dated and re-aimed."""
    template = json.loads(rows[min(k, len(rows)) - 1][4])
    template["actor"] = {"kind": "user", "id": "mallory", "name": "mallory"}
    template["resource_id"] = str(rng.randint(1, 12))
    template["execution_id"] = f"exec-forged-{rng.randrange(10_000)}"
    return canonical_body(template)


# -- tampering operations ------------------------------------------------------------------------
#
# Classification rules of verify_rows (chain.py), walking rows in id order with ``expected`` (the
# next id) and ``previous`` (the last good hash):
#   R1 id > expected                             -> "missing" at expected
#   R2 MAC does not recompute, next row's prev_hash == previous -> "inserted" at this id
#   R3 MAC does not recompute, otherwise (or no next row)        -> "modified" at this id
#   R4 MAC recomputes, prev_hash != previous, hash occurs > 1    -> "duplicated" at this id
#   R5 MAC recomputes, prev_hash != previous, hash unique        -> "reordered" at this id
#   R6 after the last row, fewer rows than the checkpoint's id   -> "truncated" at checked + 1
#   R7 the checkpoint's id is present but its hash differs       -> "truncated" at checkpoint id


@dataclass(frozen=True)
class Expect:
    event_id: int
    kind: str
    variant: str


Op = Callable[["Db", random.Random, "list[Row]"], Expect]


def _shift_up(db: Db, from_id: int, to_id: int | None = None) -> None:
    """Renumber ids ``from_id..to_id`` (default: to the end) one up, without a key collision."""
    if to_id is None:
        db.execute("UPDATE audit_events SET id = -(id + 1) WHERE id >= ?", (from_id,))
    else:
        db.execute(
            "UPDATE audit_events SET id = -(id + 1) WHERE id >= ? AND id <= ?", (from_id, to_id)
        )
    db.execute("UPDATE audit_events SET id = -id WHERE id < 0")


def _shift_down(db: Db, from_id: int, to_id: int | None = None) -> None:
    if to_id is None:
        db.execute("UPDATE audit_events SET id = -(id - 1) WHERE id >= ?", (from_id,))
    else:
        db.execute(
            "UPDATE audit_events SET id = -(id - 1) WHERE id >= ? AND id <= ?", (from_id, to_id)
        )
    db.execute("UPDATE audit_events SET id = -id WHERE id < 0")


def _hash(rows: list[Row], event_id: int) -> bytes:
    return GENESIS if event_id == 0 else rows[event_id - 1][3]


def _set_body_hash(db: Db, k: int, body: str, digest: bytes) -> None:
    db.execute("UPDATE audit_events SET body = ?, hash = ? WHERE id = ?", (body, digest, k))


def _fix_next_link(db: Db, rows: list[Row], k: int, digest: bytes) -> None:
    if k < len(rows):
        db.execute("UPDATE audit_events SET prev_hash = ? WHERE id = ?", (digest, k + 1))


# modify: one stored column of row k changes; its MAC no longer recomputes and row k+1 still links
# to the old hash, which is not row k-1's hash -> R3 "modified" at k.


def modify_body(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    k = rng.randint(1, len(rows))
    body, what = edit_body(rows[k - 1][4], rng)
    db.execute("UPDATE audit_events SET body = ? WHERE id = ?", (body, k))
    return Expect(
        k,
        "modified",
        f"body edited ({'one character' if what == 'raw' else 'one field'}), links intact",
    )


def modify_hash(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    k = rng.randint(1, len(rows))
    db.execute("UPDATE audit_events SET hash = ? WHERE id = ?", (flip_bit(rows[k - 1][3], rng), k))
    return Expect(k, "modified", "hash bit flipped")


def modify_prev_hash(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    k = rng.randint(1, len(rows))
    old = rows[k - 1][2]
    candidates = [flip_bit(old, rng), GENESIS, _hash(rows, rng.randint(1, len(rows)))]
    new = rng.choice([c for c in candidates if c != old])
    db.execute("UPDATE audit_events SET prev_hash = ? WHERE id = ?", (new, k))
    return Expect(k, "modified", "prev_hash changed")


def modify_key_version(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    k = rng.randint(1, len(rows))
    old = rows[k - 1][1]
    new = rng.choice([v for v in (1, 2, 3, 99) if v != old])  # 1, 2 loaded; 3, 99 unknown
    db.execute("UPDATE audit_events SET key_version = ? WHERE id = ?", (new, k))
    return Expect(k, "modified", "key_version changed")


# delete: R1 for a hole inside the chain; R6 for the last row (checkpoint pins it).


def delete_row(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    k = rng.randint(1, len(rows) - 1)
    db.execute("DELETE FROM audit_events WHERE id = ?", (k,))
    return Expect(k, "missing", "row deleted")


def delete_range(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    a = rng.randint(1, len(rows) - 1)
    b = rng.randint(a, min(len(rows) - 1, a + 20))
    db.execute("DELETE FROM audit_events WHERE id >= ? AND id <= ?", (a, b))
    return Expect(a, "missing", "range deleted")


def delete_last(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    n = len(rows)
    db.execute("DELETE FROM audit_events WHERE id = ?", (n,))
    return Expect(n, "truncated", "last row deleted")


def delete_and_renumber(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    # The attacker closes the gap. Row k is then the authentic old k+1, whose prev_hash is the
    # deleted row's hash, not row k-1's, and whose hash occurs once -> R5 "reordered" at k.
    k = rng.randint(1, len(rows) - 1)
    db.execute("DELETE FROM audit_events WHERE id = ?", (k,))
    _shift_down(db, k + 1)
    return Expect(k, "reordered", "row deleted, gap closed")


# insert: shift rows k..N up, forged row at k linking to row k-1. Its MAC does not recompute and
# the authentic old row k (now k+1) still links to row k-1 -> R2 "inserted" at k.


def _insert_forged(db: Db, rng: random.Random, rows: list[Row], k: int) -> bytes:
    prev = _hash(rows, k - 1)
    body = forged_body(rows, k, rng)
    how = rng.choice(("random", "sha256", "hmac"))
    digest = {
        "random": secrets.token_bytes(32),
        "sha256": plain_sha256(prev, body),
        "hmac": attacker_hmac(prev, body),
    }[how]
    version = rows[k - 2][1] if k > 1 else rows[0][1]
    if k <= len(rows):
        _shift_up(db, k)
    db.execute(
        "INSERT INTO audit_events (id, key_version, prev_hash, hash, body) VALUES (?, ?, ?, ?, ?)",
        (k, version, prev, digest, body),
    )
    return digest


def insert_forged(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    k = rng.randint(1, len(rows))
    _insert_forged(db, rng, rows, k)
    return Expect(k, "inserted", "forged row inserted")


def insert_forged_fix_forward(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    # The attacker also points the next row at the forgery: no row links past it any more, and
    # that row's own MAC is broken too -> R3 "modified" at k.
    k = rng.randint(1, len(rows))
    digest = _insert_forged(db, rng, rows, k)
    db.execute("UPDATE audit_events SET prev_hash = ? WHERE id = ?", (digest, k + 1))
    return Expect(k, "modified", "forged row inserted, next link repointed")


def insert_forged_at_end(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    # No next row to link past it -> R3 "modified" at N+1.
    n = len(rows)
    _insert_forged(db, rng, rows, n + 1)
    return Expect(n + 1, "modified", "forged row appended")


# reorder: the row at the first changed position i is authentic but links to another predecessor
# and its hash is unique -> R5 "reordered" at i.


def _swap(db: Db, i: int, j: int) -> None:
    db.execute("UPDATE audit_events SET id = 0 WHERE id = ?", (i,))
    db.execute("UPDATE audit_events SET id = ? WHERE id = ?", (i, j))
    db.execute("UPDATE audit_events SET id = ? WHERE id = 0", (j,))


def reorder_swap(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    i, j = sorted(rng.sample(range(1, len(rows) + 1), 2))
    _swap(db, i, j)
    return Expect(i, "reordered", "two rows swapped")


def reorder_adjacent(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    i = rng.randint(1, len(rows) - 1)
    _swap(db, i, i + 1)
    return Expect(i, "reordered", "adjacent rows swapped")


def reorder_move_earlier(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    i, j = sorted(rng.sample(range(1, len(rows) + 1), 2))
    db.execute("UPDATE audit_events SET id = 0 WHERE id = ?", (j,))
    _shift_up(db, i, j - 1)
    db.execute("UPDATE audit_events SET id = ? WHERE id = 0", (i,))
    return Expect(i, "reordered", "row moved earlier")


# duplicate: an authentic row copied elsewhere; at the first position that differs it links to
# the wrong predecessor and its hash occurs twice -> R4 "duplicated".


def duplicate_to_end(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    n = len(rows)
    _, version, prev, digest, body = rows[rng.randint(1, n) - 1]
    db.execute(
        "INSERT INTO audit_events (id, key_version, prev_hash, hash, body) VALUES (?, ?, ?, ?, ?)",
        (n + 1, version, prev, digest, body),
    )
    return Expect(n + 1, "duplicated", "copy appended")


def duplicate_into_middle(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    n = len(rows)
    p = rng.randint(1, n)
    # One draw in four copies row p itself in front of its original: the copy links correctly
    # (it *is* row p), so the first position that differs is p+1, the original, now a duplicate.
    r = p if rng.random() < 0.25 else rng.choice([x for x in range(1, n + 1) if x != p])
    _, version, prev, digest, body = rows[r - 1]
    _shift_up(db, p)
    db.execute(
        "INSERT INTO audit_events (id, key_version, prev_hash, hash, body) VALUES (?, ?, ?, ?, ?)",
        (p, version, prev, digest, body),
    )
    if r == p:
        return Expect(p + 1, "duplicated", "copy inserted before its original")
    return Expect(p, "duplicated", "copy inserted in the middle")


def duplicate_overwrite(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    k, r = rng.sample(range(1, len(rows) + 1), 2)
    _, version, prev, digest, body = rows[r - 1]
    db.execute(
        "UPDATE audit_events SET key_version = ?, prev_hash = ?, hash = ?, body = ? WHERE id = ?",
        (version, prev, digest, body, k),
    )
    return Expect(k, "duplicated", "row overwritten with a copy of another")


# truncate: an internally consistent, shorter chain; only the checkpoint tells -> R6.


def truncate_tail(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    n = len(rows)
    m = rng.randint(1, n - 1)
    db.execute("DELETE FROM audit_events WHERE id > ?", (n - m,))
    return Expect(n - m + 1, "truncated", "tail cut")


def truncate_all(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    db.execute("TRUNCATE audit_events" if db.postgres else "DELETE FROM audit_events")
    return Expect(1, "truncated", "table emptied")


# recompute: the body of row k is edited and the attacker recomputes a hash for it and repairs
# the links. Without the key the new hash is not the row's MAC, and row k+1's prev_hash (repaired
# or not) is not row k-1's hash -> R3 "modified" at k.


def recompute_sha256_fix_next(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    k = rng.randint(1, len(rows))
    body, _ = edit_body(rows[k - 1][4], rng)
    digest = plain_sha256(rows[k - 1][2], body)
    _set_body_hash(db, k, body, digest)
    _fix_next_link(db, rows, k, digest)
    return Expect(k, "modified", "body edited, plain SHA-256 recomputed, next link fixed")


def recompute_hmac_fix_next(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    k = rng.randint(1, len(rows))
    body, _ = edit_body(rows[k - 1][4], rng)
    digest = attacker_hmac(rows[k - 1][2], body)
    _set_body_hash(db, k, body, digest)
    _fix_next_link(db, rows, k, digest)
    return Expect(k, "modified", "body edited, HMAC under own key, next link fixed")


def recompute_sha256_rechain_tail(db: Db, rng: random.Random, rows: list[Row]) -> Expect:
    # Every link from k to the end is consistent again under SHA-256: a link-only check passes.
    k = rng.randint(1, len(rows))
    body, _ = edit_body(rows[k - 1][4], rng)
    prev = rows[k - 1][2]
    updates = []
    for event_id, _, _, _, old_body in rows[k - 1 :]:
        text = body if event_id == k else old_body
        digest = plain_sha256(prev, text)
        updates.append((prev, digest, text, event_id))
        prev = digest
    db.executemany(
        "UPDATE audit_events SET prev_hash = ?, hash = ?, body = ? WHERE id = ?", updates
    )
    return Expect(k, "modified", "body edited, whole tail re-chained with SHA-256")


OPS: dict[str, list[Op]] = {
    "modify": [modify_body, modify_hash, modify_prev_hash, modify_key_version],
    "delete": [delete_row, delete_range, delete_last, delete_and_renumber],
    "insert": [insert_forged, insert_forged_fix_forward, insert_forged_at_end],
    "reorder": [reorder_swap, reorder_adjacent, reorder_move_earlier],
    "duplicate": [duplicate_to_end, duplicate_into_middle, duplicate_overwrite],
    # A tail cut is the realistic truncation; emptying the whole table is drawn less often.
    "truncate": [truncate_tail, truncate_tail, truncate_tail, truncate_all],
    "recompute": [
        recompute_sha256_fix_next,
        recompute_hmac_fix_next,
        recompute_sha256_rechain_tail,
    ],
}


def tamper(chain: PristineChain, seed: int) -> tuple[str, Expect]:
    """Apply one seeded tampering to the (pristine) table; returns its category and expectation."""
    rng = random.Random(seed)
    category = rng.choice(sorted(OPS))
    op = rng.choice(OPS[category])
    with chain.db.transaction():
        expect = op(chain.db, rng, chain.rows)
    return category, expect


def verify_broken(chain: PristineChain, up_to: int | None = None) -> AuditChainBroken | None:
    try:
        chain.broker.audit.verify(up_to=up_to)
    except AuditChainBroken as exc:
        return exc
    return None


# -- tests ---------------------------------------------------------------------------------------


def test_pristine_chain_verifies(chain: PristineChain) -> None:
    n = chain.last_id
    assert 250 <= n <= 600
    assert [r[0] for r in chain.rows] == list(range(1, n + 1))
    assert {r[1] for r in chain.rows} == {1, 2}, "the chain spans a KEK rotation"
    bodies = [json.loads(r[4]) for r in chain.rows]
    assert {b["tenant"] for b in bodies} >= {"acme", "globex", "initech"}
    assert any(b["execution_id"] for b in bodies)
    assert any(b["result"] == "denied" for b in bodies)
    assert any(b["event_type"] == "kek" for b in bodies)
    report = chain.broker.audit.verify()
    assert report.is_valid and report.total_checked == n
    assert report.to_dict() == {
        "isValid": True,
        "firstInvalidId": None,
        "totalChecked": n,
        "message": f"audit chain intact: {n} events verified",
        "kind": None,
    }


def test_the_hash_is_a_keyed_mac_not_a_plain_digest(chain: PristineChain) -> None:
    """Guards the premise of the recompute trials: SHA-256 (or a foreign HMAC) never matches."""
    for _, _, prev, digest, body in chain.rows:
        assert digest != plain_sha256(prev, body)
        assert digest != attacker_hmac(prev, body)
        assert digest != hashlib.sha256(body.encode()).digest()


def test_body_edit_with_links_intact_is_detected(chain: PristineChain) -> None:
    """Flowker's endpoint only checks links: here every link is intact, only a body changed."""
    k = chain.last_id // 2
    body = json.loads(chain.rows[k - 1][4])
    body["actor"]["id"] = "someone-else"
    with chain.db.transaction():
        chain.db.execute("UPDATE audit_events SET body = ? WHERE id = ?", (canonical_body(body), k))
    stored = chain.db.rows()
    assert all(stored[i][2] == stored[i - 1][3] for i in range(1, len(stored))), "links intact"
    broken = verify_broken(chain)
    assert broken is not None
    assert (broken.event_id, broken.kind) == (k, "modified")
    assert broken.report.to_dict()["firstInvalidId"] == k
    assert broken.report.to_dict()["isValid"] is False


def test_sha256_recomputed_and_next_link_fixed_is_detected(chain: PristineChain) -> None:
    k = chain.last_id // 3
    body = json.loads(chain.rows[k - 1][4])
    body["result"] = "failure"
    text = canonical_body(body)
    digest = plain_sha256(chain.rows[k - 1][2], text)
    with chain.db.transaction():
        _set_body_hash(chain.db, k, text, digest)
        _fix_next_link(chain.db, chain.rows, k, digest)
    stored = chain.db.rows()
    assert stored[k][2] == stored[k - 1][3] == digest, "the forward link was repaired"
    broken = verify_broken(chain)
    assert broken is not None
    assert (broken.event_id, broken.kind) == (k, "modified")


@pytest.mark.slow
def test_randomized_tampering_is_always_detected_at_the_exact_id(
    chain: PristineChain, capsys: pytest.CaptureFixture[str]
) -> None:
    n_trials = TRIALS[chain.backend]
    base = SEED_BASE[chain.backend]
    per_category: Counter[str] = Counter()
    per_variant: Counter[str] = Counter()
    per_kind: Counter[str] = Counter()
    detected = exact = 0
    problems: list[str] = []
    started = time.perf_counter()
    for trial in range(n_trials):
        seed = base + trial
        if trial:
            chain.restore()
        if trial % 100 == 0:
            # Control: the restored table verifies, so each detection comes from the tampering.
            assert chain.broker.audit.verify().total_checked == chain.last_id
        category, expect = tamper(chain, seed)
        per_category[category] += 1
        per_variant[f"{category}: {expect.variant}"] += 1
        per_kind[expect.kind] += 1
        broken = verify_broken(chain)
        if broken is None:
            problems.append(f"seed {seed} ({category}: {expect.variant}) NOT DETECTED")
            continue
        detected += 1
        got = broken.report.to_dict()
        if (broken.event_id, broken.kind) == (expect.event_id, expect.kind) and got == {
            "isValid": False,
            "firstInvalidId": expect.event_id,
            "totalChecked": expect.event_id - 1,
            "message": str(broken),
            "kind": expect.kind,
        }:
            exact += 1
        else:
            problems.append(
                f"seed {seed} ({category}: {expect.variant}): expected event "
                f"{expect.event_id} {expect.kind}, got {got}"
            )
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(
            f"\n[{chain.backend}] {n_trials} tamper trials on a {chain.last_id}-event chain in "
            f"{elapsed:.1f}s: detected {detected}/{n_trials} ({100 * detected / n_trials:.1f}%), "
            f"exact id and kind {exact}/{n_trials} ({100 * exact / n_trials:.1f}%)"
        )
        print(f"  per category: {dict(sorted(per_category.items()))}")
        print(f"  per expected (= reported) kind: {dict(sorted(per_kind.items()))}")
        for variant, count in sorted(per_variant.items()):
            print(f"    {count:4d}  {variant}")
    assert not problems, "\n".join(problems[:20])
    assert detected == exact == n_trials
    assert set(per_category) == set(OPS), "every category was drawn"
    assert set(per_kind) == {
        "modified",
        "inserted",
        "missing",
        "reordered",
        "duplicated",
        "truncated",
    }


@pytest.mark.parametrize(
    ("op", "kind"),
    [
        (modify_body, "modified"),
        (delete_row, "missing"),
        (insert_forged, "inserted"),
        (reorder_adjacent, "reordered"),
        (duplicate_overwrite, "duplicated"),
        (recompute_sha256_fix_next, "modified"),
    ],
)
def test_verify_up_to_checks_only_events_up_to_that_id(
    chain: PristineChain, op: Op, kind: str
) -> None:
    for seed in range(5):
        chain.restore()
        with chain.db.transaction():
            expect = op(chain.db, random.Random(seed), chain.rows)
        j = expect.event_id
        assert expect.kind == kind
        if j > 1:
            report = chain.broker.audit.verify(up_to=j - 1)
            assert report.is_valid and report.total_checked == j - 1
            early = random.Random(seed).randint(1, j - 1)
            assert chain.broker.audit.verify(up_to=early).total_checked == early
        # A deleted or inserted event exactly at the boundary (up_to == j) is the subject of
        # test_verify_up_to_boundary_event_is_classified_as_in_a_full_verify.
        first = j + 1 if kind in ("missing", "inserted") else j
        for up_to in (first, j + 7, None):
            broken = verify_broken(chain, up_to=up_to)
            assert broken is not None, f"up_to={up_to}"
            assert (broken.event_id, broken.kind) == (j, kind), f"up_to={up_to}"


@pytest.mark.parametrize(("op", "kind"), [(delete_row, "missing"), (insert_forged, "inserted")])
def test_verify_up_to_boundary_event_is_classified_as_in_a_full_verify(
    chain: PristineChain, op: Op, kind: str
) -> None:
    """``verify(up_to=j)`` where event j was deleted (or a forged event was slipped in at j).

    Rows above ``up_to`` are never read, so a deleted event j is not noticed at all (rows 1..j-1
    verify, and the checkpoint is ignored because it lies beyond ``up_to``), and a forged event
    j cannot be told from a modified one (its successor, which links past it, is not read).
    """
    with chain.db.transaction():
        expect = op(chain.db, random.Random(7), chain.rows)
    j = expect.event_id
    assert expect.kind == kind
    full = verify_broken(chain)
    assert full is not None and (full.event_id, full.kind) == (j, kind)
    broken = verify_broken(chain, up_to=j)
    assert broken is not None, f"verify(up_to={j}) passed although event {j} was deleted"
    assert (broken.event_id, broken.kind) == (j, kind)


def test_verify_up_to_a_tail_cut_inside_the_range_fails(chain: PristineChain) -> None:
    """The checkpoint proves events up to its id existed, so ``verify(up_to=k)`` with k below the
    checkpoint must find every event up to k; a tail cut at j <= k is a break at j."""
    n = chain.last_id
    j = n - 30
    with chain.db.transaction():
        chain.db.execute("DELETE FROM audit_events WHERE id >= ?", (j,))
    assert chain.broker.audit.verify(up_to=j - 1).total_checked == j - 1
    for up_to in (n, n + 5, None):
        broken = verify_broken(chain, up_to=up_to)
        assert broken is not None and (broken.event_id, broken.kind) == (j, "truncated")
    for up_to in (j, j + 10, n - 1):
        broken = verify_broken(chain, up_to=up_to)
        assert broken is not None, (
            f"verify(up_to={up_to}) passed although events {j}..{up_to} were cut off "
            f"(the checkpoint pins {n})"
        )
        assert (broken.event_id, broken.kind) == (j, "truncated")


# -- the checkpoint ------------------------------------------------------------------------------


def _ring(chain: PristineChain) -> flowcred.crypto.KekRing:
    b = chain.broker
    return kek_versions.open_ring(b.engine, b.key_source, b.clock)


def _forge(chain: PristineChain, **changes: object) -> None:
    doc = json.loads(chain.checkpoint_text)
    doc.update(changes)
    chain.checkpoint_path.write_text(json.dumps(doc, indent=2) + "\n")


def _authentic_checkpoint(chain: PristineChain, last_id: int) -> str:
    """A genuine checkpoint for an earlier position (as an older copy of the file would be)."""
    doc = json.loads(chain.checkpoint_text)
    digest = chain.rows[last_id - 1][3]
    version = doc["key_version"]
    message = f"{doc['format']}:{last_id}:{digest.hex()}".encode()
    mac = checkpoint_mac(_ring(chain), version).mac(GENESIS, message)
    doc.update(last_id=last_id, hash=digest.hex(), mac=mac.hex())
    return json.dumps(doc, indent=2) + "\n"


def test_checkpoint_pins_the_pristine_end(chain: PristineChain) -> None:
    doc = json.loads(chain.checkpoint_path.read_text())
    assert doc["last_id"] == chain.last_id
    assert doc["hash"] == chain.rows[-1][3].hex()
    # The control for the forgeries below: an authentic checkpoint re-made by the test verifies.
    chain.checkpoint_path.write_text(_authentic_checkpoint(chain, chain.last_id))
    assert chain.broker.audit.verify().total_checked == chain.last_id


@pytest.mark.parametrize(
    "forgery",
    ["last_id", "hash", "mac", "sha256-mac", "no-mac", "format", "not-json"],
)
def test_forged_checkpoint_is_refused(chain: PristineChain, forgery: str) -> None:
    n = chain.last_id
    # The attacker cuts the last 5 events and edits the checkpoint to match the shorter chain.
    with chain.db.transaction():
        chain.db.execute("DELETE FROM audit_events WHERE id > ?", (n - 5,))
    new_last = chain.rows[n - 6]
    doc = json.loads(chain.checkpoint_text)
    if forgery == "last_id":
        _forge(chain, last_id=n - 5)
    elif forgery == "hash":
        _forge(chain, hash=new_last[3].hex())
    elif forgery == "mac":
        _forge(chain, last_id=n - 5, hash=new_last[3].hex(), mac=secrets.token_hex(32))
    elif forgery == "sha256-mac":
        message = f"{doc['format']}:{n - 5}:{new_last[3].hex()}".encode()
        _forge(
            chain,
            last_id=n - 5,
            hash=new_last[3].hex(),
            mac=hashlib.sha256(GENESIS + message).hexdigest(),
        )
    elif forgery == "no-mac":
        doc.pop("mac")
        doc.update(last_id=n - 5, hash=new_last[3].hex())
        chain.checkpoint_path.write_text(json.dumps(doc))
    elif forgery == "format":
        _forge(chain, format="flowcred-audit-checkpoint/0", last_id=n - 5)
    else:
        chain.checkpoint_path.write_text(f"last_id={n - 5}\n")
    with pytest.raises(flowcred.ConfigurationError, match="checkpoint") as info:
        chain.broker.audit.verify()
    assert str(chain.checkpoint_path) in str(info.value)


def test_checkpoint_naming_an_unknown_key_version_is_refused_as_a_checkpoint_problem(
    chain: PristineChain,
) -> None:
    """A forged ``key_version`` must be reported as a bad checkpoint, not as a missing KEK."""
    _forge(chain, key_version=99)
    with pytest.raises(flowcred.ConfigurationError) as info:
        chain.broker.audit.verify()
    assert "checkpoint" in str(info.value), f"the error does not name the checkpoint: {info.value}"


def test_without_a_checkpoint_a_cut_tail_is_undetectable(chain: PristineChain) -> None:
    """Documented limit: a cut tail leaves a shorter, internally consistent chain; only the
    checkpoint (kept outside the database) tells. With no checkpoint file, verify passes."""
    n = chain.last_id
    with chain.db.transaction():
        chain.db.execute("DELETE FROM audit_events WHERE id > ?", (n - 40,))
    assert verify_broken(chain) is not None, "control: with the checkpoint the cut is detected"
    chain.checkpoint_path.unlink()
    report = chain.broker.audit.verify()
    assert report.is_valid and report.total_checked == n - 40
    # Same limit when the attacker also rolls the checkpoint file back to an older genuine copy.
    chain.checkpoint_path.write_text(_authentic_checkpoint(chain, n - 40))
    assert chain.broker.audit.verify().total_checked == n - 40


# -- a cut tail that the live broker then grows again --------------------------------------------


@pytest.fixture
def live_broker(database_url: str, tmp_path: Path) -> Iterator[Broker]:
    settings = load_settings(
        home=tmp_path / "home", database_url=database_url, audit_checkpoint_seconds=0
    )
    broker = open_broker(settings=settings)
    try:
        yield broker
    finally:
        broker.close()


@pytest.mark.parametrize("regrown", [1, 4, 5, 12])
def test_cut_tail_stays_detected_after_the_chain_grows_again(
    live_broker: Broker, database_url: str, owner_db: Callable[[str], Db], regrown: int
) -> None:
    """The attacker cuts the last 4 events, then normal use appends ``regrown`` new ones.

    The checkpoint pinned the old end (id N, hash h). Fewer than 4 new events: the chain is
    short of N (truncated at the first id after the new end). Exactly 4: event N is back with
    another hash (truncated at N). More than 4: the recorder must not move the checkpoint past a
    chain that no longer contains the event it pinned, or the cut becomes invisible.
    """
    cut = 4
    for n in range(3):
        live_broker.credentials.create(
            name=f"k{n}", type="api_key", secret={"api_key": f"sk_{secrets.token_hex(8)}"}
        )
        live_broker.credentials.list()
        live_broker.provider().resolve(n + 1, execution_id="exec-1")
    n_events = live_broker.audit.last_id()
    assert live_broker.audit.verify().total_checked == n_events
    db = owner_db(database_url)
    db.disable_append_only()
    with db.transaction():
        db.execute("DELETE FROM audit_events WHERE id > ?", (n_events - cut,))
    try:
        for _ in range(regrown):
            live_broker.credentials.list()
    except (AuditWriteFailed, AuditChainBroken):
        return  # failing closed on the cut chain is also a detection
    broken = verify_broken_broker(live_broker)
    assert broken is not None, (
        f"a cut of {cut} events followed by {regrown} new ones verified as intact "
        f"(the checkpoint was moved to the regrown chain)"
    )
    assert broken.kind == "truncated"
    assert n_events - cut < broken.event_id <= n_events
    if regrown < cut:
        assert broken.event_id == n_events - cut + regrown + 1


def verify_broken_broker(broker: Broker) -> AuditChainBroken | None:
    try:
        broker.audit.verify()
    except AuditChainBroken as exc:
        return exc
    return None
