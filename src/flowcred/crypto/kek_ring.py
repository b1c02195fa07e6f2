"""Versioned key-encryption keys (KEKs) and the ring that wraps data keys with them.

A :class:`KekRing` is flowcred's ``MultiFernet``: it wraps with the primary (newest) KEK and
unwraps with whichever version a wrapped key names, so a KEK rotation can re-wrap data keys online
while both old and new keys are loaded.

Wrapped-key blob (format 1)::

    0x01 || kek_version (uint32, big-endian) || nonce (12) || AES-256-GCM(kek, data_key) || tag (16)

The AEAD associated data is ``b"flowcred-dek\\x00" || header (5 bytes) || caller's aad``, so the
header cannot be altered and a wrapped key is bound to the same context as the secret it opens.

Keys never appear in a repr, a message or a log line; :func:`fingerprint` is what may be printed
and stored.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from flowcred.crypto import _aead, _kdf
from flowcred.crypto._aead import _AeadError
from flowcred.errors import DecryptionFailed, KeyMismatch, KeyUnavailable

__all__ = ["Kek", "KekRing", "build_ring", "fingerprint", "unregistered_keys"]

_FORMAT = 1
_HEADER_SIZE = 5
_MAX_KEK_VERSION = 2**32 - 1
_DEK_AAD_PREFIX = b"flowcred-dek\x00"
_FINGERPRINT_LABEL = b"flowcred kek fingerprint v1"
# How much of a fingerprint goes into human-facing messages: enough to tell keys apart at a glance.
_SHORT_FP = 12


def fingerprint(key: bytes) -> str:
    """Return a stable identifier of ``key`` that is safe to store in the database and to print.

    It is the first 32 hex characters (128 bits) of HMAC-SHA256(key, "flowcred kek fingerprint
    v1"): one-way, so it reveals nothing usable about the key, yet it lets flowcred tell at start-up
    whether the key it was given is the one the database was sealed with.
    """
    return _kdf.hmac_sha256(key, _FINGERPRINT_LABEL).hex()[:32]


def _short(fp: str) -> str:
    return f"{fp[:_SHORT_FP]}…"


@dataclass(frozen=True, repr=False)
class Kek:
    """One key-encryption key and the version number the database knows it by.

    ```python
    kek = Kek(version=1, key=generate_key())
    repr(kek)  # "Kek(version=1, fingerprint='3f9a0c1d2e4b…')" -- never the key
    ```

    Raises ``ValueError`` if ``key`` is not 32 bytes or ``version`` does not fit in a uint32.
    """

    version: int
    key: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or len(self.key) != _aead.KEY_SIZE:
            raise ValueError("a key-encryption key must be exactly 32 bytes")
        if not 0 <= self.version <= _MAX_KEK_VERSION:
            raise ValueError("a key-encryption key version must be between 0 and 2**32 - 1")

    def __repr__(self) -> str:
        return f"Kek(version={self.version}, fingerprint={_short(fingerprint(self.key))!r})"

    __str__ = __repr__


class KekRing:
    """The loaded KEKs: wrap with the primary one, unwrap with any.

    ```python
    ring = KekRing([Kek(2, new_key), Kek(1, old_key)], primary_version=2)
    wrapped = ring.wrap(data_key, aad)          # names KEK version 2 in its header
    ring.unwrap(old_wrapped, aad)               # works for blobs naming version 1 or 2
    ring.rewrap(old_wrapped, aad)               # now wrapped by version 2
    ```

    Every unwrap failure -- unknown format, truncation, a KEK version not in the ring, a flipped
    byte, the wrong ``aad`` -- raises the same ``DecryptionFailed(None, None)`` with no cause; the
    envelope layer re-raises it with the credential id and version.

    Raises ``ValueError`` from the constructor if ``primary_version`` is not among ``keks`` or
    one version is given two different keys.
    """

    __slots__ = ("_ciphers", "_derived", "_keks", "_primary", "_primary_header")

    def __init__(self, keks: Iterable[Kek], primary_version: int) -> None:
        self._keks: dict[int, Kek] = {}
        for kek in keks:
            known = self._keks.get(kek.version)
            if known is not None and not hmac.compare_digest(known.key, kek.key):
                raise ValueError(f"KEK version {kek.version} was given two different keys")
            self._keks[kek.version] = kek
        if primary_version not in self._keks:
            raise ValueError(
                f"primary KEK version {primary_version} is not among the keys given "
                f"(versions {sorted(self._keks)})"
            )
        self._ciphers = {v: _aead.cipher(k.key) for v, k in self._keks.items()}
        self._derived: dict[tuple[int, bytes], bytes] = {}
        self._primary = primary_version
        self._primary_header = _header(primary_version)

    def __repr__(self) -> str:
        return f"KekRing(primary_version={self._primary}, versions={sorted(self._keks)})"

    @property
    def primary_version(self) -> int:
        """The KEK version new data keys are wrapped with."""
        return self._primary

    @property
    def versions(self) -> frozenset[int]:
        """Every KEK version this ring can unwrap."""
        return frozenset(self._keks)

    @property
    def retained_versions(self) -> frozenset[int]:
        """Retired KEK versions whose derived subkeys (audit MAC keys) this ring still holds."""
        return frozenset(version for version, _ in self._derived if version not in self._keks)

    def with_retained(self, derived: Mapping[tuple[int, bytes], bytes]) -> KekRing:
        """This ring plus subkeys kept for retired KEK versions: ``(version, info) → key``.

        ``flowcred keys retire`` removes a KEK from the key source once no data key needs it, but
        audit events MAC'd under that version must stay verifiable; their HKDF subkeys are kept
        (sealed under the primary KEK) and handed back here, so :meth:`derive_key` answers for
        the retired version without its KEK. Returns a new ring; this one is unchanged.
        """
        ring = KekRing(self._keks.values(), self._primary)
        ring._derived = {**self._derived, **derived}
        for key in ring._derived.values():
            if len(key) != _aead.KEY_SIZE:
                raise ValueError("a retained subkey must be exactly 32 bytes")
        return ring

    def fingerprint_of(self, version: int) -> str:
        """Return :func:`fingerprint` of the KEK ``version``.

        Raises :class:`~flowcred.errors.KeyUnavailable` if that version is not in the ring.
        """
        return fingerprint(self._kek(version).key)

    def derive_key(self, version: int, info: bytes) -> bytes:
        """Derive a 32-byte subkey from KEK ``version`` with HKDF-SHA256 and the label ``info``.

        This lets other parts of flowcred (the audit chain's MAC key) hang off the KEK without a
        second secret to manage. ``info`` must be unique to its purpose and carry a version, for
        example ``b"flowcred audit chain v1"``.

        For a retired version, the subkey kept by :meth:`with_retained` is returned.

        Raises :class:`~flowcred.errors.KeyUnavailable` if that version is not in the ring.
        """
        if version not in self._keks:
            kept = self._derived.get((version, info))
            if kept is not None:
                return kept
        return _kdf.hkdf_sha256(self._kek(version).key, info)

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        """Wrap ``data_key`` with the primary KEK, bound to ``aad``.

        Raises ``ValueError`` if ``data_key`` is not 32 bytes.
        """
        if len(data_key) != _aead.KEY_SIZE:
            raise ValueError("a data key must be exactly 32 bytes")
        header = self._primary_header
        return _aead.encrypt_with(
            self._ciphers[self._primary], data_key, _DEK_AAD_PREFIX + header + aad, prefix=header
        )

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """Return the data key inside ``wrapped``, using the KEK version its header names.

        Raises ``DecryptionFailed(None, None)`` (no cause) on any failure.
        """
        try:
            return self._unwrap(wrapped, aad)
        except _AeadError:
            raise DecryptionFailed(None, None) from None

    def rewrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """Unwrap with any KEK in the ring and wrap again with the primary one.

        The data key, and so the secret's ciphertext, is unchanged; only the wrapping moves to the
        primary KEK (with a fresh nonce, even if it was already there).

        Raises ``DecryptionFailed(None, None)`` (no cause) on any failure.
        """
        return self.wrap(self.unwrap(wrapped, aad), aad)

    @staticmethod
    def kek_version_of(wrapped: bytes) -> int:
        """Return the KEK version named in the header of ``wrapped``, without decrypting anything.

        The header is authenticated only when the blob is unwrapped, so treat the answer as a
        hint (for picking rows to re-wrap), not as proof.

        Raises ``DecryptionFailed(None, None)`` if the blob is too short or of an unknown format.
        """
        if len(wrapped) < _HEADER_SIZE or wrapped[0] != _FORMAT:
            raise DecryptionFailed(None, None)
        return int.from_bytes(wrapped[1:_HEADER_SIZE], "big")

    def _unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        # The hot path of every uncached resolve: no exception translation here, the caller
        # decides which DecryptionFailed to raise.
        if len(wrapped) < _HEADER_SIZE or wrapped[0] != _FORMAT:
            raise _AeadError
        header = wrapped[:_HEADER_SIZE]
        aead = self._ciphers.get(int.from_bytes(header[1:], "big"))
        if aead is None:
            raise _AeadError
        return _aead.decrypt_with(
            aead, wrapped, _DEK_AAD_PREFIX + header + aad, offset=_HEADER_SIZE
        )

    def _kek(self, version: int) -> Kek:
        kek = self._keks.get(version)
        if kek is None:
            raise KeyUnavailable(
                f"KEK version {version} is not loaded (loaded versions: {sorted(self._keks)})"
            )
        return kek


def _header(version: int) -> bytes:
    return bytes((_FORMAT,)) + version.to_bytes(4, "big")


def build_ring(
    available_keys: Sequence[bytes],
    registered: Mapping[int, str],
    primary_version: int,
    *,
    source_description: str,
) -> KekRing:
    """Match the keys a key source provides to the KEK versions the database records.

    ``registered`` maps each KEK version to its stored :func:`fingerprint`. Keys are matched by
    fingerprint, so their order in the source does not matter. Registered versions without a key
    are left out of the ring (the caller checks whether any rows still need them); keys that match
    no registered version are ignored (see :func:`unregistered_keys`).

    Raises:
        KeyUnavailable: the source provides no key at all.
        KeyMismatch: keys exist, but none is the primary version's; flowcred must not start,
            because sealing new secrets with some other key would leave them unreadable.
        ValueError: ``primary_version`` is not in ``registered``, or a key is not 32 bytes.
    """
    expected = registered.get(primary_version)
    if expected is None:
        raise ValueError(f"primary KEK version {primary_version} is not registered")
    if not available_keys:
        raise KeyUnavailable(
            f"no key-encryption key found in {source_description}; this database was sealed "
            f"with key {_short(expected)}; restore the key file or set FLOWCRED_MASTER_KEY"
        )
    by_fingerprint = {fingerprint(key): key for key in available_keys}
    keks = [
        Kek(version, by_fingerprint[fp])
        for version, fp in registered.items()
        if fp in by_fingerprint
    ]
    if not any(kek.version == primary_version for kek in keks):
        found = ", ".join(_short(fp) for fp in by_fingerprint)
        what = "key" if len(by_fingerprint) == 1 else "keys"
        older = sorted(kek.version for kek in keks)
        hint = (
            f"; it holds only older version(s) {older}, not the current version {primary_version}"
            if older
            else ""
        )
        raise KeyMismatch(
            f"the {what} in {source_description} (fingerprint {found}) does not match this "
            f"database (expects {_short(expected)}){hint}; flowcred refuses to start rather "
            f"than risk unreadable secrets"
        )
    return KekRing(keks, primary_version)


def unregistered_keys(
    available_keys: Sequence[bytes], registered: Mapping[int, str]
) -> list[bytes]:
    """Return the available keys whose fingerprint no registered version has, in source order.

    ``flowcred keys rotate`` uses this to find the new key an operator prepended to
    FLOWCRED_MASTER_KEY before registering it as the next version.
    """
    known = set(registered.values())
    return [key for key in available_keys if fingerprint(key) not in known]
