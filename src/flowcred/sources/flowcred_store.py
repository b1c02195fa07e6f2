"""flowcred's own store as a secret source: a binding may name a stored credential.

Name: ``handle`` (the credential's secret as ``get_password`` gives it: the one secret of a
single-secret type, the JSON object of a composite one) or ``handle#field`` (one field of the
resolved material, e.g. ``twilio_main#auth_token``). Reads go through the provider's *stored*
path (never back through bindings, so a binding cannot resolve itself) and are audited like
every resolve. An unknown handle is not found; any other failure (expired, undecryptable, audit
write failed) is a :class:`~flowcred.errors.SecretSourceError`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from flowcred.errors import CredentialNotFound, FlowcredError, SecretSourceError
from flowcred.redaction import Secret
from flowcred.sources.base import SecretSource

if TYPE_CHECKING:
    from flowcred.runtime.credential_provider import CredentialProvider


class StoreSource(SecretSource):
    """Stored credentials of one provider's tenant and environment."""

    name = "store"
    priority = 50.0

    def __init__(self, provider: CredentialProvider) -> None:
        self._provider = provider

    def __repr__(self) -> str:
        return f"StoreSource(tenant={self._provider.tenant!r})"

    def get(self, secret_name: str) -> Secret | None:
        handle, _, field = secret_name.partition("#")
        try:
            if not field:
                return Secret(self._provider.stored_password(handle))
            material = self._provider.resolve_stored(handle)
        except CredentialNotFound:
            return None
        except FlowcredError as exc:
            raise SecretSourceError(
                self.name, f"reading {handle!r} failed ({type(exc).__name__})"
            ) from exc
        value = material.fields.get(field)
        if value is None:
            return None
        if isinstance(value, Secret):
            return value
        return Secret(value if isinstance(value, str) else json.dumps(value))

    def describe(self, secret_name: str) -> str:
        return f"store:{secret_name} (tenant {self._provider.tenant!r})"
