"""Raw AES-256-GCM with random 96-bit nonces: the one place flowcred touches an AEAD directly.

.. danger::

    This is a "Hazardous Materials" module. You should ONLY use it if you are 100% sure that you
    know what you are doing: nonce uniqueness, associated-data framing and key separation are the
    caller's job here, and a mistake is silent. Everything outside :mod:`flowcred.crypto` must use
    the recipes in :mod:`flowcred.crypto.envelope` and :mod:`flowcred.crypto.kek_ring` instead.

Blob layout produced by :func:`encrypt`: ``nonce (12 bytes) || ciphertext || tag (16 bytes)``.
Every decryption failure, whatever its cause, surfaces as the private :class:`_AeadError`, which
the recipe layer turns into an opaque :class:`~flowcred.errors.DecryptionFailed`.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
# The shortest blob that can possibly be valid: a nonce and a tag around an empty plaintext.
MIN_BLOB_SIZE = NONCE_SIZE + TAG_SIZE

# Re-exported so that other modules can annotate with it without importing hazmat themselves.
Cipher = AESGCM


class _AeadError(Exception):
    """Raised for every decryption failure; deliberately carries no detail."""


def new_data_key() -> bytes:
    """Return 32 fresh random bytes from the operating system's CSPRNG, for an AES-256 key."""
    return AESGCM.generate_key(bit_length=256)


def cipher(key: bytes) -> Cipher:
    """Build a reusable AES-256-GCM object for ``key``.

    Callers that use one key many times (the few key-encryption keys) keep the result; per-secret
    data keys go through :func:`encrypt`/:func:`decrypt`, which build one per call.

    Raises ``ValueError`` if ``key`` is not exactly 32 bytes.
    """
    if len(key) != KEY_SIZE:
        raise ValueError("AES-256-GCM key must be exactly 32 bytes")
    return AESGCM(key)


def encrypt_with(aead: Cipher, plaintext: bytes, aad: bytes, *, prefix: bytes = b"") -> bytes:
    """Encrypt under a fresh random nonce and return ``prefix || nonce || ciphertext || tag``.

    ``prefix`` (a format header) is only prepended, not authenticated; callers that need it
    authenticated put it into ``aad`` as well.
    """
    nonce = os.urandom(NONCE_SIZE)
    return b"".join((prefix, nonce, aead.encrypt(nonce, plaintext, aad)))


def decrypt_with(aead: Cipher, blob: bytes, aad: bytes, *, offset: int = 0) -> bytes:
    """Decrypt ``blob[offset:]`` (``nonce || ciphertext || tag``) and return the plaintext.

    ``offset`` skips a header without copying the blob first. Raises :class:`_AeadError` if the
    blob is too short or fails authentication under ``aad``.
    """
    if len(blob) < offset + MIN_BLOB_SIZE:
        raise _AeadError
    start = offset + NONCE_SIZE
    try:
        return aead.decrypt(blob[offset:start], blob[start:], aad)
    except InvalidTag:
        raise _AeadError from None


def encrypt(key: bytes, plaintext: bytes, aad: bytes, *, prefix: bytes = b"") -> bytes:
    """Encrypt with a one-off key; see :func:`encrypt_with` for the layout.

    Raises ``ValueError`` if ``key`` is not exactly 32 bytes.
    """
    return encrypt_with(cipher(key), plaintext, aad, prefix=prefix)


def decrypt(key: bytes, blob: bytes, aad: bytes, *, offset: int = 0) -> bytes:
    """Decrypt with a one-off key; see :func:`decrypt_with`.

    Raises :class:`_AeadError` on any failure, including a key of the wrong length (a key that
    came out of an authenticated wrap can only be wrong if the store holds something we did not
    write, which is an integrity failure like any other).
    """
    if len(key) != KEY_SIZE:
        raise _AeadError
    return decrypt_with(AESGCM(key), blob, aad, offset=offset)
