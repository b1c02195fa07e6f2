"""The audit checkpoint: the last event id and hash, kept outside the database.

Cutting events off the end of a chain leaves a shorter chain that is still internally consistent.
The checkpoint file (default ``$FLOWCRED_HOME/audit.checkpoint``) records how far the chain had
come, so verification can tell a truncated chain from a short one. The file carries a MAC under a
key derived from the KEK, so it cannot be forged by someone without the key either, and is
written atomically (temporary file, fsync, rename) with mode 0600.

It is written at most every ``interval`` seconds (0: after every commit) and when the broker
closes, so the window in which a truncation goes unnoticed is bounded by the interval.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from flowcred.audit.chain import Checkpoint
from flowcred.audit.events import format_time
from flowcred.clock import Clock
from flowcred.crypto import GENESIS, KekRing, checkpoint_mac
from flowcred.crypto.chain_mac import same
from flowcred.errors import ConfigurationError, KeyUnavailable

FORMAT = "flowcred-audit-checkpoint/1"


def _message(last_id: int, digest: bytes) -> bytes:
    return f"{FORMAT}:{last_id}:{digest.hex()}".encode()


class CheckpointWriter:
    """Keeps the newest (id, hash) seen and writes it out when the interval has passed."""

    def __init__(self, path: Path, *, interval: float, clock: Clock) -> None:
        self.path = path
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: tuple[int, bytes] | None = None
        self._written_id = 0
        self._last_write = float("-inf")

    def note(self, last_id: int, digest: bytes, ring: KekRing) -> None:
        """Record that the chain reached ``last_id``; write the file if it is due."""
        with self._lock:
            if self._latest is None or last_id > self._latest[0]:
                self._latest = (last_id, digest)
            due = self._clock.monotonic() - self._last_write >= self._interval
        if due:
            self.flush(ring)

    def flush(self, ring: KekRing) -> None:
        """Write the newest recorded position now (no-op when nothing new was recorded)."""
        with self._lock:
            latest = self._latest
            if latest is None or latest[0] <= self._written_id:
                return
            last_id, digest = latest
            version = ring.primary_version
            mac = checkpoint_mac(ring, version).mac(GENESIS, _message(last_id, digest))
            document = {
                "format": FORMAT,
                "last_id": last_id,
                "hash": digest.hex(),
                "key_version": version,
                "written_at": format_time(self._clock.now()),
                "mac": mac.hex(),
            }
            _write_atomically(self.path, json.dumps(document, indent=2) + "\n")
            self._written_id = last_id
            self._last_write = self._clock.monotonic()


def read_checkpoint(path: Path, ring_for: Callable[[int], KekRing]) -> Checkpoint | None:
    """The checkpoint at ``path``, checked against its MAC; ``None`` when there is no file.

    Raises ConfigurationError when the file is unreadable or fails its MAC check (forged or
    damaged): verification must not silently fall back to having no checkpoint.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigurationError(f"cannot read audit checkpoint {path} ({exc.strerror})") from None
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError("format")
        last_id = int(data["last_id"])
        digest = bytes.fromhex(data["hash"])
        version = int(data["key_version"])
        mac = bytes.fromhex(data["mac"])
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(f"audit checkpoint {path} is not a flowcred checkpoint") from None
    try:
        expected = checkpoint_mac(ring_for(version), version).mac(
            GENESIS, _message(last_id, digest)
        )
    except KeyUnavailable:
        raise ConfigurationError(
            f"audit checkpoint {path} names key version {version}, which is not loaded "
            "(forged or damaged)"
        ) from None
    if not same(expected, mac):
        raise ConfigurationError(f"audit checkpoint {path} failed its integrity check")
    return Checkpoint(last_id=last_id, hash=digest)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
