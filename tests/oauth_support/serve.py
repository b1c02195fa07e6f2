"""Run the test authorization server in its own process.

    PYTHONPATH=$PWD python -m tests.oauth_support.serve --port 0 [--client ID:SECRET[:METHOD]]
        [--lifetime SECONDS|none] [--delay SECONDS] [--refresh-mode strict|grace|static]
        [--grace SECONDS]

Prints the base URL as the first stdout line (flushed), then serves until killed. Control:
GET/DELETE /_counts, POST /_faults, POST /_clients, POST /_service_accounts (JSON).
"""

from __future__ import annotations

import argparse
import sys
import threading

from tests.oauth_support.server import AuthzServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.oauth_support.serve")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--client", action="append", default=[], help="ID:SECRET[:METHOD]")
    parser.add_argument("--lifetime", default="3600")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--refresh-mode", default="strict", choices=["strict", "grace", "static"])
    parser.add_argument("--grace", type=float, default=0.0)
    args = parser.parse_args(argv)
    server = AuthzServer(
        access_token_lifetime=None if args.lifetime == "none" else int(args.lifetime),
        delay=args.delay,
        refresh_mode=args.refresh_mode,
        grace_seconds=args.grace,
    )
    for spec in args.client:
        client_id, _, rest = spec.partition(":")
        secret, _, method = rest.partition(":")
        server.register_client(client_id, secret or None, auth_method=method or None)
    server.start(args.port)
    sys.stdout.write(server.base_url + "\n")
    sys.stdout.flush()
    threading.Event().wait()


if __name__ == "__main__":
    main()
