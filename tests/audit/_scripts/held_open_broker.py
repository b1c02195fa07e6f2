"""Hold a broker open across another process's writes, for the checkpoint monotonicity tests.

Usage: ``held_open_broker.py COUNT`` (the store comes from the environment, ``FLOWCRED_HOME``).

Opens the store, performs COUNT audited reads (credential lists), prints ``ready`` (flushed),
then waits for a line (or end of input) on standard input before closing the broker -- which
writes this process's final checkpoint -- and prints ``closed``.
"""

from __future__ import annotations

import sys

import flowcred


def main() -> int:
    count = int(sys.argv[1])
    broker = flowcred.open()
    try:
        for _ in range(count):
            broker.credentials.list()
        print("ready", flush=True)
        sys.stdin.readline()
    finally:
        broker.close()
    print("closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
