"""Test a stored credential (or an unsaved one) and keep its status true.

:func:`run_stored_test` resolves the credential through the audited
:meth:`~flowcred.runtime.credential_provider.CredentialProvider.test`, runs the family's test
with :func:`~flowcred.connectors.runner.run_test`, and records one ``tested`` audit event with
``{ok, latencyMs, message}`` (fail closed: if the event cannot be written, the call raises and
nothing is returned or changed). Then the status follows the outcome: ``active`` on success,
``error`` on failure (an expired credential stays expired).

:func:`run_unsaved_test` tests a create body without storing anything: it validates the body as a
create would, runs the test, and records one ``tested`` event without a resource id.

Both run blocking work: call them from a worker thread, never on an event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flowcred.audit.events import CREDENTIAL
from flowcred.catalog.secret_shape import check_secret_shape
from flowcred.connectors.base import TestResult, TestTarget
from flowcred.connectors.destinations import DestinationPolicy
from flowcred.connectors.runner import DEFAULT_TIMEOUT, family_for, kind_of, run_test
from flowcred.errors import (
    CircuitOpen,
    CredentialExpired,
    DecryptionFailed,
    FieldProblem,
    FlowcredError,
    InvalidCredential,
    TokenRefreshFailed,
)
from flowcred.records import CredentialStatus
from flowcred.redaction import Secret, default_registry
from flowcred.runtime.material import CredentialMaterial
from flowcred.runtime.provider import Ref, secret_text

if TYPE_CHECKING:
    from flowcred.broker import BrokerView

# Resolve failures that are the credential's own fault: a failed test, not a refused request.
_FAILED_RESOLVES = (CredentialExpired, DecryptionFailed, TokenRefreshFailed, CircuitOpen)


def target_of(material: CredentialMaterial) -> TestTarget:
    """The test target of resolved material: secret fields stay wrapped."""
    config = {k: v for k, v in material.fields.items() if not isinstance(v, Secret)}
    secret = {k: v for k, v in material.fields.items() if isinstance(v, Secret)}
    return TestTarget(type=material.type, config=config, secret=secret)


def policy_of(view: BrokerView) -> DestinationPolicy:
    """The destination policy of the broker's settings (FLOWCRED_TEST_DENY / _ALLOW)."""
    return DestinationPolicy.from_settings(view._broker.settings)


def _timeout_of(view: BrokerView, timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    return float(getattr(view._broker.settings, "test_timeout_seconds", DEFAULT_TIMEOUT))


def run_stored_test(
    view: BrokerView,
    ref: Ref,
    *,
    tenant: str,
    environment: str = "default",
    timeout: float | None = None,
    policy: DestinationPolicy | None = None,
) -> TestResult:
    """Test a stored credential; audited; sets its status. Raises CredentialNotFound,
    InvalidCredential (the type has no live test, or lacks e.g. ``test_url``), AuditWriteFailed;
    a failed test is a result, not an exception."""
    _refuse_untestable(view, ref, tenant, environment)
    provider = view.provider(tenant=tenant, environment=environment)
    seconds = _timeout_of(view, timeout)
    chosen = policy or policy_of(view)
    outcome: list[TestResult] = []
    tested: list[int] = []

    def check(material: CredentialMaterial) -> tuple[bool, dict[str, Any]]:
        result = run_test(
            target_of(material), timeout=seconds, policy=chosen, catalog=view._broker.catalog
        )
        outcome.append(result)
        tested.append(material.credential_id)
        details = result.to_dict()
        details.pop("checkedAt")
        return result.ok, details

    try:
        provider.test(ref, check)
    except _FAILED_RESOLVES as exc:
        # The provider has recorded the failed ``tested`` event already.
        result = TestResult(False, 0.0, str(exc), datetime.now(UTC))
        if not isinstance(exc, CredentialExpired):
            _set_status(view, ref, tenant, environment, ok=False)
        return result
    _set_status(view, tested[0], tenant, environment, ok=outcome[0].ok)
    return outcome[0]


def _refuse_untestable(view: BrokerView, ref: Ref, tenant: str, environment: str) -> None:
    """Refuse (audited, InvalidCredential) a credential whose type has no live test *before*
    resolving it: resolving an OAuth type may call its token endpoint, for nothing. Anything
    unclear (unknown ref, another tenant's id) is left to the audited resolve."""
    broker = view._broker
    try:
        cid = broker._resolver.credential_id(ref, tenant, environment)
    except FlowcredError:
        return
    record = broker.record_for(cid)
    if record is None or record.tenant != tenant:
        return
    ctype = broker.catalog.get(record.type)
    if family_for(ctype) is None:
        kind = kind_of(ctype)
        exc = InvalidCredential(
            [FieldProblem("type", f"type {ctype.name!r} has no live connection test")]
            if kind is None
            else [FieldProblem("type", f"no live test for test kind {kind!r} yet")],
            type_name=ctype.name,
        )
        broker._trail.failure(view.access, "tested", exc, tenant=tenant, ref=ref)
        raise exc


def _set_status(view: BrokerView, ref: Ref, tenant: str, environment: str, *, ok: bool) -> None:
    """``active`` / ``error`` after a test; an expired credential keeps its status, and an
    unchanged status is not rewritten (periodic re-tests do not churn ``updated_at``)."""
    store = view.credentials._store
    if isinstance(ref, int):
        record = store.get(ref)
    else:
        record = store.find_handle(tenant, environment, ref)
    if record is None or record.status == "expired":
        return
    wanted: CredentialStatus = "active" if ok else "error"
    if record.status != wanted:
        store.update(record.id, status=wanted)
        view._broker._resolver.invalidate(record.id)


def run_unsaved_test(
    view: BrokerView,
    *,
    type_name: str,
    config: Mapping[str, Any] | None,
    secret: Mapping[str, Any] | None,
    secret_value: str | None,
    tenant: str,
    timeout: float | None = None,
    policy: DestinationPolicy | None = None,
) -> TestResult:
    """Test a create body (``type``, ``config``, ``secret`` / ``secretValue``) without storing
    anything. Raises InvalidCredential naming every bad field, as a create would."""
    broker = view._broker
    try:
        ctype = broker.catalog.get(type_name)
        payload, problems = check_secret_shape(ctype, secret, secret_value)
        if payload is None:
            raise InvalidCredential(problems, type_name=ctype.name)
        registry = default_registry()
        for value in payload.values():
            registry.register(secret_text(value))  # transient: masked in logs, not pinned
        clean_config, clean_secret = ctype.validate(config, payload)
        target = TestTarget(
            type=ctype.name,
            config=clean_config,
            secret={k: Secret(secret_text(v)) for k, v in clean_secret.items()},
        )
        result = run_test(
            target,
            timeout=_timeout_of(view, timeout),
            policy=policy or policy_of(view),
            catalog=broker.catalog,
        )
    except InvalidCredential as exc:
        broker._trail.failure(view.access, "tested", exc, tenant=tenant, ref=None)
        raise
    details = {"type": ctype.name, "saved": False, **result.to_dict()}
    details.pop("checkedAt")
    broker.audit_event(
        view.access,
        CREDENTIAL,
        "tested",
        "success" if result.ok else "failure",
        tenant=tenant,
        resource_type=CREDENTIAL,
        details=details,
    )
    return result
