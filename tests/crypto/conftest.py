"""Shared keys and rings for the crypto tests."""

from __future__ import annotations

import pytest

from flowcred.crypto import Kek, KekRing, generate_key


@pytest.fixture
def old_key() -> bytes:
    return generate_key()


@pytest.fixture
def new_key() -> bytes:
    return generate_key()


@pytest.fixture
def ring(new_key: bytes) -> KekRing:
    """A ring holding one KEK, version 1."""
    return KekRing([Kek(1, new_key)], primary_version=1)


@pytest.fixture
def rotated_ring(old_key: bytes, new_key: bytes) -> KekRing:
    """A ring mid-rotation: version 3 is primary, version 2 is still loaded."""
    return KekRing([Kek(3, new_key), Kek(2, old_key)], primary_version=3)
