"""Resolve one OAuth credential from several threads, for the cross-process and crash tests.

Usage: ``oauth_resolver.py CREDENTIAL_ID THREADS ROUNDS [--die-after-resolve]``. The store comes
from the ``FLOWCRED_*`` environment. The script prints ``ready`` and waits for a line on stdin
(so the parent can start every process at once), then each of THREADS threads resolves the
credential ROUNDS times. It prints one JSON line ``{"tokens": [...distinct access tokens...],
"errors": [...error class names...]}`` and exits 0. With ``--die-after-resolve`` it SIGKILLs
itself right after the first resolve returned (the token was persisted before it was handed
out), without closing the broker.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

import flowcred


def main() -> int:
    cid = int(sys.argv[1])
    threads = int(sys.argv[2])
    rounds = int(sys.argv[3])
    die = "--die-after-resolve" in sys.argv[4:]
    tokens: set[str] = set()
    errors: list[str] = []
    lock = threading.Lock()
    broker = flowcred.open()
    provider = broker.provider()
    print("ready", flush=True)
    sys.stdin.readline()

    def work() -> None:
        for _ in range(rounds):
            try:
                material = provider.resolve(cid)
                token = material.fields["access_token"].reveal()
            except flowcred.FlowcredError as exc:
                with lock:
                    errors.append(type(exc).__name__)
                continue
            with lock:
                tokens.add(token)
            if die:
                os.kill(os.getpid(), signal.SIGKILL)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    print(json.dumps({"tokens": sorted(tokens), "errors": errors}), flush=True)
    broker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
