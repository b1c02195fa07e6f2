"""Run one family's connection test safely: bounded in time, off the event loop, scrubbed.

:func:`run_test` is the only way flowcred runs a :class:`~flowcred.connectors.base.ConnectionTest`.
It

1. finds the family by the catalog type's ``test.kind`` (importing
   :mod:`flowcred.connectors.families` registers them all); a type without one raises
   :class:`~flowcred.errors.InvalidCredential` ("no live test"), since nothing can be tested;
2. checks every destination of the target's config against the
   :class:`~flowcred.connectors.destinations.DestinationPolicy` *before* the family runs
   (after DNS resolution; HTTP re-checks after each redirect via :func:`current_policy`);
3. runs the family in a daemon worker thread and waits at most ``timeout`` seconds: a hung
   driver gives "timed out after N s" and its thread is abandoned (at most
   :data:`MAX_RUNNING` tests run or hang at once; beyond that a test is refused, not queued);
4. scrubs the message of every secret value of the target and its encoded forms (URL-encoded,
   base64, JSON/repr-escaped, via :class:`~flowcred.redaction.SecretRegistry`, plus the
   ``user:password`` pairs a basic-auth header base64-encodes) before it is returned or logged.

It never raises for a failed test: refusals, driver errors, timeouts all come back as a
:class:`~flowcred.connectors.base.TestResult` with ``ok=False``. It does blocking work
(DNS, the wait): call it from a worker thread, never from an event loop.
"""

from __future__ import annotations

import contextvars
import importlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flowcred.catalog import Catalog, CredentialType, default_catalog
from flowcred.connectors.base import ConnectionTestError, TestResult, TestTarget, registered
from flowcred.connectors.destinations import DestinationPolicy
from flowcred.errors import DestinationRefused, FieldProblem, InvalidCredential
from flowcred.redaction import Secret, SecretRegistry, default_registry

log = logging.getLogger("flowcred.connectors")

DEFAULT_TIMEOUT = 10.0
#: Tests running (or hung and abandoned) at once; a further one is refused until one ends.
MAX_RUNNING = 32
#: Longest message returned; longer driver messages are cut (after scrubbing).
MAX_MESSAGE = 500

# Config fields whose value is a host name (or "host:port", comma-separated lists allowed).
_HOST_FIELDS = frozenset(
    {"host", "hostname", "hosts", "server", "servers", "endpoint", "broker", "brokers"}
    | {"bootstrap_servers", "nodes", "address"}
)
# Destination fields that a test never connects to: where a browser is sent after consent.
_NOT_CONTACTED = frozenset({"redirect_uri", "scopes"})

# A secret value that is a URL (a connection string), not JSON or a key that mentions one.
_URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s]*$")

_running = threading.BoundedSemaphore(MAX_RUNNING)
_policy_var: contextvars.ContextVar[DestinationPolicy | None] = contextvars.ContextVar(
    "flowcred_test_policy", default=None
)


def current_policy() -> DestinationPolicy:
    """The policy of the test running in this thread (families re-check redirects with it)."""
    return _policy_var.get() or DestinationPolicy()


def kind_of(ctype: CredentialType) -> str | None:
    """The catalog's ``test.kind`` of ``ctype``, if any."""
    kind = (ctype.test or {}).get("kind")
    return kind if isinstance(kind, str) and kind else None


def family_for(ctype: CredentialType) -> type[Any] | None:
    """The registered :class:`ConnectionTest` class for ``ctype``'s ``test.kind``, or None."""
    importlib.import_module("flowcred.connectors.families")
    kind = kind_of(ctype)
    return registered().get(kind) if kind is not None else None


def destinations(
    ctype: CredentialType, config: Mapping[str, Any], secret: Mapping[str, Secret] | None = None
) -> Iterator[tuple[str, int | None]]:
    """Every ``(host, port)`` the target points a test at.

    URL values (any scheme: ``https://``, ``amqp://``, ``mongodb://h1,h2``) give their hosts;
    host fields (``host``, ``brokers``, ...) give theirs, with ``port`` from the config. A list
    value (NATS ``servers``, Elasticsearch ``urls``) gives every element's hosts. Secret fields
    that hold a URL (a MongoDB ``connection_string`` embeds its password) are checked too: a
    destination hidden in a secret is still a destination.
    """
    port = config.get("port")
    default_port = port if isinstance(port, int) and not isinstance(port, bool) else None
    names = {spec.name for spec in ctype.destination_fields if not spec.secret} | {"test_url"}
    names |= _HOST_FIELDS & set(config)
    for name in sorted(names - _NOT_CONTACTED):
        yield from _value_hosts(name, config.get(name), default_port)
    for value in (secret or {}).values():
        text = value.reveal().strip()
        if _URL_START.match(text):
            yield from _url_hosts(text)


def _value_hosts(
    name: str, value: Any, default_port: int | None
) -> Iterator[tuple[str, int | None]]:
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        if not isinstance(item, str) or not item.strip():
            continue
        if "://" in item:
            yield from _url_hosts(item)
        elif name in _HOST_FIELDS or isinstance(value, list | tuple):
            for part in item.split(","):
                yield _host_port(part.strip(), default_port)


def _url_hosts(url: str) -> Iterator[tuple[str, int | None]]:
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rpartition("@")[2]
    default = {"https": 443, "http": 80}.get(parts.scheme)
    for part in netloc.split(","):
        if part:
            yield _host_port(part, default)


def _host_port(text: str, default: int | None) -> tuple[str, int | None]:
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else default
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port) if port.isdigit() else default
    return text, default


def scrubber(target: TestTarget) -> Callable[[str], str]:
    """A function masking ``target``'s secrets (and their encoded forms) in a text."""
    registry = SecretRegistry()
    secrets = [s.reveal() for s in target.secret.values()]
    registry.register_many(secrets)
    # A basic-auth header is base64("user:password"): the password alone is not at a 3-byte
    # boundary in it, so register the pairs too (the registry derives their base64 forms).
    users = [v for v in target.config.values() if isinstance(v, str) and 0 < len(v) <= 256]
    for secret in secrets:
        for user in users:
            registry.register(f"{user}:{secret}")
    shared = default_registry()

    def scrub(text: str) -> str:
        return shared.redact(registry.redact(text))

    return scrub


def run_test(
    target: TestTarget,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    policy: DestinationPolicy | None = None,
    catalog: Catalog | None = None,
) -> TestResult:
    """Run the live test of ``target`` (see the module docstring). Never raises for a failed
    test; raises :class:`InvalidCredential` when the type has no live test at all."""
    ctype = (catalog or default_catalog()).get(target.type)
    family = family_for(ctype)
    if family is None:
        raise InvalidCredential(
            [FieldProblem("type", f"type {ctype.name!r} has no live connection test")],
            type_name=ctype.name,
        )
    policy = policy or DestinationPolicy()
    scrub = scrubber(target)
    started = time.perf_counter()
    hosts = list(destinations(ctype, target.config, target.secret))
    ok, message = _run_bounded(family(), target, timeout, policy, hosts)
    result = TestResult(
        ok=ok,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        message=scrub(message)[:MAX_MESSAGE],
        checked_at=datetime.now(UTC),
    )
    log.info(
        "connection test of a %s credential: %s (%.0f ms)",
        ctype.name,
        "ok" if ok else "failed: " + result.message,
        result.latency_ms,
    )
    return result


def _run_bounded(
    test: Any,
    target: TestTarget,
    timeout: float,
    policy: DestinationPolicy,
    hosts: list[tuple[str, int | None]],
) -> tuple[bool, str]:
    """Check ``hosts`` against ``policy``, then run ``test.check``, in a daemon thread; wait
    at most ``timeout`` seconds for both (a slow DNS answer counts against the timeout)."""
    if not _running.acquire(blocking=False):
        return False, f"too many connection tests in progress ({MAX_RUNNING}); try again later"
    outcome: list[tuple[bool, str] | BaseException] = []
    deadline = time.monotonic() + timeout

    def work() -> None:
        try:
            _policy_var.set(policy)
            for host, port in hosts:
                policy.check_host(host, port)
            left = max(0.05, deadline - time.monotonic())  # the family gets what DNS left
            outcome.append((True, str(test.check(target, left)) or "connected"))
        except ConnectionTestError as exc:
            outcome.append((False, str(exc) or "connection test failed"))
        except (DestinationRefused, InvalidCredential) as exc:
            outcome.append(exc)
        except Exception as exc:  # a driver's own error type: reported, never raised
            outcome.append((False, f"test failed: {type(exc).__name__}: {exc}"))
        finally:
            _running.release()

    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(work,), name=f"flowcred-test-{target.type}", daemon=True
    )
    thread.start()
    thread.join(timeout + 0.25)
    if not outcome:
        return False, f"timed out after {timeout:g} s"
    first = outcome[0]
    if isinstance(first, DestinationRefused):
        return False, str(first)
    if isinstance(first, BaseException):
        raise first
    if not first[0] and first[1].startswith("timed out"):
        # The family timed out on what DNS left of the budget: name the budget people set.
        return False, f"timed out after {timeout:g} s"
    return first


def live_test_of(ctype: CredentialType) -> str:
    """How the type's connection test is proven: "live-tested" (CI runs it against a real
    server), "live-tested family (KIND)" (its family's code is, against another type's server:
    Redshift through ``postgres``), "not live-tested" (its family exists but CI has no server
    for it), or "no test" (no family serves its ``test.kind``)."""
    family = family_for(ctype)
    if family is None:
        kind = kind_of(ctype)
        return f"no test ({kind})" if kind else "no test"
    if not family.live_tested:
        return "not live-tested"
    if ctype.name in family.live_types:
        return "live-tested"
    return f"live-tested family ({family.kind})"
