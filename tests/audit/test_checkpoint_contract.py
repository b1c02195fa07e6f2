"""The checkpoint writer's contract across brokers sharing one store (hardening item 6).

In one test process, two brokers on the same database and checkpoint file stand for two
processes: the checkpoint never moves back, never moves past an event the chain no longer holds
(a cut raced by the other broker), and a newer checkpoint found at write time bounds the writer's
own appends. A checkpoint file that fails its check is left as it is, for verify to report.
See ``test_checkpoint_monotonic.py`` for the same with real processes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from flowcred.audit import AuditChainBroken, AuditWriteFailed
from flowcred.broker import Broker, open_broker
from flowcred.errors import ConfigurationError
from flowcred.settings import load_settings

if TYPE_CHECKING:  # conftest.py is not importable under --import-mode=importlib
    from conftest import Db


def _open(home: Path, url: str, interval: float) -> Broker:
    return open_broker(
        settings=load_settings(home=home, database_url=url, audit_checkpoint_seconds=interval)
    )


def _checkpoint(home: Path) -> tuple[int, str]:
    doc = json.loads((home / "audit.checkpoint").read_text())
    return int(doc["last_id"]), str(doc["hash"])


def _cut_after(db: Db, keep: int) -> None:
    db.disable_append_only()
    try:
        db.execute("DELETE FROM audit_events WHERE id > ?", (keep,))
    finally:
        db.enable_append_only()


def test_closing_broker_does_not_move_the_checkpoint_back(
    database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    older = _open(home, database_url, 3600)
    try:
        older.credentials.list()
        older.credentials.list()  # not written yet: the interval holds it back
        with _open(home, database_url, 3600) as newer:
            newer.credentials.list()
        pinned = _checkpoint(home)
    finally:
        older.close()
    assert _checkpoint(home) == pinned
    assert pinned[0] == older.audit.last_id()


def test_checkpoint_is_not_moved_past_an_event_the_chain_no_longer_holds(
    database_url: str,
    tmp_path: Path,
    owner_db: Callable[[str], Db],
    caplog: pytest.LogCaptureFixture,
) -> None:
    home = tmp_path / "home"
    racer = _open(home, database_url, 3600)
    try:
        racer.credentials.list()  # event 1, written at once
        with _open(home, database_url, 3600) as other:
            for _ in range(3):
                other.credentials.list()  # events 2-4, pinned when it closes
        pinned = _checkpoint(home)
        assert pinned[0] == 4
        # The attacker cuts events 2-4 while the racer, which never saw them, keeps appending:
        # its events 2'-5' are authentic and linked, and go past the pinned id.
        _cut_after(owner_db(database_url), 1)
        for _ in range(4):
            racer.credentials.list()
        with caplog.at_level(logging.ERROR, logger="flowcred.audit"):
            racer.close()
    finally:
        racer.close()
    assert _checkpoint(home) == pinned, "the checkpoint moved onto a chain regrown from a cut"
    assert "which the chain no longer holds" in caplog.text
    with _open(home, database_url, 3600) as checker, pytest.raises(AuditChainBroken) as broken:
        checker.audit.verify()
    assert (broken.value.kind, broken.value.event_id) == ("truncated", 4)


def test_a_newer_checkpoint_found_at_write_time_bounds_the_writers_appends(
    database_url: str, tmp_path: Path, owner_db: Callable[[str], Db]
) -> None:
    home = tmp_path / "home"
    racer = _open(home, database_url, 0)
    try:
        racer.credentials.list()  # event 1, checkpoint 1
        with _open(home, database_url, 0) as other:
            for _ in range(3):
                other.credentials.list()  # checkpoint 4
        pinned = _checkpoint(home)
        _cut_after(owner_db(database_url), 1)
        # Appended on the cut chain (the racer knew only event 1); its checkpoint write finds
        # the newer checkpoint and leaves it, and from then on the racer knows the chain reached 4.
        racer.credentials.list()
        assert _checkpoint(home) == pinned
        with pytest.raises(AuditWriteFailed, match="truncated"):
            racer.credentials.list()
    finally:
        racer.close()
    assert _checkpoint(home) == pinned


def test_a_checkpoint_failing_its_check_is_not_overwritten(
    database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with _open(home, database_url, 0) as broker:
        broker.credentials.list()
        path = home / "audit.checkpoint"
        doc = json.loads(path.read_text())
        doc["last_id"] = 1_000  # forged: the MAC no longer matches
        forged = json.dumps(doc)
        path.write_text(forged)
        broker.credentials.list()  # the write fails (logged); the operation does not
        assert path.read_text() == forged
        with pytest.raises(ConfigurationError, match="integrity check"):
            broker.audit.verify()
