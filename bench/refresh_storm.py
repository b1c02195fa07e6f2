"""OAuth token refresh storms: flowcred against Authlib and a bare token request, same run.

Everything runs against the loopback test authorization server (``tests/oauth_support``, a
threaded werkzeug server on 127.0.0.1); run from the repo root with ``PYTHONPATH=.:src`` (the
Makefile does). The broker uses a temporary SQLite home and a :class:`ManualClock`; to make a
token expire, the broker's clock and the server's clock are advanced together.

1. Thread storm: N (8, 64) threads released by a barrier resolve one expired token, endpoint
   delay 50 ms. Token requests per storm and storm latency (first thread released until the
   last holds a token): flowcred ``provider.resolve`` vs one Authlib ``OAuth2Client``
   (client_credentials, ``token_endpoint`` + ``grant_type`` metadata) shared by the N threads,
   each calling ``ensure_active_token()`` after its token's ``expires_at`` is set in the past.
   Authlib's sync client has no lock around that refresh.
2. asyncio storm: 64 tasks, flowcred ``aresolve`` vs a shared Authlib ``AsyncOAuth2Client``
   (whose ``ensure_active_token`` holds an anyio lock).
3. Refresh overhead: with endpoint delay D, per forced expiry, the time of a resolve that must
   refresh minus the time of the same token request sent by a bare ``httpx.Client`` POST (same
   form, same client_secret_basic header); medians over the expiries.
4. Steady load, slow (200 ms) endpoint: 8 threads resolve in a loop while a driver advances
   both clocks 60 s every 100 ms (600 s tokens), so the token passes through the stale window
   again and again. Resolve p50/p99/max, resolves >= 150 ms, token requests made.

Targets (issue #9 [oauth]): 1 token request per storm; no resolve waits on the endpoint in
steady use (p99 far below the 200 ms delay). Nothing asserts on timing; misses print MISSED.
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tests.oauth_support.server import AuthzServer

from flowcred.broker import Broker, open_broker
from flowcred.clock import ManualClock
from flowcred.settings import load_settings

with warnings.catch_warnings():  # Authlib 1.7+ flags its httpx integration deprecated (httpx2)
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client

CLIENT_ID, CLIENT_SECRET = "bench-m2m", "bench-m2m-secret"
ROUNDS = 5  # storms per configuration (median reported)
OVERHEAD_EXPIRIES = 15
OVERHEAD_DELAY = 0.100
STEADY_SECONDS = 5.0
STEADY_THREADS = 8
STEADY_DELAY = 0.200
SLOW = 0.150


class Clocks:
    """The broker's manual clock and the server's offset clock, moved together."""

    def __init__(self, broker_clock: ManualClock, server: AuthzServer) -> None:
        self.broker, self.server = broker_clock, server
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.broker.advance(seconds)
            self.server.advance(seconds)


def _token(material: Any) -> str:
    return str(material.fields["access_token"].reveal())


def _create(broker: Broker, server: AuthzServer, name: str) -> int:
    cred = broker.credentials.create(
        name=name,
        type="oauth2_client_credentials",
        config={"token_url": server.token_url, "client_id": CLIENT_ID},
        secret={"client_secret": CLIENT_SECRET},
    )
    return int(cred.id)


def thread_storm(n: int, fn: Callable[[], str]) -> tuple[float, set[str], int]:
    """Release ``n`` threads at once on ``fn``: (seconds until the last has a token, distinct
    tokens, errors). Bounded: the barrier and joins time out."""
    barrier = threading.Barrier(n)
    starts: list[float] = []
    ends: list[float] = []
    tokens: set[str] = set()
    errors = [0]
    lock = threading.Lock()

    def work() -> None:
        try:
            barrier.wait(timeout=30)
            start = time.perf_counter()
            token = fn()
            end = time.perf_counter()
        except Exception:
            with lock:
                errors[0] += 1
            return
        with lock:
            starts.append(start)
            ends.append(end)
            tokens.add(token)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    latency = max(ends) - min(starts) if ends else float("nan")
    return latency, tokens, n - len(ends)  # raised, or never finished


def storms_threads(
    broker: Broker, server: AuthzServer, clocks: Clocks, n: int
) -> dict[str, tuple[list[int], list[float], int]]:
    """ROUNDS storms each for flowcred and Authlib: (requests per storm, latencies, errors)."""
    server.delay = 0.0
    server.access_token_lifetime = 3600
    cid = _create(broker, server, f"storm threads {n}")
    provider = broker.provider()
    provider.resolve(cid)
    authlib = OAuth2Client(
        CLIENT_ID,
        CLIENT_SECRET,
        token_endpoint=server.token_url,
        grant_type="client_credentials",
        timeout=30,
    )
    authlib.fetch_token(server.token_url, grant_type="client_credentials")

    def authlib_fn() -> str:
        authlib.ensure_active_token()
        return str(authlib.token["access_token"])

    out: dict[str, tuple[list[int], list[float], int]] = {
        "flowcred": ([], [], 0),
        "authlib": ([], [], 0),
    }
    server.delay = 0.050
    try:
        for _ in range(ROUNDS):
            for label in ("authlib", "flowcred"):
                if label == "flowcred":
                    clocks.advance(3600 - 10)  # inside the margin: every resolve must wait
                    fn: Callable[[], str] = lambda: _token(provider.resolve(cid))  # noqa: E731
                else:
                    authlib.token["expires_at"] = int(time.time()) - 1
                    fn = authlib_fn
                server.reset_counts()
                latency, _tokens, errors = thread_storm(n, fn)
                counts, latencies, errs = out[label]
                counts.append(server.count("total"))
                latencies.append(latency)
                out[label] = (counts, latencies, errs + errors)
    finally:
        server.delay = 0.0
        authlib.close()
    return out


def storms_async(
    broker: Broker, server: AuthzServer, clocks: Clocks, n: int
) -> dict[str, tuple[list[int], list[float], int]]:
    server.delay = 0.0
    server.access_token_lifetime = 3600
    cid = _create(broker, server, f"storm asyncio {n}")
    provider = broker.provider()
    provider.resolve(cid)
    out: dict[str, tuple[list[int], list[float], int]] = {
        "flowcred": ([], [], 0),
        "authlib": ([], [], 0),
    }

    async def run() -> None:
        async with AsyncOAuth2Client(
            CLIENT_ID,
            CLIENT_SECRET,
            token_endpoint=server.token_url,
            grant_type="client_credentials",
            timeout=30,
        ) as authlib:
            await authlib.fetch_token(server.token_url, grant_type="client_credentials")

            async def authlib_one() -> str:
                await authlib.ensure_active_token(authlib.token)
                return str(authlib.token["access_token"])

            async def flowcred_one() -> str:
                return _token(await provider.aresolve(cid))

            server.delay = 0.050
            for _ in range(ROUNDS):
                for label in ("authlib", "flowcred"):
                    if label == "flowcred":
                        clocks.advance(3600 - 10)
                        one = flowcred_one
                    else:
                        authlib.token["expires_at"] = int(time.time()) - 1
                        one = authlib_one
                    server.reset_counts()
                    start = time.perf_counter()
                    results = await asyncio.wait_for(
                        asyncio.gather(*(one() for _ in range(n)), return_exceptions=True),
                        timeout=60,
                    )
                    latency = time.perf_counter() - start
                    counts, latencies, errs = out[label]
                    counts.append(server.count("total"))
                    latencies.append(latency)
                    bad = sum(1 for r in results if isinstance(r, BaseException))
                    out[label] = (counts, latencies, errs + bad)

    try:
        asyncio.run(run())
    finally:
        server.delay = 0.0
    return out


def refresh_overhead(
    broker: Broker, server: AuthzServer, clocks: Clocks
) -> tuple[float, float, float]:
    """(median refreshing resolve, median bare POST, median per-expiry difference), seconds."""
    server.delay = 0.0
    server.access_token_lifetime = 3600
    cid = _create(broker, server, "refresh overhead")
    provider = broker.provider()
    provider.resolve(cid)
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    headers = {"Accept": "application/json", "Authorization": "Basic " + basic}
    resolves, bares, diffs = [], [], []
    server.delay = OVERHEAD_DELAY
    try:
        with httpx.Client(timeout=30, follow_redirects=False) as http:
            for i in range(OVERHEAD_EXPIRIES):
                clocks.advance(3600 - 10)
                # Alternate the order so neither always runs right after the other.
                for step in ("resolve", "bare") if i % 2 == 0 else ("bare", "resolve"):
                    start = time.perf_counter()
                    if step == "resolve":
                        provider.resolve(cid)
                        resolve_s = time.perf_counter() - start
                    else:
                        resp = http.post(
                            server.token_url,
                            data={"grant_type": "client_credentials"},
                            headers=headers,
                        )
                        bare_s = time.perf_counter() - start
                        assert resp.status_code == 200, resp.status_code
                resolves.append(resolve_s)
                bares.append(bare_s)
                diffs.append(resolve_s - bare_s)
    finally:
        server.delay = 0.0
    return statistics.median(resolves), statistics.median(bares), statistics.median(diffs)


def steady_load(
    broker: Broker, server: AuthzServer, clocks: Clocks
) -> tuple[list[float], int, int, int]:
    """(resolve latencies, token requests, clock advances, errors) over ~STEADY_SECONDS."""
    server.delay = 0.0
    server.access_token_lifetime = 600
    cid = _create(broker, server, "steady load")
    provider = broker.provider()
    provider.resolve(cid)
    server.delay = STEADY_DELAY
    server.reset_counts()
    stop = threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    advances = [0]

    def resolver() -> None:
        mine: list[float] = []
        for _ in range(2_000_000):  # bounded; ends at the stop event in practice
            if stop.is_set():
                break
            start = time.perf_counter()
            try:
                provider.resolve(cid)
            except Exception:
                with lock:
                    errors[0] += 1
                continue
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    def driver() -> None:
        for _ in range(int(STEADY_SECONDS / 0.1) + 10):
            if stop.wait(0.1):
                break
            clocks.advance(60)
            advances[0] += 1

    threads = [threading.Thread(target=resolver, daemon=True) for _ in range(STEADY_THREADS)]
    drive = threading.Thread(target=driver, daemon=True)
    for thread in [*threads, drive]:
        thread.start()
    time.sleep(STEADY_SECONDS)
    stop.set()
    for thread in [*threads, drive]:
        thread.join(timeout=30)
    requests = server.count("total")
    server.delay = 0.0
    return latencies, requests, advances[0], errors[0]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _print_storm(title: str, figures: dict[str, tuple[list[int], list[float], int]]) -> None:
    fc_counts, fc_lat, fc_err = figures["flowcred"]
    al_counts, al_lat, al_err = figures["authlib"]
    fc_req, al_req = statistics.median(fc_counts), statistics.median(al_counts)
    fc_ms, al_ms = statistics.median(fc_lat) * 1e3, statistics.median(al_lat) * 1e3
    print(title)
    print(
        f"  Authlib  token requests per storm  {al_req:6.1f}   (per storm: {al_counts})"
        f"   errors {al_err}"
    )
    print(
        f"  flowcred token requests per storm  {fc_req:6.1f}   (per storm: {fc_counts})"
        f"   errors {fc_err}   ({fc_req / al_req:.2f}x Authlib; target 1)  "
        f"{'OK' if max(fc_counts) == 1 and fc_err == 0 else 'MISSED'}"
    )
    print(f"  Authlib  storm latency             {al_ms:8.1f} ms (median of {ROUNDS})")
    print(
        f"  flowcred storm latency             {fc_ms:8.1f} ms (median of {ROUNDS})"
        f"   ({fc_ms / al_ms:.2f}x Authlib)"
    )


def main() -> int:
    server = AuthzServer(access_token_lifetime=3600).start()
    server.register_client(CLIENT_ID, CLIENT_SECRET, grant_types=("client_credentials",))
    try:
        with tempfile.TemporaryDirectory() as name:
            clock = ManualClock(datetime.now(UTC))
            clocks = Clocks(clock, server)
            broker = open_broker(settings=load_settings(home=Path(name) / "home"), clock=clock)
            try:
                storm8 = storms_threads(broker, server, clocks, 8)
                storm64 = storms_threads(broker, server, clocks, 64)
                storm_async = storms_async(broker, server, clocks, 64)
                overhead = refresh_overhead(broker, server, clocks)
                steady = steady_load(broker, server, clocks)
            finally:
                broker.close()
    finally:
        server.stop()

    print("token refresh storms (loopback authorization server, endpoint delay 50 ms)")
    _print_storm("  8 threads, one expired token", storm8)
    _print_storm("  64 threads, one expired token", storm64)
    _print_storm(
        "  64 asyncio tasks, one expired token (aresolve vs AsyncOAuth2Client)", storm_async
    )
    print()
    resolve_s, bare_s, diff_s = overhead
    print(
        f"refresh overhead (endpoint delay {OVERHEAD_DELAY * 1e3:.0f} ms,"
        f" median over {OVERHEAD_EXPIRIES} forced expiries)"
    )
    print(f"  bare httpx POST to the token endpoint       {bare_s * 1e3:8.1f} ms")
    print(
        f"  flowcred resolve that refreshes first       {resolve_s * 1e3:8.1f} ms"
        f"   ({resolve_s / bare_s:.2f}x bare POST)"
    )
    print(f"  extra latency a refresh adds (median diff)  {diff_s * 1e3:8.1f} ms")
    print()
    latencies, requests, advances, errors = steady
    slow = sum(1 for v in latencies if v >= SLOW)
    p50, p99 = _pct(latencies, 0.50), _pct(latencies, 0.99)
    print(
        f"steady load ({STEADY_THREADS} threads, {STEADY_SECONDS:.0f} s, endpoint delay"
        f" {STEADY_DELAY * 1e3:.0f} ms, 600 s tokens, clocks +60 s every 100 ms)"
    )
    print(
        f"  resolves {len(latencies):,}   errors {errors}   clock advances {advances}"
        f" ({advances * 60 / 600:.1f} token lifetimes)   token requests {requests}"
    )
    print(
        f"  resolve p50 {p50 * 1e3:8.3f} ms   p99 {p99 * 1e3:8.3f} ms"
        f" ({p99 / STEADY_DELAY:.3f}x endpoint delay)   max {max(latencies) * 1e3:8.1f} ms"
    )
    print(
        f"  resolves >= {SLOW * 1e3:.0f} ms: {slow}   (target 0; p99 far below the endpoint)  "
        f"{'OK' if slow == 0 and p99 < STEADY_DELAY / 4 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
