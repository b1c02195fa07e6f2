"""HTTP load benchmark: ``POST /api/credentials/{id}/resolve`` against a bare endpoint, same run.

One uvicorn server on 127.0.0.1 (a free port) runs in a child process, so the load generator
does not share its GIL. It serves ``create_app(settings, freeze_heap=True)`` as ``flowcred serve``
does (embedded SQLite, default settings: cache on, audit on, so every resolve is audited), plus
one extra route mounted on the same app,
``POST /bench/bare``: an async handler (like the resolve route) that parses the same optional
``{"executionId": ...}`` body and returns a constant JSON object. Both phases therefore pay the
same server, middleware, routing, body validation and JSON response; the difference is flowcred's
work (API-key check, tenant lookup, resolve, audit write, response model).

The load: ``--clients`` (50) concurrent asyncio clients, each with its own keep-alive
connection (``bench/_load_client.py``: a minimal HTTP/1.1 client, because ``httpx.AsyncClient``
with 50 pooled connections saturates a core at ~200 req/s and would measure itself), each
sending requests back to back; a phase ends at ``--seconds`` (20) or after ``--max-requests``
requests, whichever comes first. Phase 1 hits the
bare endpoint (the baseline), phase 2 the resolve route; each is preceded by a short untimed
warm-up (1 s). Errors (non-2xx answers and exceptions) are counted apart from latencies.

The machine may have two cores on which client and server compete; both phases suffer alike,
which is why the ratio is the figure. Client and server CPU per phase are printed so a saturated
client (which would flatter the ratio) shows.

After the run the server is stopped and the SQLite file is read: the audit events the load added
must equal the successful resolves, and the chain must verify.

Targets (issue [api]): resolve throughput >= 0.5x the bare endpoint, resolve p99 < 50 ms,
0 errors. Nothing here asserts on timing; misses are printed as MISSED.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load_client import Connection

HOST = "127.0.0.1"
CLIENTS = 50
SECONDS = 20.0
MAX_REQUESTS = 500_000
WARMUP_SECONDS = 1.0
SECRET = "sk_bench_" + "x" * 24
REQUEST_TIMEOUT = 10.0


class BareBody(BaseModel):
    """The bare endpoint's body: the same shape as the resolve request."""

    executionId: str | None = None


# --- server (child process) -----------------------------------------------------------------


def serve(home: Path) -> None:
    """Serve flowcred plus ``POST /bench/bare`` on a free loopback port; print the port first."""
    import uvicorn

    from flowcred.api.app import create_app
    from flowcred.settings import load_settings

    app = create_app(load_settings(home=home), freeze_heap=True)  # as `flowcred serve` does

    @app.post("/bench/bare")
    async def bare(body: BareBody | None = None) -> dict[str, str]:
        return {"status": "ok"}

    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and a proto-0 listening socket hands out proto-0 connections. Without TCP_NODELAY, h11's
    # separate header and body writes meet the client's delayed ACK: ~44 ms per request.
    # (``flowcred serve`` lets uvicorn bind through getaddrinfo, which gives proto=6.)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


# --- set-up and checks (parent) ---------------------------------------------------------------


def set_up(home: Path) -> tuple[int, str]:
    """Create the store, one api_key credential and a platform worker key: (credential id, key)."""
    from flowcred.broker import open_broker
    from flowcred.settings import load_settings

    with open_broker(settings=load_settings(home=home)) as broker:
        cred = broker.credentials.create(name="bench", type="api_key", secret={"api_key": SECRET})
        _, raw_key = broker.api_keys.create(role="worker", tenant="*", name="bench")
    return cred.id, raw_key


def audit_counts(home: Path) -> tuple[int, int]:
    """(all audit events, successful ``resolved`` events with a ``load-`` execution id)."""
    db = sqlite3.connect(f"file:{home / 'flowcred.db'}?mode=ro", uri=True)
    try:
        (total,) = db.execute("SELECT count(*) FROM audit_events").fetchone()
        (resolved,) = db.execute(
            "SELECT count(*) FROM audit_events"
            " WHERE json_extract(body, '$.action') = 'resolved'"
            " AND json_extract(body, '$.result') = 'success'"
            " AND json_extract(body, '$.execution_id') LIKE 'load-%'"
        ).fetchone()
    finally:
        db.close()
    return total, resolved


def verify_chain(home: Path) -> str:
    """Verify the whole audit chain after the run; returns a one-line verdict."""
    from flowcred.broker import open_broker
    from flowcred.errors import FlowcredError
    from flowcred.settings import load_settings

    try:
        with open_broker(settings=load_settings(home=home)) as broker:
            broker.audit.verify()
    except FlowcredError as exc:
        return f"BROKEN ({type(exc).__name__}: {exc})"
    return "intact"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all threads), or None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(home)],
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise RuntimeError(f"server exited before listening:\n{log.read_text()[-2000:]}")
    port = int(json.loads(line)["port"])
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=2.0) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited during start-up:\n{log.read_text()[-2000:]}")
            try:
                if client.get("/health").status_code == 200:
                    return proc, port
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer /health within 30 s")
            time.sleep(0.05)


def stop_server(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM (uvicorn shuts down gracefully, the broker closes); kill after 15 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            return None
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


# --- load (parent) ---------------------------------------------------------------------------


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in seconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


async def run_phase(
    connections: list[Connection],
    path: str,
    headers: dict[str, str],
    body: Callable[[], bytes],
    *,
    seconds: float,
    max_requests: int,
    server_pid: int,
) -> Phase:
    """One loop per connection posting to ``path`` until ``seconds`` pass or ``max_requests``
    requests have been sent in all."""
    phase = Phase()
    tickets = itertools.count()
    deadline = time.perf_counter() + seconds

    async def one_client(connection: Connection) -> None:
        while next(tickets) < max_requests and time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                status, _ = await connection.post(path, body(), headers)
                kind = None if 200 <= status < 300 else f"HTTP {status}"
            except Exception as exc:  # every failure is a counted error, never a crash
                kind = type(exc).__name__
            phase.latencies.append(time.perf_counter() - start)
            if kind is None:
                phase.ok += 1
            else:
                phase.errors[kind] += 1

    server_before = cpu_seconds(server_pid)
    cpu_before = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(one_client(c) for c in connections))
    phase.elapsed = time.perf_counter() - start
    phase.client_cpu = time.process_time() - cpu_before
    server_after = cpu_seconds(server_pid)
    if server_before is not None and server_after is not None:
        phase.server_cpu = server_after - server_before
    return phase


async def load(
    port: int, cred_id: int, key: str, *, clients: int, seconds: float, max_requests: int, pid: int
) -> tuple[Phase, Phase, int]:
    """(bare phase, resolve phase, successful resolves including warm-up and the check)."""
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    resolve_path = f"/api/credentials/{cred_id}/resolve"
    ids = itertools.count()

    def bare_body() -> bytes:
        return b'{"executionId":"bare-%d"}' % next(ids)

    def resolve_body() -> bytes:
        return b'{"executionId":"load-%d"}' % next(ids)

    connections = [Connection(HOST, port, REQUEST_TIMEOUT) for _ in range(clients)]
    try:
        # One checked resolve: the answer must carry the secret (not timed).
        status, answer = await connections[0].post(resolve_path, resolve_body(), headers)
        if status != 200 or SECRET.encode() not in answer:
            raise RuntimeError(f"resolve check failed: HTTP {status} {answer[:200]!r}")
        resolved_ok = 1
        warm = {"seconds": WARMUP_SECONDS, "max_requests": max_requests, "server_pid": pid}
        timed = {"seconds": seconds, "max_requests": max_requests, "server_pid": pid}
        await run_phase(connections, "/bench/bare", headers, bare_body, **warm)
        bare = await run_phase(connections, "/bench/bare", headers, bare_body, **timed)
        warmed = await run_phase(connections, resolve_path, headers, resolve_body, **warm)
        resolve = await run_phase(connections, resolve_path, headers, resolve_body, **timed)
        resolved_ok += warmed.ok + resolve.ok
        resolve.errors.update(warmed.errors)
    finally:
        for connection in connections:
            await connection.close()
    return bare, resolve, resolved_ok


# --- report ----------------------------------------------------------------------------------


def describe(label: str, phase: Phase) -> str:
    ms = 1e3
    server = f"{phase.server_cpu / phase.elapsed:.0%}" if phase.server_cpu is not None else "n/a"
    return (
        f"  {label:<34} {phase.requests:9,} requests {phase.rate:8,.0f} req/s"
        f"   p50 {phase.percentile(0.50) * ms:6.1f} ms   p99 {phase.percentile(0.99) * ms:6.1f} ms"
        f"   errors {phase.error_count}"
        f"   (CPU: client {phase.client_cpu / phase.elapsed:.0%}, server {server})"
    )


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=SECONDS, help="length of each phase")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="concurrent clients")
    parser.add_argument(
        "--max-requests", type=int, default=MAX_REQUESTS, help="upper bound per phase"
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0
    if args.seconds <= 0 or args.clients < 1 or args.max_requests < 1:
        parser.error("--seconds, --clients and --max-requests must be positive")

    tmp = Path(tempfile.mkdtemp(prefix="flowcred-api-load-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        home = tmp / "home"
        cred_id, key = set_up(home)
        events_before, _ = audit_counts(home)
        proc, port = start_server(home, tmp / "server.log")
        bare, resolve, resolved_ok = asyncio.run(
            load(
                port,
                cred_id,
                key,
                clients=args.clients,
                seconds=args.seconds,
                max_requests=args.max_requests,
                pid=proc.pid,
            )
        )
        exit_code = stop_server(proc)
        proc = None
        events_after, resolved_events = audit_counts(home)
        chain = verify_chain(home)
        server_log = (tmp / "server.log").read_text(errors="replace").strip()
    finally:
        if proc is not None:
            stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)

    ms = 1e3
    ratio = resolve.rate / bare.rate if bare.rate else 0.0
    p99 = resolve.percentile(0.99)
    errors = bare.error_count + resolve.error_count
    added = events_after - events_before
    print(
        f"HTTP API under load (uvicorn on {HOST}, one server process; {args.clients} clients,"
        f" keep-alive; {args.seconds:g} s per phase; SQLite, cache on, audit on)"
    )
    print(describe("bare FastAPI endpoint (baseline)", bare))
    print(describe("POST /api/credentials/{id}/resolve", resolve))
    for phase in (bare, resolve):
        if phase.requests >= args.max_requests:
            print(f"  (a phase stopped at the {args.max_requests:,}-request bound before time)")
            break
    print(
        f"  resolve throughput                 {resolve.rate:9,.0f} req/s"
        f"   ({ratio:.2f}x bare; target >= 0.5x)  {verdict(ratio >= 0.5)}"
    )
    print(
        f"  resolve p99                        {p99 * ms:9.1f} ms"
        f"      ({p99 / bare.percentile(0.99):.2f}x bare p99; target < 50 ms)"
        f"  {verdict(p99 < 0.050)}"
    )
    kinds = ", ".join(f"{k}: {v}" for k, v in (bare.errors + resolve.errors).most_common())
    print(
        f"  errors (both phases)               {errors:9,}"
        f"{'   (' + kinds + ')' if kinds else ''}   (target 0)  {verdict(errors == 0)}"
    )
    print(
        f"  audit events added by the load     {added:9,}"
        f"   ({resolved_events:,} successful 'resolved' events for {resolved_ok:,} successful"
        f" resolves; chain {chain})"
        f"  {verdict(added == resolved_events == resolved_ok and chain == 'intact')}"
    )
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: -15 is its normal status.
    if exit_code not in (0, -signal.SIGTERM):
        print(f"  server exit status {exit_code} (expected a graceful exit on SIGTERM)")
    if server_log:
        print("  server log (last lines):")
        for line in server_log.splitlines()[-20:]:
            print(f"    {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
