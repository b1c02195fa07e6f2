"""One authenticated client per identity, shared by every task that has that identity.

flowgen tasks that point at the same credentials file share one client: the first to start
performs the login (a Salesforce OAuth handshake, an MSSQL pool), the others wait and reuse it,
which spares rate-limited login endpoints. :class:`ClientPool` does the same for flowcred hosts.

Contract:

* The key is :func:`identity_key`: SHA-256 (hex) over a canonical JSON encoding of the task
  type and the identity fields sorted by name. The *path string* of a credentials file is
  hashed, never its content. The task type is part of the key, so two task types never share a
  client, even with equal fields.
* Which fields make an identity depends on the task family (:data:`IDENTITY_FIELDS`, flowgen's
  table); :func:`identity_for` picks them from a task's config.
* :meth:`ClientPool.get_or_create` runs ``factory()`` at most once per key at a time, under a
  per-key lock: concurrent callers of the same key wait and get the same client, callers of
  other keys are not held up. A factory that raises stores nothing, so the next call retries.
  :meth:`ClientPool.aget_or_create` is the asyncio equivalent (``factory`` may be a coroutine
  function); use one pool from threads or from one event loop, not both for the same key.
* :meth:`ClientPool.close` / :meth:`ClientPool.aclose` empty the pool and close every client
  that has ``close()`` / ``aclose()``; a failing close does not stop the others (the first
  error is raised after all were tried). The pool may be used again afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from flowcred.errors import FieldProblem, InvalidInput

T = TypeVar("T")

log = logging.getLogger("flowcred.client_pool")

#: Identity fields by task family, as flowgen's documentation lists them. A key ending in ``_``
#: is a prefix of task types (``salesforce_`` covers ``salesforce_pubsub_subscriber``).
IDENTITY_FIELDS: Mapping[str, tuple[str, ...]] = {
    "salesforce_": ("credentials_path",),
    "gcp_": ("credentials_path",),
    "mssql_query": ("credentials_path", "max_connections", "connection_timeout", "query_timeout"),
    "nats_jetstream_": ("credentials_path", "url"),
    "nats_kv_store": ("credentials_path", "url"),
    "object_store": ("path", "credentials_path"),
    "object_store_": ("path", "credentials_path"),
}


def identity_fields(task_type: str) -> tuple[str, ...] | None:
    """The identity fields of ``task_type``'s family, or ``None`` when it shares no clients."""
    if task_type in IDENTITY_FIELDS:
        return IDENTITY_FIELDS[task_type]
    for prefix, fields in IDENTITY_FIELDS.items():
        if prefix.endswith("_") and task_type.startswith(prefix):
            return fields
    return None


def identity_for(task_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The identity fields of a task's config (absent fields as ``None``).

    Raises :class:`~flowcred.errors.InvalidInput` for a task type without shared clients.
    """
    fields = identity_fields(task_type)
    if fields is None:
        raise InvalidInput(
            [FieldProblem("task_type", f"{task_type!r} has no shared-client identity")],
            subject="client identity",
        )
    return {name: config.get(name) for name in fields}


def _canonical(value: object) -> object:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"identity values must be JSON values or paths, not {type(value).__name__}")


def identity_key(task_type: str, identity: Mapping[str, Any]) -> str:
    """SHA-256 hex of the task type plus the identity fields sorted by name (canonical JSON)."""
    try:
        encoded = json.dumps(
            {"task_type": task_type, "identity": dict(identity)},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_canonical,
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            [FieldProblem("identity", str(exc))], subject="client identity"
        ) from None
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class ClientPool:
    """Shared clients by identity (see the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, object] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._async_locks: dict[str, asyncio.Lock] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._clients

    def _lookup(self, key: str) -> tuple[bool, object]:
        with self._lock:
            if key in self._clients:
                return True, self._clients[key]
            return False, None

    def _store(self, key: str, client: object) -> None:
        with self._lock:
            self._clients[key] = client

    def get_or_create(
        self, task_type: str, identity: Mapping[str, Any], factory: Callable[[], T]
    ) -> T:
        """The client for this identity, made by ``factory()`` if there is none yet."""
        key = identity_key(task_type, identity)
        found, client = self._lookup(key)
        if found:
            return cast(T, client)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            found, client = self._lookup(key)
            if found:
                return cast(T, client)
            created = factory()
            self._store(key, created)
            return created

    async def aget_or_create(
        self,
        task_type: str,
        identity: Mapping[str, Any],
        factory: Callable[[], Awaitable[T]] | Callable[[], T],
    ) -> T:
        """:meth:`get_or_create` for asyncio; awaits ``factory()`` when it returns an awaitable."""
        key = identity_key(task_type, identity)
        found, client = self._lookup(key)
        if found:
            return cast(T, client)
        with self._lock:
            key_lock = self._async_locks.setdefault(key, asyncio.Lock())
        async with key_lock:
            found, client = self._lookup(key)
            if found:
                return cast(T, client)
            made: object = factory()
            created = cast(T, (await made) if inspect.isawaitable(made) else made)
            self._store(key, created)
            return created

    def _take_all(self) -> list[object]:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
            return clients

    def close(self) -> None:
        """Close every client (``close()``, else ``aclose()`` run to completion) and empty."""
        first: Exception | None = None
        for client in self._take_all():
            try:
                closer = getattr(client, "close", None)
                if callable(closer):
                    result = closer()
                    if inspect.isawaitable(result):
                        asyncio.run(_await(result))
                    continue
                acloser = getattr(client, "aclose", None)
                if callable(acloser):
                    asyncio.run(_await(acloser()))
            except Exception as exc:
                log.warning(
                    "closing a shared %s failed (%s)", type(client).__name__, type(exc).__name__
                )
                first = first or exc
        if first is not None:
            raise first

    async def aclose(self) -> None:
        """Close every client (``aclose()``, else ``close()``, awaited if it returns one)."""
        first: Exception | None = None
        for client in self._take_all():
            try:
                closer = getattr(client, "aclose", None) or getattr(client, "close", None)
                if callable(closer):
                    result = closer()
                    if inspect.isawaitable(result):
                        await result
            except Exception as exc:
                log.warning(
                    "closing a shared %s failed (%s)", type(client).__name__, type(exc).__name__
                )
                first = first or exc
        if first is not None:
            raise first


async def _await(awaitable: Awaitable[object]) -> None:
    await awaitable
