"""The audit checkpoint: the last event id and hash, kept outside the database.

Cutting events off the end of a chain leaves a shorter chain that is still internally consistent.
The checkpoint file (default ``$FLOWCRED_HOME/audit.checkpoint``) records how far the chain had
come, so verification can tell a truncated chain from a short one. The file carries a MAC under a
key derived from the KEK, so it cannot be forged by someone without the key either, and is
written atomically (temporary file, fsync, rename, fsync of the directory) with mode 0600.

It is written at most every ``interval`` seconds (0: after every commit) and when the broker
closes, so the window in which a truncation goes unnoticed is bounded by the interval.

Many processes share one chain and one checkpoint file (``flowcred serve``, CLI commands, programs
embedding flowcred), each writing the newest position *it* appended. The contract that keeps the
file meaningful across them:

* **Monotonic.** A write happens under an exclusive lock (``flock``) on a sidecar file
  (``<checkpoint>.lock``): the writer reads the current file and replaces it only with a greater
  ``last_id``. A process that closes after another one wrote a newer position leaves that position
  in place (it used to write its own older one over it, after which cutting the newest events
  verified as intact). At an equal id the hashes must agree; if they do not, the chain forked
  (cut and regrown) and nothing is written.
* **Only over a position known to be on the chain.** Before moving the checkpoint from ``M`` to a
  greater ``N``, the writer checks that the database still holds event ``M`` with the hash the
  checkpoint pins. The writer appended ``N`` itself, on top of the chain's last row under the
  chain's write lock, so ``N`` continues the chain through ``M`` exactly when ``M`` is still there
  (anything rewritten between them fails verification on its own). If ``M`` is gone or differs,
  the chain was cut below the checkpoint -- perhaps by an attacker racing this process -- and
  moving on would bury the cut, so the checkpoint stays where it is and verification reports the
  truncation at ``M``.
* **Newer positions are adopted.** A newer checkpoint found at write time is handed to the
  recorder (``adopt``), so this process's next appends fail closed if the chain no longer reaches
  it (see :class:`~flowcred.audit.append.ChainAppender`).
* **A checkpoint that cannot be read or fails its MAC is not overwritten**: that would erase the
  evidence of a forged file. The write fails (the recorder logs it; appends go on) and
  ``flowcred audit verify`` reports the file.

A failed write never fails the commit that caused it (the events are durable already); the next
commit tries again.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from flowcred.audit.chain import Checkpoint
from flowcred.audit.events import format_time
from flowcred.clock import Clock
from flowcred.crypto import GENESIS, KekRing, checkpoint_mac
from flowcred.crypto.chain_mac import same
from flowcred.errors import ConfigurationError, FlowcredError, KeyUnavailable

FORMAT = "flowcred-audit-checkpoint/1"

# The stored hash of an event id (None: no such row), and "the chain is known to reach (id, hash)".
HashAt = Callable[[int], bytes | None]
Adopt = Callable[[int, bytes], None]


class CheckpointNotMoved(FlowcredError):
    """The checkpoint was left where it is because moving it would hide a cut chain."""


def _message(last_id: int, digest: bytes) -> bytes:
    return f"{FORMAT}:{last_id}:{digest.hex()}".encode()


class CheckpointWriter:
    """Keeps the newest (id, hash) seen and writes it out when the interval has passed."""

    def __init__(
        self,
        path: Path,
        *,
        interval: float,
        clock: Clock,
        ring_for: Callable[[int], KekRing] | None = None,
    ) -> None:
        self.path = path
        self.lock_path = path.with_name(f"{path.name}.lock")
        self._interval = interval
        self._clock = clock
        # Reads the current file (any key version); without it, the ring given to flush.
        self._ring_for = ring_for
        self._hash_at: HashAt | None = None
        self._adopt: Adopt | None = None
        self._lock = threading.Lock()
        self._latest: tuple[int, bytes] | None = None
        self._written_id = 0
        self._last_write = float("-inf")

    def attach(self, *, hash_at: HashAt, adopt: Adopt) -> None:
        """Connect the writer to the chain it pins (the recorder does this).

        ``hash_at`` confirms that the position a write moves past is still on the chain;
        ``adopt`` receives a newer position found in the file. Without them (a writer used on its
        own) writes are still monotonic, but not checked against the database.
        """
        self._hash_at = hash_at
        self._adopt = adopt

    def note(self, last_id: int, digest: bytes, ring: KekRing) -> None:
        """Record that the chain reached ``last_id``; write the file if it is due."""
        with self._lock:
            if self._latest is None or last_id > self._latest[0]:
                self._latest = (last_id, digest)
            due = self._clock.monotonic() - self._last_write >= self._interval
        if due:
            self.flush(ring)

    def flush(self, ring: KekRing) -> None:
        """Write the newest recorded position now, unless the file already pins it or a later one.

        Raises ConfigurationError when the current file cannot be read or authenticated, and
        CheckpointNotMoved when the position it pins is no longer on the chain (see the module
        docstring); the file is left unchanged in both cases.
        """
        with self._lock:
            latest = self._latest
            if latest is None or latest[0] <= self._written_id:
                return
            last_id, digest = latest
            with _exclusive(self.lock_path):
                if not self._may_write(last_id, digest, ring):
                    self._written_id = last_id
                    return
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

    def _may_write(self, last_id: int, digest: bytes, ring: KekRing) -> bool:
        """Whether (``last_id``, ``digest``) may replace the current file (caller holds the lock).

        False when the file already pins this position or a later one; raises when writing would
        move the checkpoint past a position the chain no longer holds.
        """
        current = read_checkpoint(self.path, self._ring_for or (lambda _version: ring))
        if current is None or current.last_id <= 0:
            return True
        if current.last_id > last_id:
            if self._adopt is not None:
                self._adopt(current.last_id, current.hash)
            return False
        if current.last_id == last_id:
            if not same(current.hash, digest):
                raise CheckpointNotMoved(
                    f"audit checkpoint pins event {last_id} with another hash than this process "
                    "appended: the chain was cut and regrown; run 'flowcred audit verify'"
                )
            return False
        if self._hash_at is not None:
            stored = self._hash_at(current.last_id)
            if stored is None or not same(stored, current.hash):
                raise CheckpointNotMoved(
                    f"audit checkpoint pins event {current.last_id}, which the chain no longer "
                    "holds: it was cut; the checkpoint stays there; run 'flowcred audit verify'"
                )
        return True


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


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created 0600): one checkpoint writer at a
    time across processes. Held only to read, write and fsync one small file."""
    lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


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
    # The rename itself must survive a crash, or a restart could find the older file again.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
