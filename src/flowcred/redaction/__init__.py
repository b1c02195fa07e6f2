"""Keep secret values out of reprs, displays and log records.

Three layers, from the narrowest to the widest:

* :class:`Secret` wraps one value so that it prints as ``[secure]`` wherever it goes: ``repr``,
  ``str``, f-strings, ``%`` formatting, and the repr of any container holding it. The value leaves
  only through :meth:`Secret.reveal`, so a leak is always a visible line of code.
* :class:`SecretRegistry` remembers every secret value the process has decrypted or received,
  together with the encoded forms it is likely to take in text (base64, URL and JSON escaping),
  and masks all of them in arbitrary text with :meth:`SecretRegistry.redact`.
* :func:`install_log_redaction` makes every log record of the process pass through a registry, so
  that no handler, present or added later, can write a registered value. :class:`RedactingFilter`
  does the same for one handler, for applications that prefer to wire logging explicitly.

Usage::

    from flowcred.redaction import Secret, install_log_redaction, register_secret

    install_log_redaction()            # once, at start-up
    token = Secret(fetch_token())
    register_secret(token.reveal())    # every log record now masks it, in any encoding
    log.info("got token %s", token)    # -> "got token [secure]"
    log.info("raw %s", token.reveal()) # -> "raw ***"

Cost model, which is the reason this module exists: a naive redactor (Airflow's) recompiles one
regular expression of all secrets on each registration, so registration is O(n) in the number of
secrets and every log line is scanned against an ever larger alternation. Here registration costs
O(len(secret)) and :meth:`SecretRegistry.redact` costs O(len(text)), neither growing with the
number of registered secrets; see :class:`SecretRegistry` for how.

The package is split along those layers: :mod:`~flowcred.redaction.secret` (the wrapper),
:mod:`~flowcred.redaction.registry` (the registry and the process-wide one) and
:mod:`~flowcred.redaction.log_hook` (the record-factory hook and the filter). Import the public
names from ``flowcred.redaction`` itself; the submodules are an implementation detail.
"""

from __future__ import annotations

from flowcred.redaction.log_hook import (
    RedactingFilter,
    install_log_redaction,
    uninstall_log_redaction,
)
from flowcred.redaction.registry import (
    DEFAULT_MAX_PINNED_BYTES,
    DEFAULT_MAX_TRANSIENT_BYTES,
    MIN_SECRET_LENGTH,
    REDACTED,
    SecretRegistry,
    default_registry,
    register_secret,
)
from flowcred.redaction.secret import SECURE_PLACEHOLDER, Secret, mask

__all__ = [
    "DEFAULT_MAX_PINNED_BYTES",
    "DEFAULT_MAX_TRANSIENT_BYTES",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "SECURE_PLACEHOLDER",
    "RedactingFilter",
    "Secret",
    "SecretRegistry",
    "default_registry",
    "install_log_redaction",
    "mask",
    "register_secret",
    "uninstall_log_redaction",
]
