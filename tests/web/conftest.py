"""Fixtures of the web UI tests: the REST API's environment (keys for every role and tenant) and
clients signed in through the real sign-in form.

``ui_env.sign_in(role, tenant)`` returns a new :class:`TestClient` that has signed in with that
key; ``csrf_of(client, path)`` reads the page's CSRF token the way the browser's script does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import ApiEnv, open_api_env

_TOKEN_RE = re.compile(r'name="(?:login_token|csrf_token)" value="([^"]+)"')
_META_RE = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


def login_token(html: str) -> str:
    found = _TOKEN_RE.search(html)
    assert found, "the page has no form token"
    return found.group(1)


def csrf_of(client: Any, path: str = "/ui/credentials") -> str:
    """The session's CSRF token as a signed-in page carries it."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = _META_RE.search(page.text)
    assert found and found.group(1), "no CSRF token on the page"
    return found.group(1)


@dataclass
class UiEnv:
    api: ApiEnv

    @property
    def broker(self) -> Any:
        return self.api.broker

    def sign_in(self, role: str = "admin", tenant: str = "*", **client_kwargs: Any) -> Any:
        """A new client of the app, signed in through the form with the ``role``/``tenant`` key."""
        client = self.api.new_client(**client_kwargs)
        client.__enter__()
        self._clients.append(client)
        form = client.get("/ui/login")
        assert form.status_code == 200, form.text
        done = client.post(
            "/ui/login",
            data={"api_key": self.api.keys[(role, tenant)], "login_token": login_token(form.text)},
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
        return client

    def __post_init__(self) -> None:
        self._clients: list[Any] = []

    def close(self) -> None:
        for client in self._clients:
            client.__exit__(None, None, None)


@pytest.fixture
def ui_env(tmp_path: Path) -> Iterator[UiEnv]:
    with open_api_env(tmp_path) as api:
        env = UiEnv(api)
        try:
            yield env
        finally:
            env.close()
