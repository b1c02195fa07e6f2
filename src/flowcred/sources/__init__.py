"""Secret sources: where a binding's secrets come from besides flowcred's own store.

See :mod:`flowcred.sources.base` for the contract every source meets.
"""

from flowcred.sources.base import SecretSource, SourcedSecret

__all__ = ["SecretSource", "SourcedSecret"]
