"""The contract of a secret source, in the manner of keyring's backends.

A :class:`SecretSource` answers one question: "what is the secret called NAME?". It returns the
value wrapped in :class:`~flowcred.redaction.Secret`, or ``None`` when it does not hold that
name, and raises :class:`~flowcred.errors.SecretSourceError` for anything else (the server is
unreachable, access is denied, the stored value is not text). A chain asks sources in order of
``priority`` (highest first) and moves on only on ``None``: an error is never a silent
fall-through, or a typo'd Vault token would quietly fall back to a stale environment variable.

Every value a source returns is registered for log redaction by the chain, like a stored secret.
``flowcred.testing.source_contract`` holds the contract tests every source must pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from flowcred.redaction import Secret


@dataclass(frozen=True, slots=True)
class SourcedSecret:
    """A value found by a source, with the source's name (for audit details and errors)."""

    name: str
    value: Secret
    source: str


class SecretSource(ABC):
    """One place secrets can be read from.

    ``name`` identifies the source in configuration, errors and audit details (``env``,
    ``vault``, ...). ``priority``: higher is asked first when no explicit order is configured.
    """

    name: str = "source"
    priority: float = 0.0

    @abstractmethod
    def get(self, secret_name: str) -> Secret | None:
        """The secret called ``secret_name``, or ``None`` if this source does not hold it.

        Raise :class:`~flowcred.errors.SecretSourceError` for every other failure; never
        return ``None`` to mean "could not look".
        """

    def describe(self, secret_name: str) -> str:
        """Where this source would look for ``secret_name``, for a not-found message
        (the environment source says which variable). Never includes a value."""
        return f"{self.name}:{secret_name}"

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release clients and connections; the default holds none."""
