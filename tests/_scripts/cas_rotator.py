"""One of several processes rotating the same credential with read-then-CAS.

Usage: ``cas_rotator.py CREDENTIAL_ID WORKER ATTEMPTS``. The store comes from the ``FLOWCRED_*``
environment. The script opens the broker, prints ``ready`` and waits for a line on stdin (so all
workers start together). Then, ATTEMPTS times, it reads the current version and rotates with
``expected_version`` set to it, printing one JSON line per attempt: ``{"ok": true, "expected": v,
"version": new, "value": ...}`` on success, ``{"ok": false, "expected": v, "error":
"VersionConflict"}`` when it lost, or ``{"ok": false, "error": "<other type>"}`` for anything else
(which the test treats as a failure). It ends with ``done``.
"""

from __future__ import annotations

import json
import sys

import flowcred


def main() -> int:
    cid, worker, attempts = (int(a) for a in sys.argv[1:4])
    with flowcred.open() as broker:
        print("ready", flush=True)
        sys.stdin.readline()
        for attempt in range(attempts):
            value = f"proc-{worker}-{attempt}"
            expected = None
            try:
                expected = broker.credentials.get(cid).current_version
                record = broker.credentials.rotate(
                    cid, secret_value=value, expected_version=expected
                )
            except flowcred.VersionConflict:
                line = {"ok": False, "expected": expected, "error": "VersionConflict"}
            except Exception as exc:  # reported to the parent, which fails the test
                line = {"ok": False, "expected": expected, "error": type(exc).__name__}
            else:
                line = {
                    "ok": True,
                    "expected": expected,
                    "version": record.current_version,
                    "value": value,
                }
            print(json.dumps(line), flush=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
