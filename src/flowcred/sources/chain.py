"""Asking several secret sources in order, as keyring's chainer asks its backends.

:class:`SourceChain` is what bindings and the validator use: ``get`` finds a secret or raises
:class:`~flowcred.errors.SecretNotFound` naming every place it looked (for the environment
source, the variable it wanted); ``find`` answers ``None`` instead. A source that *fails*
(unreachable, access denied) stops the chain with
:class:`~flowcred.errors.SecretSourceError`: moving on would quietly use a stale value from a
lower source. Every value found is registered for log redaction, pinned like a stored secret,
before it is handed out.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowcred.errors import ConfigurationError, SecretNotFound, SecretSourceError
from flowcred.redaction import register_secret
from flowcred.sources.base import SecretSource, SourcedSecret


class SourceChain:
    """Sources asked in the given order (use :func:`by_priority` for keyring's order)."""

    def __init__(self, sources: Sequence[SecretSource]) -> None:
        seen: set[str] = set()
        for source in sources:
            if source.name in seen:
                raise ConfigurationError(f"secret source {source.name!r} is listed twice")
            seen.add(source.name)
        self._sources = tuple(sources)

    def __repr__(self) -> str:
        return f"SourceChain({self.names!r})"

    @property
    def names(self) -> list[str]:
        """The sources' names, in the order they are asked."""
        return [source.name for source in self._sources]

    @property
    def sources(self) -> tuple[SecretSource, ...]:
        return self._sources

    def only(self, names: Sequence[str]) -> SourceChain:
        """A chain of the named sources in the given order (a binding's ``sources: [...]``).

        Raises :class:`~flowcred.errors.ConfigurationError` for a name this chain lacks.
        """
        by_name = {source.name: source for source in self._sources}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise ConfigurationError(
                f"secret source(s) {', '.join(map(repr, missing))} not configured "
                f"(configured: {', '.join(self.names) or 'none'})"
            )
        return SourceChain([by_name[name] for name in names])

    def find(self, name: str) -> SourcedSecret | None:
        """The first source's value for ``name``, or ``None`` if no source holds it.

        Raises :class:`~flowcred.errors.SecretSourceError` as soon as one source fails.
        """
        for source in self._sources:
            try:
                value = source.get(name)
            except SecretSourceError:
                raise
            except Exception as exc:  # a source broke its contract: still never fall through
                raise SecretSourceError(
                    source.name, f"failed reading {name!r} ({type(exc).__name__})"
                ) from None
            if value is not None:
                register_secret(value, pinned=True)
                return SourcedSecret(name=name, value=value, source=source.name)
        return None

    def get(self, name: str) -> SourcedSecret:
        """Like :meth:`find`, but a miss raises :class:`~flowcred.errors.SecretNotFound`
        listing where it looked (``env:$GCP_CLIENT_ID``, ``vault:secret/app#key``, ...)."""
        found = self.find(name)
        if found is None:
            raise SecretNotFound(name, self.tried(name))
        return found

    def tried(self, name: str) -> list[str]:
        """Where each source would look for ``name`` (never a value)."""
        return [source.describe(name) for source in self._sources]

    def close(self) -> None:
        for source in self._sources:
            source.close()


def by_priority(sources: Sequence[SecretSource]) -> list[SecretSource]:
    """Highest ``priority`` first; ties keep their given order (keyring's default order)."""
    return sorted(sources, key=lambda source: -source.priority)
