"""Rotate many credentials one after another, for the SIGKILL crash tests.

Usage: ``rotate_credentials.py TRIAL IDS_FILE [PAUSE_AT]``. The store comes from the ``FLOWCRED_*``
environment. Credential ids are read from IDS_FILE (one per line, in rotation order); each is
rotated through the public API to the value ``new-{TRIAL}-{id}``. After each rotation returns, the
script prints ``ok <id> <version>`` (flushed), so the parent knows which rotations were committed.
With PAUSE_AT >= 1, after that many rotations it prints ``paused`` and waits for a line on stdin,
which lets the parent place its SIGKILL near a chosen point even on a slow machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import flowcred


def main() -> int:
    trial = int(sys.argv[1])
    ids = [int(line) for line in Path(sys.argv[2]).read_text().split()]
    pause_at = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    with flowcred.open() as broker:
        print("ready", flush=True)
        for count, cid in enumerate(ids, start=1):
            record = broker.credentials.rotate(cid, secret_value=f"new-{trial}-{cid}")
            print(f"ok {cid} {record.current_version}", flush=True)
            if count == pause_at:
                print("paused", flush=True)
                sys.stdin.readline()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
