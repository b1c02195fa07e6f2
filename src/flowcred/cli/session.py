"""How CLI commands open the store: settings from ``FLOWCRED_*``, the broker, and who is acting."""

from __future__ import annotations

import getpass

from flowcred.broker import Broker, open_broker


def open_cli_broker() -> Broker:
    """Open the store named by the environment (``FLOWCRED_HOME`` / ``FLOWCRED_DATABASE_URL``)."""
    return open_broker()


def os_user() -> str:
    """The operating-system user running the command: the CLI's actor."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - containers without a passwd entry
        return "unknown"
