"""Test-suite OAuth 2.0 / OIDC authorization server (real HTTP on 127.0.0.1).

Public API: :class:`AuthzServer` (in-process, thread-backed), :func:`run_oidc_provider`
(oidc-provider-mock in a thread) and the pytest fixtures in ``tests.oauth_support.fixtures``.
"""

from tests.oauth_support.server import AuthzServer, Fault, RegisteredClient, run_oidc_provider

__all__ = ["AuthzServer", "Fault", "RegisteredClient", "run_oidc_provider"]
