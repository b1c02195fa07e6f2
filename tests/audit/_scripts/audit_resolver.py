"""Resolve one credential many times, each with its own execution id, for the audit chain tests.

Usage: ``audit_resolver.py HOME DATABASE_URL CREDENTIAL_ID WORKER COUNT GO_FILE EXPECTED``.

Opens the store at HOME / DATABASE_URL (the key comes from HOME's key file, shared with the parent
and the other workers), prints ``ready`` (flushed), waits until GO_FILE exists (at most 60 s, so
all workers start together), then performs COUNT audited reads: every tenth a ``get_password``,
the others ``resolve``, with execution ids ``w<WORKER>-<n>``. Every read must hand out EXPECTED.
Prints ``done <resolves> <password reads>`` and exits 0; any error exits non-zero.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from flowcred.broker import open_broker
from flowcred.settings import load_settings

START_WAIT_SECONDS = 60.0


def main() -> int:
    home, url, cid_text, worker, count_text, go_file, expected = sys.argv[1:8]
    cid, count = int(cid_text), int(count_text)
    settings = load_settings(home=Path(home), database_url=url)
    resolves = reads = 0
    with open_broker(settings=settings) as broker:
        provider = broker.provider()
        print("ready", flush=True)
        deadline = time.monotonic() + START_WAIT_SECONDS
        while not Path(go_file).exists():
            if time.monotonic() > deadline:
                print("start signal never came", file=sys.stderr, flush=True)
                return 3
            time.sleep(0.005)
        for n in range(count):
            execution_id = f"w{worker}-{n}"
            if n % 10 == 0:
                value = provider.get_password(cid, execution_id=execution_id)
                reads += 1
            else:
                value = provider.resolve(cid, execution_id=execution_id).fields["api_key"].reveal()
                resolves += 1
            if value != expected:
                print(f"wrong material at {execution_id}", file=sys.stderr, flush=True)
                return 4
    print(f"done {resolves} {reads}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
