"""Import a connection test's driver only when the test runs, with a message that says how to
get it.

The drivers for systems without a server on the CI machines (MongoDB, Kafka, SQL Server,
Oracle, Elasticsearch, Azure Blob) are the optional extra ``flowcred[connectors]``: the broker
itself works without them, and a test of such a type without its driver fails with "install
flowcred[connectors]" instead of an ImportError at start-up.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

from flowcred.connectors.base import ConnectionTestError

EXTRA = "flowcred[connectors]"


def load_driver(module: str, distribution: str) -> ModuleType:
    """``import module``, or a :class:`ConnectionTestError` naming the extra to install."""
    try:
        with warnings.catch_warnings():
            # Some drivers use deprecated standard-library calls at import (kafka-python's
            # importlib.resources.read_text); that is theirs to fix, not the user's to see.
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module(module)
    except ImportError:
        raise ConnectionTestError(
            f"the driver for this test is not installed: pip install '{EXTRA}' "
            f"(it provides {distribution})"
        ) from None
