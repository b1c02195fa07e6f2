"""The audit events of OAuth tokens: ``token/authorized``, ``token/refreshed``,
``token/refresh_failed`` and ``token/breaker_opened``.

A stored token and its event commit together: :meth:`TokenAudit.in_write` gives the store a
hook that appends the event inside the persisting transaction, and a function to call after
the commit. Details name grants, generations, expiry and OAuth error codes, never a token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flowcred.audit.events import TOKEN, Access, Actor, PendingEvent, Result
from flowcred.audit.trail import AuditTrail
from flowcred.errors import FlowcredError, TokenRefreshFailed
from flowcred.store.oauth_tokens import InTransaction

#: The actor of refreshes: the token manager acts for nobody in particular.
SYSTEM_ACCESS = Access(Actor("system", "token-manager", "flowcred token manager"), "local")


class TokenAudit:
    """Builds and records the token events of one broker."""

    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail

    def event(
        self,
        action: str,
        result: Result,
        cid: int | None,
        tenant: str | None,
        details: Mapping[str, Any],
        access: Access = SYSTEM_ACCESS,
    ) -> PendingEvent:
        return self._trail.event(
            access,
            TOKEN,
            action,
            result,
            tenant=tenant,
            resource_type="credential" if cid is not None else None,
            resource_id=cid,
            details=details,
        )

    def in_write(
        self,
        action: str,
        result: Result,
        tenant: str,
        details: Callable[[int], Mapping[str, Any]],
        access: Access = SYSTEM_ACCESS,
    ) -> tuple[InTransaction, Callable[[], None]]:
        """A store hook appending the event in the write's transaction (``details`` gets the
        new generation), and the function to call once the write committed."""
        appended: list[Any] = []

        def hook(conn: Any, cid: int, generation: int) -> None:
            pending = self.event(action, result, cid, tenant, details(generation), access)
            appended.append(self._trail.recorder.append_in(conn, pending))

        def after_commit() -> None:
            for item in appended:
                self._trail.recorder.committed(item)

        return hook, after_commit

    def failure(self, cid: int, tenant: str, exc: FlowcredError, grant: str) -> None:
        """Record a refresh that failed without changing the grant state (transient, breaker)."""
        self._trail.recorder.record(
            self.event("refresh_failed", "failure", cid, tenant, failure_details(exc, grant))
        )

    def breaker_opened(self, endpoint: str) -> None:
        """A token endpoint's circuit breaker opened (calls to it are paused)."""
        self._trail.recorder.record(
            self.event("breaker_opened", "failure", None, None, {"endpoint": endpoint})
        )


def failure_details(exc: FlowcredError, grant: str, state: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"error": type(exc).__name__, "grant": grant}
    if isinstance(exc, TokenRefreshFailed):
        details["oauthError"] = exc.oauth_error
        details["permanent"] = exc.permanent
        details["statusCode"] = exc.status_code
    if state is not None:
        details["state"] = state
    return details
