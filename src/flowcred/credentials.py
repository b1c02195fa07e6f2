"""``broker.credentials``: create, read, change and delete credentials, each call audited.

Rules live here, not in a route or a command, so the REST API, the CLI and the Python API all
meet them.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from flowcred.audit import Access
from flowcred.audit.trail import AuditTrail
from flowcred.catalog import Catalog, CredentialType
from flowcred.errors import (
    CredentialInUse,
    CredentialNotFound,
    FieldProblem,
    FlowcredError,
    InvalidCredential,
    UnknownCredentialType,
    error_context,
)
from flowcred.records import Credential, SecretVersion
from flowcred.redaction import SecretRegistry
from flowcred.references import (
    DEFAULT_ENVIRONMENT,
    DEFAULT_TENANT,
    HANDLE_RE,
    MAX_ID,
    TENANT_RE,
    parse_ref,
    slugify,
)
from flowcred.runtime.provider import Ref, Resolver
from flowcred.store.bindings import BindingStore
from flowcred.store.credentials import UNSET, CredentialStore


class Credentials:
    """Create, read, change and delete credentials. Returned records never carry a secret.

    ``ref`` is an int id or a handle; handles are looked up in ``tenant`` + ``environment``. When
    ``tenant`` is given, an id of another tenant raises CredentialNotFound (and is audited as an
    access denied). Every call leaves exactly one audit event with this object's actor, whatever
    its outcome; changes commit together with their event.
    """

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

    def _secret_payload(
        self,
        ctype: CredentialType,
        secret: Mapping[str, Any] | None,
        secret_value: str | None,
        problems: list[FieldProblem],
    ) -> dict[str, Any] | None:
        # Everything received as a secret is masked in logs from now on, even if it is rejected.
        if secret_value is not None:
            self._registry.register(secret_value)
        for value in (secret or {}).values():
            if isinstance(value, str):
                self._registry.register(value)
        if secret is not None and secret_value is not None:
            problems.append(FieldProblem("secret", "give either secret or secret_value, not both"))
            return None
        if secret_value is not None:
            try:
                return ctype.parse_secret_value(secret_value)
            except InvalidCredential as exc:
                problems.extend(exc.problems)
                return None
        return dict(secret or {})

    def _failed(self, action: str, exc: FlowcredError, tenant: str | None, ref: Ref | None) -> None:
        self._trail.failure(self._access, action, exc, tenant=tenant, ref=ref)

    # -- API -------------------------------------------------------------------------------

    def create(
        self,
        *,
        name: str,
        type: str,
        tenant: str = DEFAULT_TENANT,
        environment: str = DEFAULT_ENVIRONMENT,
        handle: str | None = None,
        config: Mapping[str, Any] | None = None,
        secret: Mapping[str, Any] | None = None,
        secret_value: str | None = None,
        expires_at: datetime | None = None,
    ) -> Credential:
        """Validate and store a new credential; every problem is reported at once.

        Raises InvalidCredential (with ``problems``), UnknownCredentialType, HandleConflict.
        """
        try:
            return self._create(
                name=name,
                type_name=type,
                tenant=tenant,
                environment=environment,
                handle=handle,
                config=config,
                secret=secret,
                secret_value=secret_value,
                expires_at=expires_at,
            )
        except FlowcredError as exc:
            self._failed("created", exc, tenant, None)
            raise

    def _create(
        self,
        *,
        name: str,
        type_name: str,
        tenant: str,
        environment: str,
        handle: str | None,
        config: Mapping[str, Any] | None,
        secret: Mapping[str, Any] | None,
        secret_value: str | None,
        expires_at: datetime | None,
    ) -> Credential:
        problems: list[FieldProblem] = []
        try:
            ctype = self._catalog.get(type_name)
        except UnknownCredentialType:
            if secret_value is not None:
                self._registry.register(secret_value)
            raise
        if not isinstance(name, str) or not name.strip():
            problems.append(FieldProblem("name", "is required"))
        elif len(name) > 256:
            problems.append(FieldProblem("name", "must be at most 256 characters"))
        if not TENANT_RE.match(tenant) or tenant == "*":
            problems.append(FieldProblem("tenant", "must be letters, digits, '.', '_' or '-'"))
        if not TENANT_RE.match(environment) or environment == "*":
            problems.append(FieldProblem("environment", "must be letters, digits, '.', '_' or '-'"))
        chosen = handle if handle is not None else slugify(name or "")
        if not HANDLE_RE.match(chosen) or chosen.isdigit():
            problems.append(
                FieldProblem(
                    "handle", "must be a lower-case slug (a-z, 0-9, '.', '_', '-'), not all digits"
                )
            )
        payload = self._secret_payload(ctype, secret, secret_value, problems)
        clean_config: dict[str, Any] = {}
        clean_secret: dict[str, Any] = {}
        try:
            clean_config, clean_secret = ctype.validate(config, payload or {})
        except InvalidCredential as exc:
            problems.extend(exc.problems)
        if problems:
            raise InvalidCredential(problems, type_name=ctype.name)
        hook, after = self._trail.on_write(
            self._access, "created", lambda r: {"type": r.type, "handle": r.handle, "version": 1}
        )
        record = self._store.create(
            tenant=tenant,
            environment=environment,
            handle=chosen,
            name=name.strip(),
            type_name=ctype.name,
            config=clean_config,
            secret=json.dumps(clean_secret).encode(),
            expires_at=expires_at,
            on_write=hook,
        )
        after()
        self._resolver.invalidate(record.id)
        return record

    def get(
        self, ref: Ref, *, tenant: str | None = None, environment: str = DEFAULT_ENVIRONMENT
    ) -> Credential:
        """Metadata of one credential (with the last-used time seen by this process)."""
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
        after_id: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[Credential]:
        """Credentials in id order; filters combine; ``after_id`` + ``limit`` paginate."""
        try:
            records = self._list(tenant, environment, type, family, status, after_id, limit)
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
    ) -> builtins.list[Credential]:
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
            after_id=after_id,
            limit=limit if status is None else None,
        )
        records = [self._with_last_used(r) for r in records]
        if status is not None:
            records = [r for r in records if r.status == status][: limit or None]
        return records

    def update(
        self,
        ref: Ref,
        *,
        tenant: str | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        expires_at: datetime | None = UNSET,
    ) -> Credential:
        """Change the name, non-secret config (merged; a ``None`` value removes a key) or expiry."""
        try:
            found = self._find(ref, tenant, environment)
            ctype = self._catalog.get(found.type)
            new_config = None
            if config is not None:
                merged = dict(found.config)
                for key, value in config.items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                with error_context(credential_id=found.id):
                    new_config = ctype.validate_config(merged)
            if name is not None and not name.strip():
                raise InvalidCredential([FieldProblem("name", "must not be empty")])
            changed = sorted(
                ([] if name is None else ["name"])
                + ([] if config is None else [f"config.{k}" for k in config])
                + ([] if expires_at is UNSET else ["expires_at"])
            )
            hook, after = self._trail.on_write(
                self._access, "updated", lambda r: {"changed": changed}
            )
            record = self._store.update(
                found.id,
                name=name.strip() if name else None,
                config=new_config,
                expires_at=expires_at,
                on_write=hook,
            )
        except FlowcredError as exc:
            self._failed("updated", exc, tenant, ref)
            raise
        after()
        self._resolver.invalidate(found.id)
        return record

    def rotate(
        self,
        ref: Ref,
        *,
        tenant: str | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        secret: Mapping[str, Any] | None = None,
        secret_value: str | None = None,
        expected_version: int | None = None,
    ) -> Credential:
        """Store a new secret version and make it current; the id and handle stay the same.

        With ``expected_version``, fails with VersionConflict if someone rotated first. Without
        it, two concurrent rotations still never lose an update silently: the later one to commit
        gets VersionConflict.
        """
        try:
            found = self._find(ref, tenant, environment)
            ctype = self._catalog.get(found.type)
            problems: builtins.list[FieldProblem] = []
            payload = self._secret_payload(ctype, secret, secret_value, problems)
            if payload is not None:
                try:
                    payload = ctype.validate_secret(payload)
                except InvalidCredential as exc:
                    problems.extend(exc.problems)
            if problems:
                raise InvalidCredential(problems, type_name=ctype.name)
            expected = expected_version if expected_version is not None else found.current_version
            hook, after = self._trail.on_write(
                self._access,
                "rotated",
                lambda r: {"from_version": expected, "version": r.current_version},
            )
            with error_context(credential_id=found.id):
                record = self._store.rotate(
                    found.id,
                    json.dumps(payload).encode(),
                    expected_version=expected,
                    on_write=hook,
                )
        except FlowcredError as exc:
            self._failed("rotated", exc, tenant, ref)
            raise
        after()
        self._resolver.invalidate(found.id)
        return record

    def rollback(
        self,
        ref: Ref,
        version: int,
        *,
        tenant: str | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        expected_version: int | None = None,
    ) -> Credential:
        """Restore a kept older version's secret as a new version (history is append-only).

        The new version holds the old secret under a fresh data key; the returned record's
        ``current_version`` is that new number. Audited with ``from_version`` (current before),
        ``restored_version`` (whose secret was restored) and ``version`` (the new one).
        """
        try:
            found = self._find(ref, tenant, environment)
            expected = expected_version if expected_version is not None else found.current_version
            hook, after = self._trail.on_write(
                self._access,
                "rolled_back",
                lambda r: {
                    "from_version": expected,
                    "restored_version": version,
                    "version": r.current_version,
                },
            )
            record = self._store.rollback(
                found.id, version, expected_version=expected, on_write=hook
            )
        except FlowcredError as exc:
            self._failed("rolled_back", exc, tenant, ref)
            raise
        after()
        self._resolver.invalidate(found.id)
        return record

    def delete(
        self,
        ref: Ref,
        *,
        tenant: str | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        force: bool = False,
    ) -> Credential:
        """Delete the credential and every stored version of its secret; returns its last record.

        Delete protection: while flows of its tenant bind the credential, raises CredentialInUse
        (a ConflictError naming them) and deletes nothing, unless ``force``. A forced delete of a
        bound credential says so in its audit event (``forced``, ``flows``). The check runs in the
        delete's own transaction.
        """
        bindings = self._bindings
        broken: builtins.list[str] = []

        def guard(conn: Any, record: Credential) -> None:
            flows = [] if bindings is None else bindings.flows_using(record, conn)
            if flows and not force:
                raise CredentialInUse(record.id, flows)
            broken[:] = flows

        def details(r: Credential) -> dict[str, Any]:
            out: dict[str, Any] = {"type": r.type, "handle": r.handle}
            if force:
                out.update(forced=True, flows=list(broken))
            return out

        try:
            if not isinstance(force, bool):
                raise InvalidCredential([FieldProblem("force", "must be true or false")])
            found = self._find(ref, tenant, environment)
            hook, after = self._trail.on_write(self._access, "deleted", details)
            record = self._store.delete(found.id, on_write=hook, guard=guard)
        except FlowcredError as exc:
            self._failed("deleted", exc, tenant, ref)
            raise
        after()
        self._resolver.invalidate(found.id)
        return record

    def versions(
        self, ref: Ref, *, tenant: str | None = None, environment: str = DEFAULT_ENVIRONMENT
    ) -> builtins.list[SecretVersion]:
        """The kept versions of the secret, newest first (metadata only)."""
        return self.describe(ref, tenant=tenant, environment=environment)[1]
