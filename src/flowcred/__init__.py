"""flowcred: a credential broker for workflow and integration engines.

Flows hold references (an integer credential id or a handle); flowcred turns them into material at
run time, keeping every secret encrypted at rest, out of logs and responses.

>>> import flowcred
>>> broker = flowcred.open()                                        # doctest: +SKIP
>>> cred = broker.credentials.create(name="stripe", type="api_key",
...                                  secret={"api_key": "sk_live_..."})
>>> broker.provider().resolve("stripe").headers                     # doctest: +SKIP
mappingproxy({'X-API-Key': [secure]})
"""

from __future__ import annotations

import os

from flowcred.broker import Broker, Credentials, open_broker
from flowcred.catalog import Catalog, CredentialType, default_catalog
from flowcred.crypto import KeySource
from flowcred.errors import (
    AccessDenied,
    CircuitOpen,
    ConfigurationError,
    ConflictError,
    CredentialExpired,
    CredentialInUse,
    CredentialNotFound,
    CredentialTypeMismatch,
    DecryptionFailed,
    FieldProblem,
    FlowcredError,
    HandleConflict,
    InsecureKeyFile,
    InvalidCredential,
    KeyMismatch,
    KeyUnavailable,
    StoreError,
    TokenRefreshFailed,
    UnknownCredentialType,
    VersionConflict,
)
from flowcred.records import Credential, SecretVersion
from flowcred.redaction import Secret
from flowcred.runtime.material import CredentialMaterial
from flowcred.runtime.provider import CredentialProvider
from flowcred.settings import FlowcredSettings, load_settings

__version__ = "0.1.0"


# The contract name (DESIGN §2) deliberately mirrors the built-in open().
def open(
    database_url: str | None = None,
    *,
    home: str | None = None,
    key_source: KeySource | None = None,
    settings: FlowcredSettings | None = None,
    bindings: str | os.PathLike[str] | None = None,
) -> Broker:
    """Open the flowcred store, initialising it on first use.

    With no arguments: the embedded default under ``$FLOWCRED_HOME`` (default ``./.flowcred``) —
    SQLite plus a 0600 key file. ``database_url`` selects PostgreSQL
    (``postgresql+psycopg://...``). Raises ConfigurationError (KeyMismatch, KeyUnavailable,
    InsecureKeyFile, ...) when it is unsafe to start. ``bindings``: a Credential Provider
    bindings file (default ``FLOWCRED_BINDINGS_FILE``); its names then resolve through the
    secret sources (:mod:`flowcred.bindings.resolve`).
    """
    return open_broker(
        database_url,
        home=home,
        key_source=key_source,
        settings=settings,
        bindings=None if bindings is None else os.fspath(bindings),
    )


__all__ = [
    "AccessDenied",
    "Broker",
    "Catalog",
    "CircuitOpen",
    "ConfigurationError",
    "ConflictError",
    "Credential",
    "CredentialExpired",
    "CredentialInUse",
    "CredentialMaterial",
    "CredentialNotFound",
    "CredentialProvider",
    "CredentialType",
    "CredentialTypeMismatch",
    "Credentials",
    "DecryptionFailed",
    "FieldProblem",
    "FlowcredError",
    "FlowcredSettings",
    "HandleConflict",
    "InsecureKeyFile",
    "InvalidCredential",
    "KeyMismatch",
    "KeySource",
    "KeyUnavailable",
    "Secret",
    "SecretVersion",
    "StoreError",
    "TokenRefreshFailed",
    "UnknownCredentialType",
    "VersionConflict",
    "__version__",
    "default_catalog",
    "load_settings",
    "open",
]
