"""HMAC-SHA256 and HKDF-SHA256, for key fingerprints and derived keys.

.. danger::

    This is a "Hazardous Materials" module, like :mod:`flowcred.crypto._aead`: it hands out raw
    keyed hashes and derived key bytes. Label every use with its own versioned ``info``/message so
    that two purposes can never produce the same output.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """Return the 32-byte HMAC-SHA256 of ``message`` under ``key``."""
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(message)
    return mac.finalize()


def hkdf_sha256(key: bytes, info: bytes, length: int = 32) -> bytes:
    """Derive ``length`` bytes from ``key`` with HKDF-SHA256 (no salt) and the label ``info``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)
