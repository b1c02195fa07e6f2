"""Fixtures shared by the catalog tests."""

from __future__ import annotations

import pytest

from flowcred.catalog import Catalog, default_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The catalog shipped in the package."""
    return default_catalog()
