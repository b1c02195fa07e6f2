"""The read side of ``broker.credentials`` and what every operation shares: finding a
credential by reference, the audited argument check, the failure event.

:class:`~flowcred.credentials.Credentials` adds the changes on top of this class. Reads never
return a secret; each leaves exactly one audit event, whatever its outcome.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flowcred.argument_checks import check_arguments
from flowcred.audit import Access
from flowcred.audit.trail import AuditTrail
from flowcred.catalog import Catalog
from flowcred.credential_status import check_status_filter, matches_status
from flowcred.errors import CredentialNotFound, FlowcredError, InvalidCredential
from flowcred.records import Credential, SecretVersion
from flowcred.redaction import SecretRegistry
from flowcred.references import (
    DEFAULT_ENVIRONMENT,
    DEFAULT_TENANT,
    HANDLE_RE,
    MAX_ID,
    TENANT_RE,
    parse_ref,
)
from flowcred.runtime.provider import Ref, Resolver
from flowcred.store.bindings import BindingStore
from flowcred.store.credentials import CredentialStore


class CredentialReads:
    """Find, view and list credentials (see :class:`~flowcred.credentials.Credentials`)."""

    def __init__(
        self,
        store: CredentialStore,
        catalog: Catalog,
        resolver: Resolver,
        trail: AuditTrail,
        access: Access,
        registry: SecretRegistry,
        *,
        bindings: BindingStore | None = None,
    ) -> None:
        self._bindings = bindings
        self._store = store
        self._catalog = catalog
        self._resolver = resolver
        self._trail = trail
        self._access = access
        self._registry = registry

    # -- helpers ---------------------------------------------------------------------------

    def _find(self, ref: Ref, tenant: str | None, environment: str) -> Credential:
        parsed = parse_ref(ref)  # ASCII digits are an id; ``²`` is a (missing) handle
        if isinstance(parsed, int):
            if not 0 < parsed <= MAX_ID:
                raise CredentialNotFound(ref, tenant)
            found = self._store.get(parsed)
            if found is None:
                raise CredentialNotFound(ref, tenant)
            if tenant is not None and found.tenant != tenant:
                exc = CredentialNotFound(ref, tenant)
                exc.foreign = True  # type: ignore[attr-defined]
                raise exc
            return found
        found = self._store.find_handle(tenant or DEFAULT_TENANT, environment, parsed)
        if found is None:
            raise CredentialNotFound(ref, tenant)
        return found

    def _failed(self, action: str, exc: FlowcredError, tenant: str | None, ref: Ref | None) -> None:
        self._trail.failure(self._access, action, exc, tenant=tenant, ref=ref)

    def _check(self, method: Any, arguments: Mapping[str, Any], action: str) -> None:
        """:func:`check_arguments`, audited: a wrongly typed call is a failed call too, and every
        call leaves one event. Only a tenant and a reference of valid shape go into the event."""
        try:
            check_arguments(method, arguments)
        except InvalidCredential as exc:
            tenant = arguments.get("tenant")
            ref = arguments.get("ref")
            self._failed(
                action,
                exc,
                tenant if isinstance(tenant, str) and TENANT_RE.match(tenant) else None,
                ref
                if (isinstance(ref, int) and not isinstance(ref, bool))
                or (isinstance(ref, str) and HANDLE_RE.match(ref))
                else None,
            )
            raise

    def get(
        self, ref: Ref, *, tenant: str | None = None, environment: str = DEFAULT_ENVIRONMENT
    ) -> Credential:
        """Metadata of one credential (with the last-used time seen by this process)."""
        self._check(CredentialReads.get, locals(), "viewed")
        try:
            found = self._with_last_used(self._find(ref, tenant, environment))
        except FlowcredError as exc:
            self._failed("viewed", exc, tenant, ref)
            raise
        self._trail.credential_read(self._access, "viewed", found, tenant=found.tenant)
        return found

    def describe(
        self, ref: Ref, *, tenant: str | None = None, environment: str = DEFAULT_ENVIRONMENT
    ) -> tuple[Credential, builtins.list[SecretVersion]]:
        """Metadata and the kept versions in one call (one audit event)."""
        self._check(CredentialReads.describe, locals(), "viewed")
        try:
            found = self._with_last_used(self._find(ref, tenant, environment))
            versions = self._store.versions(found.id)
        except FlowcredError as exc:
            self._failed("viewed", exc, tenant, ref)
            raise
        self._trail.credential_read(
            self._access, "viewed", found, tenant=found.tenant, details={"versions": True}
        )
        return found, versions

    def secret_fields_set(
        self, ref: Ref, *, tenant: str | None = None, environment: str = DEFAULT_ENVIRONMENT
    ) -> builtins.list[str]:
        """The names of the secret fields that hold a value in the current version, sorted.

        For pages that show a secret field as *set* / *not set*: the names are the only thing
        that leaves this call (the catalog's secret field names when the type is known). The
        current version is opened to learn them, so the call is audited like a view
        (``viewed`` with ``secretFields: true``), one event whatever the outcome.
        """
        self._check(CredentialReads.secret_fields_set, locals(), "viewed")
        try:
            found = self._find(ref, tenant, environment)
            stored = json.loads(self._store.read_secret(found.id))
            names = sorted(
                str(k) for k, v in stored.items() if v is not None and v != "" and v != {}
            )
            del stored
            try:
                known = {spec.name for spec in self._catalog.get(found.type).secret_fields}
            except InvalidCredential:
                known = None
        except FlowcredError as exc:
            self._failed("viewed", exc, tenant, ref)
            raise
        self._trail.credential_read(
            self._access, "viewed", found, tenant=found.tenant, details={"secretFields": True}
        )
        return [n for n in names if known is None or n in known]

    def _with_last_used(self, found: Credential) -> Credential:
        """The record with the newer of its stored last-used time and this process's."""
        seen = self._resolver.last_used.seen(found.id)
        if seen is not None and (found.last_used_at is None or seen > found.last_used_at):
            return replace(found, last_used_at=seen)
        return found

    def list(
        self,
        *,
        tenant: str | None = None,
        environment: str | None = None,
        type: str | None = None,
        family: str | None = None,
        status: str | None = None,
        search: str | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[Credential]:
        """Credentials in id order; filters combine; ``after_id`` + ``limit`` paginate.
        ``search`` matches name or handle (case-insensitive substring)."""
        self._check(CredentialReads.list, locals(), "listed")
        try:
            records = self._list(tenant, environment, type, family, status, after_id, limit, search)
        except FlowcredError as exc:
            self._failed("listed", exc, tenant, None)
            raise
        filters = {
            k: v
            for k, v in {
                "environment": environment,
                "type": type,
                "family": family,
                "status": status,
                # Only that a search was made: the words may be anything a person typed.
                "searched": True if search else None,
            }.items()
            if v is not None
        }
        self._trail.record(
            self._access,
            "credential",
            "listed",
            "success",
            tenant=tenant,
            resource_type="credential",
            details={"count": len(records), **filters},
        )
        return records

    def _list(
        self,
        tenant: str | None,
        environment: str | None,
        type_name: str | None,
        family: str | None,
        status: str | None,
        after_id: int | None,
        limit: int | None,
        search: str | None = None,
    ) -> builtins.list[Credential]:
        check_status_filter(status)
        type_names: builtins.list[str] | None = None
        if type_name is not None:
            type_names = [self._catalog.get(type_name).name]
        if family is not None:
            in_family = [t.name for t in self._catalog.by_family(family)]  # type: ignore[arg-type]
            type_names = [t for t in (type_names or in_family) if t in in_family] or ["\x00none"]
        records = self._store.list(
            tenant=tenant,
            environment=environment,
            type_names=type_names,
            search=search,
            after_id=after_id,
            limit=limit if status is None else None,
        )
        records = [self._with_last_used(r) for r in records]
        if status is not None:
            records = [r for r in records if matches_status(r, status)][: limit or None]
        return records

    def versions(
        self, ref: Ref, *, tenant: str | None = None, environment: str = DEFAULT_ENVIRONMENT
    ) -> builtins.list[SecretVersion]:
        """The kept versions of the secret, newest first (metadata only)."""
        self._check(CredentialReads.versions, locals(), "viewed")
        return self.describe(ref, tenant=tenant, environment=environment)[1]
