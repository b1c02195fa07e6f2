"""``broker.credentials``: create, read, change and delete credentials, each call audited.

Rules live here, not in a route or a command, so the REST API, the CLI and the Python API all
meet them.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flowcred.catalog import CredentialType
from flowcred.catalog.secret_shape import check_secret_shape
from flowcred.credential_reads import CredentialReads
from flowcred.errors import (
    AccessDenied,
    CredentialInUse,
    FieldProblem,
    FlowcredError,
    InvalidCredential,
    error_context,
)
from flowcred.records import Credential
from flowcred.references import (
    CONTROL_CHARS_RE,
    DEFAULT_ENVIRONMENT,
    DEFAULT_TENANT,
    HANDLE_RE,
    TENANT_RE,
    handle_candidates,
    slugify,
)
from flowcred.runtime.provider import Ref, secret_text
from flowcred.store.credentials import UNSET, as_utc

MAX_NAME_LENGTH = 256


def _name_problem(name: object) -> str | None:
    """What is wrong with a display name, or ``None``; the message never repeats the name."""
    if not isinstance(name, str) or not name.strip():
        return "is required"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters"
    if CONTROL_CHARS_RE.search(name):
        return "must not contain control characters (such as NUL, tab, CR, LF, ESC or DEL)"
    return None


class Credentials(CredentialReads):
    """Create, read, change and delete credentials. Returned records never carry a secret.

    ``ref`` is an int id or a handle; handles are looked up in ``tenant`` + ``environment``. When
    ``tenant`` is given, an id of another tenant raises CredentialNotFound (and is audited as an
    access denied). Every call leaves exactly one audit event with this object's actor, whatever
    its outcome; changes commit together with their event.
    """

    def _secret_payload(
        self,
        ctype: CredentialType,
        secret: Mapping[str, Any] | None,
        secret_value: str | None,
        problems: list[FieldProblem],
    ) -> dict[str, Any] | None:
        """The received secret as a dict, shape-checked and registered; ``None`` if refused.

        The order is the point (issue 8 item 4): the shape (form, field names, count, sizes; see
        :mod:`flowcred.catalog.secret_shape`) is checked first, at a cost bounded by what is
        accepted, and a secret refused there is never registered, so rejected input is not kept
        in memory. Only then are its values registered for log redaction, in the transient class
        (the request may still fail validation, and a transient flood cannot evict the secrets of
        stored credentials); they are pinned by :meth:`_pin` once stored. The caller validates
        the meaning next.
        """
        payload, shape_problems = check_secret_shape(ctype, secret, secret_value)
        if payload is None:
            problems.extend(shape_problems)
            return None
        register = self._registry.register
        for value in payload.values():
            if isinstance(value, str):
                register(value)
        return payload

    def _valid_secret(
        self,
        ctype: CredentialType,
        secret: Mapping[str, Any] | None,
        secret_value: str | None,
        problems: builtins.list[FieldProblem],
    ) -> dict[str, Any] | None:
        """The secret of a rotation (or an update that rotates): shape, registration, then
        meaning, as :meth:`_secret_payload`; problems are added to ``problems``."""
        payload = self._secret_payload(ctype, secret, secret_value, problems)
        if payload is None:
            return None
        try:
            return ctype.validate_secret(payload)
        except InvalidCredential as exc:
            problems.extend(exc.problems)
            return payload

    def _pin(self, clean_secret: Mapping[str, Any]) -> None:
        """Pin the values of a secret that was just stored, as the resolve path registers them."""
        pin = self._registry.pin
        for value in clean_secret.values():
            pin(secret_text(value))

    def _expiry_problem(self, expires_at: object) -> FieldProblem | None:
        """A problem when ``expires_at`` is already past (by the store's clock, which is the one
        that marks credentials expired), so a credential is never stored dead on arrival."""
        if not isinstance(expires_at, datetime):
            return None
        when = as_utc(expires_at)
        if when is not None and when <= self._store._clock.now():
            return FieldProblem("expires_at", "is in the past; give a future time, or none")
        return None

    def _free_handle(self, tenant: str, environment: str, name: str) -> str:
        """The first of :func:`handle_candidates` not taken in ``tenant`` + ``environment``.

        Two creates racing for the same candidate still meet the store's unique index: the
        second gets HandleConflict, as with a handle the caller chose.
        """
        candidate = slugify(name)
        for candidate in handle_candidates(name):
            if self._store.find_handle(tenant, environment, candidate) is None:
                break
        return candidate

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
        self._check(Credentials.create, locals(), "created")
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
            # A refused tenant is not repeated in the event: it may hold a NUL, which
            # PostgreSQL cannot store, and the failure must still be audited.
            valid = isinstance(tenant, str) and TENANT_RE.match(tenant) and tenant != "*"
            self._failed("created", exc, tenant if valid else None, None)
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
        # An unknown type has no shape to check against: nothing it was sent is registered.
        ctype = self._catalog.get(type_name)
        name_problem = _name_problem(name)
        if name_problem is not None:
            problems.append(FieldProblem("name", name_problem))
        if not TENANT_RE.match(tenant) or tenant == "*":
            problems.append(FieldProblem("tenant", "must be letters, digits, '.', '_' or '-'"))
        if not TENANT_RE.match(environment) or environment == "*":
            problems.append(FieldProblem("environment", "must be letters, digits, '.', '_' or '-'"))
        if handle is not None:
            chosen = handle
        elif problems:
            chosen = slugify(name if isinstance(name, str) else "")
        else:
            # A generated handle never collides: a taken slug gets a suffix (``-2``, ...).
            chosen = self._free_handle(tenant, environment, name)
        if not HANDLE_RE.match(chosen) or chosen.isdigit():
            problems.append(
                FieldProblem(
                    "handle", "must be a lower-case slug (a-z, 0-9, '.', '_', '-'), not all digits"
                )
            )
        expiry_problem = self._expiry_problem(expires_at)
        if expiry_problem is not None:
            problems.append(expiry_problem)
        payload = self._secret_payload(ctype, secret, secret_value, problems)
        clean_config: dict[str, Any] = {}
        clean_secret: dict[str, Any] = {}
        try:
            if payload is None:
                clean_config = ctype.validate_config(config)
            else:
                clean_config, clean_secret = ctype.validate(config, payload)
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
        self._pin(clean_secret)
        self._resolver.invalidate(record.id)
        return record

    def update(
        self,
        ref: Ref,
        *,
        tenant: str | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        expires_at: datetime | None = UNSET,
        secret: Mapping[str, Any] | None = None,
        secret_value: str | None = None,
    ) -> Credential:
        """Change the name, non-secret config (merged; a ``None`` value removes a key) or expiry,
        and with ``secret`` / ``secret_value`` also rotate, all in one write and one event.

        A destination field (catalog ``destination: true``: a host, port, URL, token URL or
        issuer) says where the secret is sent. A caller whose access may not resolve (a
        developer or viewer API key) changes one only together with the secret; otherwise the
        call raises AccessDenied naming the fields (never their values) and changes nothing,
        so it cannot have the stored secret sent to a server of its choosing.
        Raises InvalidCredential listing every problem, VersionConflict if a rotation raced.
        """
        self._check(Credentials.update, locals(), "updated")
        try:
            found = self._find(ref, tenant, environment)
            ctype = self._catalog.get(found.type)
            problems: builtins.list[FieldProblem] = []
            new_config = None
            if config is not None:
                merged = dict(found.config)
                for key, value in config.items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                try:
                    with error_context(credential_id=found.id):
                        new_config = ctype.validate_config(merged)
                except InvalidCredential as exc:
                    problems.extend(exc.problems)
            if name is not None:
                name_problem = _name_problem(name)
                if name_problem is not None:
                    problems.append(
                        FieldProblem("name", "must not be empty")
                        if name_problem == "is required"
                        else FieldProblem("name", name_problem)
                    )
            expiry_problem = self._expiry_problem(expires_at)
            if expiry_problem is not None:
                problems.append(expiry_problem)
            payload = None
            if secret is not None or secret_value is not None:
                payload = self._valid_secret(ctype, secret, secret_value, problems)
            moved = _moved_destinations(ctype, found.config, new_config)
            with error_context(credential_id=found.id):
                if problems:
                    raise InvalidCredential(problems, type_name=ctype.name)
                if moved and payload is None and not self._access.may_resolve:
                    raise AccessDenied(
                        f"changing {', '.join(moved)} of credential {found.id} would send its "
                        "secret elsewhere: this API key may not resolve, so send the secret "
                        "again in the same request"
                    )
            changed = sorted(
                ([] if name is None else ["name"])
                + ([] if config is None else [f"config.{k}" for k in config])
                + ([] if expires_at is UNSET else ["expires_at"])
                + ([] if payload is None else ["secret"])
            )
            from_version = found.current_version

            def details(r: Credential) -> dict[str, Any]:
                if payload is None:
                    return {"changed": changed}
                return {
                    "changed": changed,
                    "from_version": from_version,
                    "version": r.current_version,
                }

            hook, after = self._trail.on_write(self._access, "updated", details)
            with error_context(credential_id=found.id):
                record = self._store.update(
                    found.id,
                    name=name.strip() if name else None,
                    config=new_config,
                    expires_at=expires_at,
                    secret=None if payload is None else json.dumps(payload).encode(),
                    expected_version=None if payload is None else from_version,
                    on_write=hook,
                )
        except FlowcredError as exc:
            self._failed("updated", exc, tenant, ref)
            raise
        after()
        if payload is not None:
            self._pin(payload)
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
        self._check(Credentials.rotate, locals(), "rotated")
        try:
            found = self._find(ref, tenant, environment)
            ctype = self._catalog.get(found.type)
            problems: builtins.list[FieldProblem] = []
            payload = self._valid_secret(ctype, secret, secret_value, problems)
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
        self._pin(payload or {})
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
        self._check(Credentials.rollback, locals(), "rolled_back")
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
        self._check(Credentials.delete, locals(), "deleted")
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


def _moved_destinations(
    ctype: CredentialType, old: Mapping[str, Any], new: Mapping[str, Any] | None
) -> list[str]:
    """``config.<name>`` of each destination field whose effective value ``new`` changes."""
    if new is None:
        return []
    return [
        f"config.{spec.name}"
        for spec in ctype.destination_fields
        if not spec.secret
        and new.get(spec.name) != old.get(spec.name, ctype.defaults.get(spec.name))
    ]
