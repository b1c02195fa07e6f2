"""Pytest fixtures for the test authorization server and the oidc-provider-mock issuer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.oauth_support.server import AuthzServer, run_oidc_provider


@pytest.fixture
def authz_server() -> Iterator[AuthzServer]:
    """A fresh, started :class:`AuthzServer` per test (defaults; reconfigure via attributes);
    stopped after the test."""
    server = AuthzServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def oidc_provider() -> Iterator[str]:
    """oidc-provider-mock on 127.0.0.1:<free port>; yields the issuer URL (no trailing /)."""
    with run_oidc_provider() as issuer:
        yield issuer
