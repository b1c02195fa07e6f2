"""Run a KEK rotation (``broker.rotate_keys``) with optional pause points, for the key tests.

Usage: ``rotate_keys.py [--pause-before-key-write] [--pause-after-key] [--pause-at-progress N]``.

The store comes from the ``FLOWCRED_*`` environment (key file under ``FLOWCRED_HOME``). The key
source is the ordinary key file, wrapped so that the script can announce, and optionally pause at,
the moment the new key has been persisted to the file but not yet registered in the database
(``key-persisted``). Progress callbacks print ``progress <done> <total>`` (call 0 comes right after
the new key is registered, before any re-wrap). ``--pause-before-key-write`` pauses inside the key
file's ``add_key``, after it has read the file and before it writes the new version
(``writing-key``): that is how two concurrent rotations are interleaved deterministically. A pause
prints ``paused`` and waits for a line on stdin, so the parent can place a SIGKILL, or another
process's work, inside a chosen phase. At the end the script prints
``done <kekVersion> <rewrapped>``; a flowcred error ends it with ``error <type>: <message>``.
"""

from __future__ import annotations

import sys

from flowcred.broker import open_broker
from flowcred.crypto import KeyFileSource
from flowcred.errors import FlowcredError
from flowcred.settings import load_settings


def pause() -> None:
    print("paused", flush=True)
    sys.stdin.readline()


class AnnouncingKeyFile:
    """The settings' key file; announces (and may pause after) persisting a new key."""

    def __init__(
        self, inner: KeyFileSource, pause_after_key: bool, pause_before_write: bool = False
    ) -> None:
        self._inner = inner
        if pause_before_write:
            real_write = inner._write

            def paused_write(entries: list[tuple[str, bytes]], *, replace: bool) -> None:
                print("writing-key", flush=True)
                pause()
                real_write(entries, replace=replace)

            inner._write = paused_write  # type: ignore[method-assign]
        self._pause = pause_after_key
        self.description = inner.description

    def load(self) -> list[bytes]:
        return self._inner.load()

    def create_initial(self) -> bytes:
        return self._inner.create_initial()

    def add_key(self, key: bytes) -> None:
        self._inner.add_key(key)
        print("key-persisted", flush=True)
        if self._pause:
            pause()


def main() -> int:
    args = sys.argv[1:]
    pause_after_key = "--pause-after-key" in args
    pause_at = (
        int(args[args.index("--pause-at-progress") + 1]) if "--pause-at-progress" in args else -1
    )
    settings = load_settings()
    source = AnnouncingKeyFile(
        KeyFileSource(settings.resolved_key_file),
        pause_after_key,
        pause_before_write="--pause-before-key-write" in args,
    )
    calls = 0

    def progress(done: int, total: int) -> None:
        nonlocal calls
        print(f"progress {done} {total}", flush=True)
        if calls == pause_at:
            pause()
        calls += 1

    try:
        with open_broker(settings=settings, key_source=source) as broker:
            print("ready", flush=True)
            result = broker.rotate_keys(progress=progress)
    except FlowcredError as exc:
        print(f"error {type(exc).__name__}: {exc}", flush=True)
        return 1
    print(f"done {result.primary_version} {result.rewrapped}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
