"""The one error hierarchy of flowcred.

Every error a user can meet derives from :class:`FlowcredError`::

    FlowcredError
    ├── ConfigurationError            settings or environment unusable; do not start
    │   ├── KeyUnavailable            no key-encryption key where the database says one must be
    │   ├── KeyMismatch               a key was found, but not the one the database was sealed with
    │   ├── InsecureKeyFile           the key file is readable by group or others
    │   ├── CredentialsFileError      a flowgen ``credentials_path`` file cannot be used
    │   │   ├── CredentialsFileUnreadable   "Failed to read credentials file at PATH: ..."
    │   │   └── CredentialsFileMalformed    "Failed to parse credentials file at PATH: ..."
    │   └── StartupFailed             start-up retries of a task's credentials gave up
    ├── StoreError                    the database failed or is in an unexpected state
    │   └── DatabaseUnavailable       cannot connect or open: refused, auth, missing db, file
    ├── CredentialNotFound            unknown id or handle, or another tenant's (no oracle)
    │   ├── BindingNotFound           no binding of that name (nor node/flow/env default)
    │   └── SecretNotFound            no secret source holds the named secret
    ├── SecretSourceError             a secret source failed (unreachable, denied): no fall-through
    ├── CredentialTypeMismatch        the credential exists but is not of the type the caller needs
    ├── InvalidCredential             input failed validation; ``problems`` lists every field
    │   ├── UnknownCredentialType     the type name is not in the catalog
    │   └── InvalidInput              bad input about something else: a filter, a TLS file, a key
    ├── ConflictError                 the request conflicts with the stored state
    │   ├── VersionConflict           check-and-set on the secret version lost a race or was stale
    │   ├── HandleConflict            the handle is taken in that tenant + environment
    │   └── CredentialInUse           flows still bind the credential (delete without force)
    ├── CredentialExpired             a static secret is past its ``expires_at``
    ├── DecryptionFailed              a sealed blob failed its integrity check (opaque on purpose)
    ├── AccessDenied                  the caller may not do this
    │   ├── DestinationRefused        a connection test's destination is not allowed (SSRF guard)
    │   └── WebhookUnauthorized       an incoming request's credentials are missing or wrong
    ├── TokenRefreshFailed            an OAuth token could not be obtained or refreshed
    └── CircuitOpen                   calls to a failing token endpoint are paused

Messages name credentials (id, handle, tenant, version) and field names, never a secret value.
Context is attached as attributes by :func:`error_context`, in the way httpx stamps the request
onto its errors, so callers deep in the stack need not thread ids into every message.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


class FlowcredError(Exception):
    """Base of every error flowcred raises on purpose.

    ``credential_id``, ``handle`` and ``tenant`` are set when known (see :func:`error_context`).
    """

    credential_id: int | None = None
    handle: str | None = None
    tenant: str | None = None


class ConfigurationError(FlowcredError):
    """Raised when settings or the environment make it unsafe or impossible to start."""


class KeyUnavailable(ConfigurationError):
    """Raised when the database expects a key-encryption key that no key source provides."""


class KeyMismatch(ConfigurationError):
    """Raised when the provided key is not the one the database was sealed with."""


class InsecureKeyFile(ConfigurationError):
    """Raised when the key file's permissions let group or others read it."""


class StoreError(FlowcredError):
    """Raised when the database fails or holds something flowcred did not write."""


class DatabaseUnavailable(StoreError):
    """Raised when the database cannot be reached or opened, with the reason a person can fix.

    The message names host and port (or the SQLite file), user and database: never a password.
    """


class CredentialNotFound(FlowcredError):
    """Raised for an unknown reference, or a reference to another tenant's credential.

    The two cases are deliberately indistinguishable.
    """

    def __init__(self, ref: int | str, tenant: str | None = None) -> None:
        self.ref = ref
        self.tenant = tenant
        if isinstance(ref, int):
            self.credential_id = ref
        else:
            self.handle = ref
        where = f" in tenant {tenant!r}" if tenant is not None else ""
        super().__init__(f"credential {ref!r} not found{where}")


class CredentialTypeMismatch(FlowcredError):
    """Raised when a credential exists but is not of the expected type."""

    def __init__(self, credential_id: int, expected: str, actual: str) -> None:
        self.credential_id = credential_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"credential {credential_id} is of type {actual!r}, expected {expected!r}")


@dataclass(frozen=True)
class FieldProblem:
    """One validation problem: the field's name and what is wrong, never the value."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidCredential(FlowcredError):
    """Raised when input fails validation. ``problems`` holds every problem found, not the first."""

    def __init__(self, problems: Sequence[FieldProblem], *, type_name: str | None = None) -> None:
        self.problems = tuple(problems)
        self.type_name = type_name
        prefix = f"invalid {type_name} credential" if type_name else "invalid credential"
        super().__init__(f"{prefix}: " + "; ".join(str(p) for p in self.problems))


class UnknownCredentialType(InvalidCredential):
    """Raised when a type name is not in the catalog."""

    def __init__(self, type_name: str) -> None:
        super().__init__([FieldProblem("type", f"unknown credential type {type_name!r}")])
        self.type_name = type_name


class InvalidInput(InvalidCredential):
    """Raised for bad input that is not about a credential: an audit filter, a TLS file, an API
    key's fields. Handled as :class:`InvalidCredential` (422, exit code 2); the message starts
    with ``invalid <subject>:`` so it names the right thing."""

    def __init__(self, problems: Sequence[FieldProblem], *, subject: str) -> None:
        super().__init__(problems)
        self.subject = subject
        self.args = (f"invalid {subject}: " + "; ".join(str(p) for p in self.problems),)


class ConflictError(FlowcredError):
    """Raised when a request conflicts with what is stored."""


class VersionConflict(ConflictError):
    """Raised when a check-and-set on the secret version fails: someone else changed it first."""

    def __init__(self, credential_id: int, expected: int | None, actual: int | None) -> None:
        self.credential_id = credential_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"credential {credential_id}: version conflict (expected version {expected}, "
            f"current version {actual}); re-read and retry"
        )


class HandleConflict(ConflictError):
    """Raised when a handle is already used in the same tenant and environment."""

    def __init__(self, handle: str, tenant: str, environment: str) -> None:
        self.handle = handle
        self.tenant = tenant
        self.environment = environment
        super().__init__(
            f"handle {handle!r} already exists in tenant {tenant!r}, environment {environment!r}"
        )


class CredentialInUse(ConflictError):
    """Raised when deleting a credential that flows still bind, without ``force``.

    ``flows`` names them (flow names are identifiers, never secrets), so the caller can unbind
    them first or decide to break them with ``force=True``.
    """

    def __init__(self, credential_id: int, flows: Sequence[str]) -> None:
        self.credential_id = credential_id
        self.flows = tuple(flows)
        shown = ", ".join(self.flows[:5]) + (", ..." if len(self.flows) > 5 else "")
        super().__init__(
            f"credential {credential_id} is used by {len(self.flows)} flow(s) ({shown}); "
            f"unbind them or delete with force to break them"
        )


class CredentialExpired(FlowcredError):
    """Raised when a static secret is used after its ``expires_at``."""

    def __init__(self, credential_id: int) -> None:
        self.credential_id = credential_id
        super().__init__(f"credential {credential_id} has expired; rotate it")


class CredentialsFileError(ConfigurationError):
    """Raised when a flowgen ``credentials_path`` file cannot be used; ``path`` names it.

    Messages name the path and the reason (an OS error, a JSON position, a missing field name)
    and never the file's content: operators grep worker logs for "Failed to read credentials"
    and "Failed to parse credentials".
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


class CredentialsFileUnreadable(CredentialsFileError):
    """Raised when the file is missing or cannot be read: "Failed to read credentials ..."."""


class CredentialsFileMalformed(CredentialsFileError):
    """Raised when the file is not the JSON its task family expects: "Failed to parse ..."."""


class StartupFailed(ConfigurationError):
    """Raised when a task's start-up (loading its credentials) was retried and given up.

    ``attempts`` says how many were made; ``__cause__`` is the last failure.
    """

    def __init__(self, message: str, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(message)


class BindingNotFound(CredentialNotFound):
    """Raised when a binding handle is not configured (Credential Provider spec: DAG330)."""

    def __init__(self, ref: int | str, tenant: str | None = None) -> None:
        super().__init__(ref, tenant)
        Exception.__init__(self, f"binding {ref!r} not configured")


class SecretNotFound(CredentialNotFound):
    """Raised when no secret source holds a named secret.

    ``name`` is the secret's name and ``tried`` the sources asked, in order; for the
    environment source the message names the variable it wanted, never a value.
    """

    def __init__(self, name: str, tried: Sequence[str], message: str | None = None) -> None:
        self.name = name
        self.tried = tuple(tried)
        super().__init__(name)
        # The message is the sources' own, not CredentialNotFound's "credential ... not found".
        Exception.__init__(
            self,
            message or f"secret {name!r} not found in any source (tried: {', '.join(self.tried)})",
        )


class SecretSourceError(FlowcredError):
    """Raised when a secret source fails for a reason other than "not found".

    An unreachable Vault or an access-denied answer from AWS is an error, never a silent
    fall-through to the next source. ``source`` names the source.
    """

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(f"secret source {source!r}: {message}")


class DecryptionFailed(FlowcredError):
    """Raised for every integrity failure of a sealed secret.

    Wrong associated data, wrong or missing key-encryption key, truncation, a flipped byte and an
    unknown format version all look the same on purpose: the message tells an attacker nothing.
    """

    def __init__(self, credential_id: int | None, version: int | None) -> None:
        self.credential_id = credential_id
        self.version = version
        super().__init__(
            f"secret of credential {credential_id} version {version} failed its integrity check"
        )


class AccessDenied(FlowcredError):
    """Raised when the caller is not allowed to perform the operation."""


class DestinationRefused(AccessDenied):
    """Raised when a connection test would reach a refused destination.

    Link-local and cloud-metadata addresses are refused by default (after DNS resolution, and
    again after each redirect); ``host`` names what was asked for.
    """

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        super().__init__(f"destination {host!r} refused: {reason}")


class WebhookUnauthorized(AccessDenied):
    """Raised when an incoming request lacks the configured credentials or presents wrong ones.

    The message is the same for missing and wrong credentials, so it tells a caller nothing.
    ``challenge`` is the ``WWW-Authenticate`` value to answer with.
    """

    def __init__(self, challenge: str = 'Bearer realm="flowcred"') -> None:
        self.challenge = challenge
        super().__init__("unauthorized")


class TokenRefreshFailed(FlowcredError):
    """Raised when an OAuth token cannot be obtained or refreshed.

    ``oauth_error`` is the RFC 6749 error code the token endpoint answered (``invalid_grant``,
    ``invalid_client``, ...), when it answered one; its ``error_description`` is never copied,
    since providers echo input there. ``permanent`` is true when retrying cannot help (the grant
    or the client was refused); ``reauthorize`` when a person must authorise the credential
    again. ``status_code`` is the endpoint's HTTP status, if a response came.
    """

    def __init__(
        self,
        message: str,
        *,
        oauth_error: str | None = None,
        permanent: bool = False,
        reauthorize: bool = False,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.oauth_error = oauth_error
        self.permanent = permanent
        self.reauthorize = reauthorize
        self.status_code = status_code


class CircuitOpen(FlowcredError):
    """Raised while calls to a failing endpoint are paused by the circuit breaker.

    ``endpoint`` is the endpoint's origin and path (never a query string); ``retry_in`` the
    seconds until the breaker lets one probe through.
    """

    def __init__(self, endpoint: str, retry_in: float) -> None:
        super().__init__(
            f"calls to {endpoint} are paused after repeated failures; "
            f"the next attempt is allowed in {max(retry_in, 0.0):.0f} s"
        )
        self.endpoint = endpoint
        self.retry_in = retry_in


@contextmanager
def error_context(
    *, credential_id: int | None = None, handle: str | None = None, tenant: str | None = None
) -> Iterator[None]:
    """Stamp ids onto any :class:`FlowcredError` raised inside the block, where not already set.

    Only identifiers are attached; the message is left alone, so no secret can enter it here.
    """
    try:
        yield
    except FlowcredError as exc:
        if credential_id is not None and exc.credential_id is None:
            exc.credential_id = credential_id
        if handle is not None and exc.handle is None:
            exc.handle = handle
        if tenant is not None and exc.tenant is None:
            exc.tenant = tenant
        raise
