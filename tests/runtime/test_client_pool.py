"""ClientPool: one client per identity, shared under contention; keys as flowgen's table says."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flowcred.errors import InvalidInput
from flowcred.runtime.client_pool import ClientPool, identity_for, identity_key


class Client:
    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False

    def close(self) -> None:
        self.closed = True


class AsyncClient:
    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        await asyncio.sleep(0)
        self.closed = True


SF = {"credentials_path": "/etc/flowgen/credentials/sf.json"}


def test_hundred_concurrent_threads_share_one_client() -> None:
    pool = ClientPool()
    calls: list[int] = []
    barrier = threading.Barrier(100, timeout=10)

    def factory() -> Client:
        calls.append(1)
        time.sleep(0.05)  # the login: long enough for every other caller to arrive and wait
        return Client(len(calls))

    def caller(_: int) -> Client:
        barrier.wait()
        return pool.get_or_create("salesforce_restapi_sobject", SF, factory)

    with ThreadPoolExecutor(max_workers=100) as executor:
        clients = list(executor.map(caller, range(100), timeout=20))
    assert len(calls) == 1
    assert len({id(c) for c in clients}) == 1
    assert len(pool) == 1


def test_hundred_concurrent_tasks_share_one_client() -> None:
    pool = ClientPool()
    calls: list[int] = []

    async def factory() -> Client:
        calls.append(1)
        await asyncio.sleep(0.05)
        return Client(len(calls))

    async def main() -> list[Client]:
        return await asyncio.wait_for(
            asyncio.gather(
                *(pool.aget_or_create("gcp_bigquery_query", SF, factory) for _ in range(100))
            ),
            timeout=10,
        )

    clients = asyncio.run(main())
    assert len(calls) == 1 and len({id(c) for c in clients}) == 1


def test_a_differing_identity_field_gets_its_own_client() -> None:
    pool = ClientPool()
    base = {
        "credentials_path": "/c/mssql.json",
        "max_connections": 10,
        "connection_timeout": 5,
        "query_timeout": 30,
    }
    counter = iter(range(100))
    first = pool.get_or_create("mssql_query", base, lambda: Client(next(counter)))
    again = pool.get_or_create("mssql_query", dict(base), lambda: Client(next(counter)))
    other = pool.get_or_create(
        "mssql_query", {**base, "max_connections": 20}, lambda: Client(next(counter))
    )
    assert first is again and other is not first and len(pool) == 2


def test_two_task_types_never_share() -> None:
    pool = ClientPool()
    a = pool.get_or_create("salesforce_pubsub_subscriber", SF, lambda: Client(1))
    b = pool.get_or_create("salesforce_restapi_sobject", SF, lambda: Client(2))
    assert a is not b
    assert identity_key("salesforce_pubsub_subscriber", SF) != identity_key(
        "salesforce_restapi_sobject", SF
    )


def test_a_failed_init_is_not_cached_and_a_retry_succeeds() -> None:
    pool = ClientPool()
    attempts: list[int] = []

    def flaky() -> Client:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("login refused")
        return Client(len(attempts))

    with pytest.raises(ConnectionError):
        pool.get_or_create("gcp_bigquery_query", SF, flaky)
    assert len(pool) == 0
    client = pool.get_or_create("gcp_bigquery_query", SF, flaky)
    assert client.n == 2 and pool.get_or_create("gcp_bigquery_query", SF, flaky) is client
    assert len(attempts) == 2


def test_waiters_of_a_failed_init_retry_and_then_share() -> None:
    pool = ClientPool()
    attempts: list[int] = []
    barrier = threading.Barrier(10, timeout=10)

    def flaky() -> Client:
        attempts.append(1)
        time.sleep(0.05)
        if len(attempts) == 1:
            raise ConnectionError("first login refused")
        return Client(len(attempts))

    def caller(_: int) -> Client | None:
        barrier.wait()
        try:
            return pool.get_or_create(
                "nats_kv_store", {"credentials_path": "/n", "url": "u"}, flaky
            )
        except ConnectionError:
            return None

    with ThreadPoolExecutor(max_workers=10) as executor:
        results = list(executor.map(caller, range(10), timeout=20))
    assert results.count(None) == 1
    assert len({id(r) for r in results if r is not None}) == 1
    assert len(attempts) == 2


def test_different_keys_do_not_wait_for_each_other() -> None:
    pool = ClientPool()
    b_made = threading.Event()

    def slow_a() -> Client:
        assert b_made.wait(5), "key B was blocked behind key A's initialisation"
        return Client(1)

    def fast_b() -> Client:
        b_made.set()
        return Client(2)

    with ThreadPoolExecutor(max_workers=2) as executor:
        a = executor.submit(pool.get_or_create, "gcp_x", {"credentials_path": "/a"}, slow_a)
        time.sleep(0.02)
        b = executor.submit(pool.get_or_create, "gcp_x", {"credentials_path": "/b"}, fast_b)
        assert (a.result(timeout=10).n, b.result(timeout=10).n) == (1, 2)


def test_key_is_sha256_of_canonical_json_with_sorted_fields() -> None:
    identity = {"path": "bucket/prefix", "credentials_path": "/c/s3.json"}
    expected = hashlib.sha256(
        json.dumps(
            {
                "identity": {"credentials_path": "/c/s3.json", "path": "bucket/prefix"},
                "task_type": "object_store_reader",
            },
            separators=(",", ":"),
        ).encode()
    ).hexdigest()
    assert identity_key("object_store_reader", identity) == expected
    reordered = dict(reversed(list(identity.items())))
    assert identity_key("object_store_reader", reordered) == expected


def test_the_path_string_is_hashed_not_the_file_content(tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    one.write_text('{"token": "same"}')
    two.write_text('{"token": "same"}')
    key_one = identity_key("gcp_q", {"credentials_path": one})
    assert key_one != identity_key("gcp_q", {"credentials_path": two})
    one.write_text('{"token": "rotated"}')
    assert identity_key("gcp_q", {"credentials_path": str(one)}) == key_one


def test_identity_for_picks_the_family_fields_from_a_task_config() -> None:
    task = {
        "name": "q1",
        "credentials_path": "/c/mssql.json",
        "max_connections": 10,
        "query": "SELECT 1",
    }
    assert identity_for("mssql_query", task) == {
        "credentials_path": "/c/mssql.json",
        "max_connections": 10,
        "connection_timeout": None,
        "query_timeout": None,
    }
    other_query = {**task, "name": "q2", "query": "SELECT 2"}
    assert identity_key("mssql_query", identity_for("mssql_query", task)) == identity_key(
        "mssql_query", identity_for("mssql_query", other_query)
    )
    assert identity_for("nats_jetstream_subscriber", {"url": "nats://x", "subject": "s"}) == {
        "credentials_path": None,
        "url": "nats://x",
    }
    assert identity_for("object_store", {"path": "p"}) == {"path": "p", "credentials_path": None}
    with pytest.raises(InvalidInput, match="'convert' has no shared-client identity"):
        identity_for("convert", {})


def test_close_closes_every_client_and_empties_the_pool() -> None:
    pool = ClientPool()
    sync_client = pool.get_or_create("gcp_a", {"credentials_path": "/a"}, lambda: Client(1))
    async_client = pool.get_or_create("gcp_b", {"credentials_path": "/b"}, AsyncClient)
    plain = pool.get_or_create("gcp_c", {"credentials_path": "/c"}, object)
    pool.close()
    assert sync_client.closed and async_client.closed and plain is not None
    assert len(pool) == 0
    fresh = pool.get_or_create("gcp_a", {"credentials_path": "/a"}, lambda: Client(2))
    assert fresh is not sync_client


def test_a_failing_close_does_not_stop_the_others() -> None:
    class Broken:
        def close(self) -> None:
            raise OSError("socket already gone")

    pool = ClientPool()
    pool.get_or_create("gcp_a", {"credentials_path": "/a"}, Broken)
    healthy = pool.get_or_create("gcp_b", {"credentials_path": "/b"}, lambda: Client(1))
    with pytest.raises(OSError, match="socket already gone"):
        pool.close()
    assert healthy.closed and len(pool) == 0


def test_aclose_awaits_async_and_calls_sync_closers() -> None:
    pool = ClientPool()

    async def main() -> tuple[AsyncClient, Client]:
        a = await pool.aget_or_create("gcp_a", {"credentials_path": "/a"}, AsyncClient)
        s = await pool.aget_or_create("gcp_b", {"credentials_path": "/b"}, lambda: Client(1))
        await pool.aclose()
        return a, s

    a, s = asyncio.run(main())
    assert a.closed and s.closed and len(pool) == 0
