"""Secrets from environment variables: the dev and container default.

Name to variable: ``prefix`` + the name upper-cased, every character that is not a letter or a
digit replaced by ``_``. So ``gcp_client_id`` is ``$GCP_CLIENT_ID``, ``stripe#api-key`` is
``$STRIPE_API_KEY``, and with ``prefix="APP_"`` it is ``$APP_GCP_CLIENT_ID``. A variable that is
unset *or empty* is not found (an empty secret is never useful, and ``FOO=`` in a compose file
usually means "not set here"). A miss names the variable, never a value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from flowcred.redaction import Secret
from flowcred.sources.base import SecretSource

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def variable_for(secret_name: str, prefix: str = "") -> str:
    """The environment variable that holds ``secret_name``."""
    return prefix + _NOT_ALNUM.sub("_", secret_name).upper()


class EnvSource(SecretSource):
    """Reads ``os.environ`` (or the given mapping) at every call, so a changed variable is seen."""

    name = "env"
    priority = 40.0

    def __init__(self, prefix: str = "", environ: Mapping[str, str] | None = None) -> None:
        self.prefix = prefix
        self._environ = environ if environ is not None else os.environ

    def __repr__(self) -> str:
        return f"EnvSource(prefix={self.prefix!r})"

    def get(self, secret_name: str) -> Secret | None:
        value = self._environ.get(variable_for(secret_name, self.prefix))
        return Secret(value) if value else None

    def describe(self, secret_name: str) -> str:
        return f"env:${variable_for(secret_name, self.prefix)}"
