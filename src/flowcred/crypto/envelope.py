"""Envelope encryption of secret payloads: the recipe the store uses.

Each secret version is sealed with its own random 256-bit data key (AES-256-GCM, random 96-bit
nonce); the data key is wrapped by the primary KEK of a :class:`~flowcred.crypto.kek_ring.KekRing`.
Both layers are bound to the same associated data, built by :func:`secret_aad` from tenant,
credential id and version, so a ciphertext or a wrapped key copied onto another row fails to open
instead of yielding that row's neighbour's secret.

Payload blob (format 1)::

    0x01 || nonce (12) || AES-256-GCM(data_key, plaintext) || tag (16)

with AEAD associated data ``b"flowcred-secret\\x00" || aad``.

Every failure to open raises one opaque ``DecryptionFailed(credential_id, version)`` with no
cause attached, whatever went wrong: wrong context, wrong or missing KEK, truncation, a flipped
byte, an unknown format.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowcred.crypto import _aead
from flowcred.crypto._aead import _AeadError
from flowcred.crypto.kek_ring import KekRing
from flowcred.errors import DecryptionFailed

__all__ = [
    "FORMAT_VERSION",
    "SealedSecret",
    "open_sealed",
    "rewrap_key",
    "seal",
    "secret_aad",
    "state_aad",
    "token_aad",
]

FORMAT_VERSION = 1
_FORMAT_BYTE = bytes((FORMAT_VERSION,))
_SECRET_AAD_PREFIX = b"flowcred-secret\x00"
_AAD_LABEL = b"flowcred/secret/v1\x00"
_TOKEN_AAD_LABEL = b"flowcred/token/v1\x00"


def token_aad(tenant: str, credential_id: int, generation: int) -> bytes:
    """The associated data of a credential's sealed OAuth tokens (``store/oauth_tokens.py``).

    Encoded like :func:`secret_aad` under its own label, with the token generation in place of
    the secret version: a token blob cannot be opened as a secret version (or as another
    generation), and no secret version as tokens.
    """
    return _aad(_TOKEN_AAD_LABEL, tenant, credential_id, generation)


def _aad(label: bytes, tenant: str, credential_id: int, number: int) -> bytes:
    raw = tenant.encode()
    return b"".join(
        (
            label,
            len(raw).to_bytes(4, "big"),
            raw,
            credential_id.to_bytes(8, "big", signed=True),
            number.to_bytes(8, "big", signed=True),
        )
    )


_STATE_AAD_LABEL = b"flowcred/oauth-state/v1\x00"


def secret_aad(tenant: str, credential_id: int, version: int) -> bytes:
    """Return the associated data that binds a sealed secret to its row.

    The encoding is canonical and unambiguous -- a label, the UTF-8 tenant prefixed by its length
    (uint32), then credential id and version as signed 64-bit big-endian integers -- so no tenant
    name, whatever separators or quotes it holds, can produce another row's associated data. It is
    binary rather than JSON because it is computed on every uncached resolve.

    Raises ``OverflowError`` if an id does not fit in 64 bits, ``UnicodeEncodeError`` if the
    tenant is not encodable as UTF-8 (a lone surrogate).
    """
    raw = tenant.encode()
    return b"".join(
        (
            _AAD_LABEL,
            len(raw).to_bytes(4, "big"),
            raw,
            credential_id.to_bytes(8, "big", signed=True),
            version.to_bytes(8, "big", signed=True),
        )
    )


def state_aad(tenant: str, credential_id: int, state_hash: str) -> bytes:
    """Return the associated data that binds a sealed OAuth authorization state to its row.

    Same canonical encoding as :func:`secret_aad` under a distinct label, so a pending
    authorization's sealed PKCE verifier can never be opened as a secret version (or the other
    way round), nor moved to another state row, credential or tenant.
    """
    raw = tenant.encode()
    digest = state_hash.encode("ascii")
    return b"".join(
        (
            _STATE_AAD_LABEL,
            len(raw).to_bytes(4, "big"),
            raw,
            credential_id.to_bytes(8, "big", signed=True),
            len(digest).to_bytes(4, "big"),
            digest,
        )
    )


@dataclass(frozen=True, slots=True, repr=False)
class SealedSecret:
    """What the store persists for one secret version. Its repr shows sizes, never bytes.

    ``kek_version`` duplicates the header of ``wrapped_key`` so the store can find rows still
    wrapped by an old KEK with an indexed query.
    """

    ciphertext: bytes
    wrapped_key: bytes
    kek_version: int

    def __repr__(self) -> str:
        return (
            f"SealedSecret(ciphertext=<{len(self.ciphertext)} bytes>, "
            f"wrapped_key=<{len(self.wrapped_key)} bytes>, kek_version={self.kek_version})"
        )


def seal(plaintext: bytes, *, ring: KekRing, aad: bytes) -> SealedSecret:
    """Encrypt ``plaintext`` under a new data key and wrap that key with the ring's primary KEK.

    ``aad`` should come from :func:`secret_aad`; the same value must be given to open it again.
    """
    data_key = _aead.new_data_key()
    ciphertext = _aead.encrypt(data_key, plaintext, _SECRET_AAD_PREFIX + aad, prefix=_FORMAT_BYTE)
    return SealedSecret(ciphertext, ring.wrap(data_key, aad), ring.primary_version)


def open_sealed(
    ciphertext: bytes,
    wrapped_key: bytes,
    *,
    ring: KekRing,
    aad: bytes,
    credential_id: int | None = None,
    version: int | None = None,
) -> bytes:
    """Return the plaintext of a sealed secret.

    ``credential_id`` and ``version`` only label the error.

    Raises ``DecryptionFailed(credential_id, version)`` (no cause) if anything about the blobs,
    the ring or ``aad`` is not exactly as it was when the secret was sealed.
    """
    # This runs on every uncached resolve. Headers are skipped by offset so each blob is sliced
    # only once, and the ring's private unwrap signals failure with the same private error, so a
    # single handler covers both layers and no intermediate DecryptionFailed is built.
    try:
        if not ciphertext or ciphertext[0] != FORMAT_VERSION:
            raise _AeadError
        data_key = ring._unwrap(wrapped_key, aad)
        return _aead.decrypt(data_key, ciphertext, _SECRET_AAD_PREFIX + aad, offset=1)
    except _AeadError:
        raise DecryptionFailed(credential_id, version) from None


def rewrap_key(
    wrapped_key: bytes,
    *,
    ring: KekRing,
    aad: bytes,
    credential_id: int | None = None,
    version: int | None = None,
) -> bytes:
    """Return ``wrapped_key`` re-wrapped by the ring's primary KEK; the ciphertext stays valid.

    Raises ``DecryptionFailed(credential_id, version)`` (no cause) if the key cannot be unwrapped
    with any KEK in the ring under ``aad``.
    """
    try:
        data_key = ring._unwrap(wrapped_key, aad)
    except _AeadError:
        raise DecryptionFailed(credential_id, version) from None
    return ring.wrap(data_key, aad)
