"""Request dependencies: who is calling (API key), what they may do (role), and where (tenant).

Deny by default: every route declares the roles it admits with :func:`require_role`, and the
:class:`Caller` it receives is the only way to reach the broker, through a view audited as that
key from the client's address.

* Missing or bad key → 401 with ``WWW-Authenticate``; the body is the same for both.
* Valid key without the role → 403.
* An object of another tenant → 404, answered exactly like a nonexistent id.
* Repeated bad keys from one client → 429 with ``Retry-After`` (a bounded in-memory window);
  a valid key from that client is still served: failures are throttled, not clients.

Every denial is an audit event.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, NoReturn

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from flowcred.audit import Access, Actor
from flowcred.audit.events import API_KEY
from flowcred.broker import Broker, BrokerView
from flowcred.errors import AccessDenied, CredentialNotFound
from flowcred.store.api_keys import ApiKey

#: Roles whose keys may read secrets (resolve); the others may not redirect one either.
RESOLVING_ROLES = frozenset({"admin", "worker"})

UNAUTHORIZED = HTTPException(
    status_code=401,
    detail="missing or invalid API key",
    headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
)


class FailedKeyLimiter:
    """Counts failed authentications per client in a sliding window; bounded in memory.

    After ``limit`` failures within ``window`` seconds a client is refused (429) until the oldest
    failure leaves the window. At most ``max_clients`` clients are tracked (least recent dropped).
    """

    def __init__(self, limit: int = 20, window: float = 60.0, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Seconds to wait if ``client`` is over the limit, else 0."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stamps = self._failures.get(client)
            if not stamps:
                return 0
            stamps[:] = [t for t in stamps if now - t < self.window]
            if len(stamps) < self.limit:
                return 0
            return max(1, int(self.window - (now - stamps[0])) + 1)

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            stamps = self._failures.setdefault(client, [])
            stamps.append(now)
            del stamps[: -self.limit]
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)


def client_address(request: Request) -> str:
    """The peer address as the server sees it (proxy headers are judged in middleware)."""
    return request.client.host if request.client is not None else "unknown"


def get_broker(request: Request) -> Broker:
    broker: Broker = request.app.state.broker
    return broker


@dataclass(frozen=True)
class Caller:
    """The authenticated API key and a broker view audited as it."""

    key: ApiKey
    view: BrokerView
    source: str

    @property
    def platform(self) -> bool:
        """A platform key (tenant ``*``) reaches every tenant."""
        return self.key.tenant == "*"

    def tenant_filter(self) -> str | None:
        """The tenant to restrict queries to: the key's, or ``None`` for a platform key."""
        return None if self.platform else self.key.tenant

    def owns(self, tenant: str) -> bool:
        return self.platform or self.key.tenant == tenant

    def check_tenant(self, tenant: str, ref: int | str) -> None:
        """404 exactly like an unknown id when ``tenant`` is not this key's (audited as denied)."""
        if not self.owns(tenant):
            exc = CredentialNotFound(ref, self.key.tenant)
            exc.foreign = True  # type: ignore[attr-defined]
            raise exc


# Declared by :func:`authenticate` so OpenAPI lists the scheme on every authenticated operation
# and Swagger UI's Authorize button sends the header; the key itself is checked below.
API_KEY_SCHEME = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="A flowcred API key (`flowcred apikeys create`).",
    auto_error=False,
)


async def authenticate(
    request: Request, _declared: Annotated[str | None, Security(API_KEY_SCHEME)] = None
) -> Caller:
    """Resolve ``X-API-Key`` to a caller, or answer 401 / 429 (and audit the failure).

    The key is judged first: a valid key is always served, even from an address the failed-key
    limiter is throttling, so a flood of bad keys from behind the same NAT cannot lock out
    everyone else. Only a failed attempt from a throttled address gets 429 (not audited, not
    counted: the window then empties on its own). Keys are random 256-bit tokens, so letting a
    throttled address still be told that a key is valid gives a guesser nothing.

    The caller is kept on ``request.state``: the route class authenticates before the body is
    read, and the role dependency then reuses that answer (one check, one audit event).

    Async on purpose: a known key is an in-memory cache hit, and a sync dependency would cost
    every request a thread-pool hop. A cache miss is one indexed read; a failure's audit write
    runs in a thread so the event loop never waits on the disk.
    """
    cached: Caller | None = getattr(request.state, "flowcred_caller", None)
    if cached is not None:
        return cached
    broker = get_broker(request)
    source = client_address(request)
    raw = request.headers.get("x-api-key")
    try:
        if not raw:
            raise AccessDenied("missing API key")
        key = broker.api_keys.authenticate(raw)
    except AccessDenied as exc:
        wait = await refuse_key(request, exc)
        if wait:
            raise HTTPException(
                status_code=429,
                detail="too many failed authentication attempts",
                headers={"Retry-After": str(wait)},
            ) from None
        raise UNAUTHORIZED from None
    caller = caller_for(broker, key, source)
    request.state.flowcred_caller = caller
    return caller


async def refuse_key(request: Request, exc: AccessDenied, **details: object) -> int:
    """A failed authentication from this client (REST key header or the UI's sign-in form).

    Returns the seconds to wait when the client is over the failed-key limit (then nothing is
    counted or audited, so the window empties on its own); otherwise counts the failure, writes
    one ``authentication_failed`` event and returns 0.
    """
    limiter: FailedKeyLimiter = request.app.state.key_limiter
    source = client_address(request)
    wait = limiter.retry_after(source)
    if wait:
        return wait
    limiter.failed(source)
    await run_in_threadpool(
        get_broker(request).audit_denial,
        Access(Actor("anonymous", "anonymous", ""), source),
        API_KEY,
        "authentication_failed",
        details={
            "reason": str(exc),
            "path": request.url.path,
            "method": request.method,
            **details,
        },
    )
    return 0


def caller_for(broker: Broker, key: ApiKey, source: str) -> Caller:
    """The caller an authenticated key acts as: every event names the key and ``source``. The
    REST API and the web UI's sessions both go through here, so they act alike."""
    actor = Actor("api_key", key.id, key.name)
    view = broker.acting_as(actor, source=source, may_resolve=key.role in RESOLVING_ROLES)
    return Caller(key=key, view=view, source=source)


AuthenticatedCaller = Annotated[Caller, Depends(authenticate)]


class RoleCheck:
    """A dependency admitting only keys whose role is in ``roles``; others get 403 (audited).

    A class (not a closure) so the route class can find it on a route and run it before the body
    is read: authentication and authorisation come before any input validation.
    """

    def __init__(self, roles: frozenset[str]) -> None:
        self.roles = roles

    async def __call__(self, caller: AuthenticatedCaller, request: Request) -> Caller:
        if caller.key.role not in self.roles:
            await run_in_threadpool(
                get_broker(request).audit_denial,
                caller.view.access,
                API_KEY,
                "access_denied",
                details={
                    "role": caller.key.role,
                    "path": request.url.path,
                    "method": request.method,
                },
            )
            raise HTTPException(status_code=403, detail="this API key's role may not do that")
        return caller


def require_role(*roles: str) -> RoleCheck:
    """A dependency admitting only keys whose role is in ``roles``; others get 403 (audited)."""
    return RoleCheck(frozenset(roles))


def deny_tenant(caller: Caller, request: Request, tenant: str) -> NoReturn:
    """403 for acting in a tenant the key does not own; audited like every denial."""
    get_broker(request).audit_denial(
        caller.view.access,
        API_KEY,
        "access_denied",
        details={
            "tenant": tenant,
            "key_tenant": caller.key.tenant,
            "path": request.url.path,
            "method": request.method,
        },
    )
    raise HTTPException(status_code=403, detail="this API key may not act in that tenant")


Admin = Annotated[Caller, Depends(require_role("admin"))]
Editor = Annotated[Caller, Depends(require_role("admin", "developer"))]
Viewer = Annotated[Caller, Depends(require_role("admin", "developer", "viewer"))]
Resolver = Annotated[Caller, Depends(require_role("admin", "worker"))]
Anyone = Annotated[Caller, Depends(require_role("admin", "developer", "viewer", "worker"))]
