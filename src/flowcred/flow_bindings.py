"""``broker.bindings``: which flows reference which credentials, with the rules every caller meets.

A binding is a flow's list of credential references in one tenant. The rules live here, not in the
REST route or the CLI command, so both (and the Python API) meet them:

* a reference is an id (an ``int``, or ASCII digits only: ``²`` is not an id) or a handle, parsed by
  :func:`flowcred.references.parse_ref`;
* every reference must name a credential of that tenant when the binding is set; unknown ones are
  refused with :class:`~flowcred.errors.InvalidCredential` naming them (references are ids and
  handles, never secrets);
* the tenant is a real one: ``*`` (a platform key's tenant) must be replaced by the caller with the
  tenant it means;
* every set and delete is one audit event, success or failure.

The credential store may later lose a credential a binding names (a forced delete): matching
never fails on such a reference, it just matches nothing.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Sequence

from flowcred.audit import Access
from flowcred.audit.events import FLOW
from flowcred.audit.trail import AuditTrail
from flowcred.errors import FieldProblem, FlowcredError, InvalidCredential
from flowcred.records import Credential
from flowcred.references import HANDLE_RE, MAX_ID, TENANT_RE, parse_ref
from flowcred.store.bindings import Binding, BindingStore, Reference
from flowcred.store.credentials import CredentialStore

FLOW_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,256}$")
MAX_REFERENCES = 1000


class Bindings:
    """Set, read, list and delete flows' bindings; changes are validated and audited."""

    def __init__(
        self, store: BindingStore, credentials: CredentialStore, trail: AuditTrail, access: Access
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._trail = trail
        self._access = access

    # -- rules -----------------------------------------------------------------------------

    @staticmethod
    def _check_flow_and_tenant(flow: object, tenant: object) -> builtins.list[FieldProblem]:
        problems = []
        if not isinstance(flow, str) or not FLOW_RE.match(flow):
            problems.append(
                FieldProblem("flow", "must be 1-256 letters, digits, '.', '_', ':', '/' or '-'")
            )
        if not isinstance(tenant, str) or tenant == "*":
            problems.append(
                FieldProblem("tenantId", "name the tenant the flow belongs to (not '*')")
            )
        elif not TENANT_RE.match(tenant):
            problems.append(FieldProblem("tenantId", "must be letters, digits, '.', '_' or '-'"))
        return problems

    def _parsed(self, references: Sequence[object]) -> builtins.list[Reference]:
        if isinstance(references, str | bytes) or not isinstance(references, Sequence):
            raise InvalidCredential([FieldProblem("references", "must be a list of references")])
        if len(references) > MAX_REFERENCES:
            raise InvalidCredential(
                [FieldProblem("references", f"at most {MAX_REFERENCES} references")]
            )
        parsed: builtins.list[Reference] = []
        problems = []
        for index, ref in enumerate(references):
            try:
                value = parse_ref(ref)
            except InvalidCredential:
                problems.append(
                    FieldProblem(f"references[{index}]", "must be an int id or a str handle")
                )
                continue
            if isinstance(value, int) and not 0 < value <= MAX_ID:
                problems.append(FieldProblem(f"references[{index}]", "is not a valid id"))
            elif isinstance(value, str) and not HANDLE_RE.match(value):
                problems.append(FieldProblem(f"references[{index}]", "is not a valid handle"))
            else:
                parsed.append(value)
        if problems:
            raise InvalidCredential(problems)
        return list(dict.fromkeys(parsed))

    def _check_exist(self, tenant: str, refs: Sequence[Reference]) -> None:
        ids = [r for r in refs if isinstance(r, int)]
        handles = [r for r in refs if isinstance(r, str)]
        found_ids, found_handles = self._credentials.existing(tenant, ids, handles)
        unknown = [str(r) for r in refs if r not in found_ids and r not in found_handles]
        if unknown:
            shown = ", ".join(unknown[:20]) + (", ..." if len(unknown) > 20 else "")
            raise InvalidCredential(
                [FieldProblem("references", f"no credential {shown} in tenant {tenant!r}")]
            )

    def _audit_failure(self, action: str, exc: FlowcredError, tenant: object, flow: object) -> None:
        self._trail.record(
            self._access,
            FLOW,
            action,
            "failure",
            tenant=tenant if isinstance(tenant, str) and tenant != "*" else None,
            resource_type="flow",
            resource_id=flow if isinstance(flow, str) and FLOW_RE.match(flow) else None,
            details={"error": type(exc).__name__},
        )

    # -- API -------------------------------------------------------------------------------

    def set(self, flow: str, references: Sequence[Reference], *, tenant: str) -> Binding:
        """Replace ``flow``'s references in ``tenant``; an empty list unregisters the flow.

        Raises InvalidCredential naming every bad or unknown reference; nothing is changed then.
        """
        try:
            problems = self._check_flow_and_tenant(flow, tenant)
            if problems:
                raise InvalidCredential(problems)
            refs = self._parsed(references)
            self._check_exist(tenant, refs)
            binding = self._store.put(flow, tenant, refs)
        except FlowcredError as exc:
            self._audit_failure("bindings_registered", exc, tenant, flow)
            raise
        self._trail.record(
            self._access,
            FLOW,
            "bindings_registered",
            "success",
            tenant=tenant,
            resource_type="flow",
            resource_id=flow,
            details={"references": [str(r) for r in binding.references]},
        )
        return binding

    def get(self, flow: str, *, tenant: str) -> Binding | None:
        """``flow``'s binding in ``tenant``, or None when it has none."""
        problems = self._check_flow_and_tenant(flow, tenant)
        if problems:
            raise InvalidCredential(problems)
        return self._store.get(flow, tenant)

    def list(self, *, tenant: str | None = None) -> builtins.list[Binding]:
        """Every binding (of ``tenant`` when given), ordered by tenant and flow."""
        return self._store.list(tenant)

    def delete(self, flow: str, *, tenant: str) -> bool:
        """Unregister ``flow`` in ``tenant``; False (and nothing audited as changed) if absent."""
        try:
            problems = self._check_flow_and_tenant(flow, tenant)
            if problems:
                raise InvalidCredential(problems)
            removed = self._store.delete(flow, tenant)
        except FlowcredError as exc:
            self._audit_failure("bindings_deleted", exc, tenant, flow)
            raise
        self._trail.record(
            self._access,
            FLOW,
            "bindings_deleted",
            "success" if removed else "failure",
            tenant=tenant,
            resource_type="flow",
            resource_id=flow,
            details={} if removed else {"error": "not registered"},
        )
        return removed

    # -- for other parts of the broker -----------------------------------------------------

    def connections(self, records: Sequence[Credential]) -> dict[int, int]:
        """Number of flows referencing each credential (not audited: part of a listing)."""
        return self._store.connections(records)

    def flows_using(self, record: Credential) -> builtins.list[str]:
        """Flows of the credential's tenant that reference it."""
        return self._store.flows_using(record)
