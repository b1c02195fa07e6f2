"""Secret sources: where a binding's secrets come from besides flowcred's own store.

See :mod:`flowcred.sources.base` for the contract every source meets,
:mod:`flowcred.sources.chain` for the ordered chain and :mod:`flowcred.sources.config` for
the settings of each source.
"""

from flowcred.sources.base import SecretSource, SourcedSecret
from flowcred.sources.chain import SourceChain

__all__ = ["SecretSource", "SourceChain", "SourcedSecret"]
