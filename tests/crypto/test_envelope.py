"""Envelope encryption: what the store sees when it seals and opens secrets."""

from __future__ import annotations

import base64
import itertools

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flowcred.crypto import (
    FORMAT_VERSION,
    Kek,
    KekRing,
    SealedSecret,
    generate_key,
    open_sealed,
    rewrap_key,
    seal,
    secret_aad,
)
from flowcred.errors import DecryptionFailed

PLAINTEXT = b'{"api_key": "sk_live_canary_5b1f0c"}'
AAD = secret_aad("acme", 42, 7)


def _expect_failure(
    ciphertext: bytes, wrapped_key: bytes, ring: KekRing, aad: bytes = AAD
) -> DecryptionFailed:
    with pytest.raises(DecryptionFailed) as info:
        open_sealed(ciphertext, wrapped_key, ring=ring, aad=aad, credential_id=42, version=7)
    exc = info.value
    assert (exc.credential_id, exc.version) == (42, 7)
    # Opaque on purpose: no chained inner exception for a traceback to print.
    assert exc.__cause__ is None
    assert exc.__suppress_context__
    return exc


def _flips(blob: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    for position, mask in itertools.product(range(len(blob)), (0x01, 0xFF)):
        changed = bytearray(blob)
        changed[position] ^= mask
        out.append((position, mask, bytes(changed)))
    return out


@pytest.mark.parametrize("plaintext", [b"", b"x", PLAINTEXT, bytes(range(256)) * 64])
def test_round_trip(ring: KekRing, plaintext: bytes) -> None:
    sealed = seal(plaintext, ring=ring, aad=AAD)
    assert open_sealed(sealed.ciphertext, sealed.wrapped_key, ring=ring, aad=AAD) == plaintext


def test_layout_is_format_1(ring: KekRing) -> None:
    sealed = seal(PLAINTEXT, ring=ring, aad=AAD)
    assert FORMAT_VERSION == 1
    assert sealed.ciphertext[0] == 1
    assert len(sealed.ciphertext) == 1 + 12 + len(PLAINTEXT) + 16
    assert sealed.wrapped_key[:5] == b"\x01\x00\x00\x00\x01"
    assert len(sealed.wrapped_key) == 5 + 12 + 32 + 16
    assert sealed.kek_version == 1


def test_opens_a_blob_built_by_hand_from_the_documented_format() -> None:
    # This pins the on-disk format: a reimplementation from the docstrings must interoperate.
    kek, data_key = bytes(range(32)), bytes(range(32, 64))
    header = b"\x01" + (5).to_bytes(4, "big")
    nonce_k, nonce_d = b"\x11" * 12, b"\x22" * 12
    wrapped = (
        header
        + nonce_k
        + AESGCM(kek).encrypt(nonce_k, data_key, b"flowcred-dek\x00" + header + AAD)
    )
    ciphertext = (
        b"\x01"
        + nonce_d
        + AESGCM(data_key).encrypt(nonce_d, PLAINTEXT, b"flowcred-secret\x00" + AAD)
    )
    ring = KekRing([Kek(5, kek)], primary_version=5)
    assert open_sealed(ciphertext, wrapped, ring=ring, aad=AAD) == PLAINTEXT


def test_each_seal_uses_a_fresh_data_key_and_nonce(ring: KekRing) -> None:
    first, second = (seal(PLAINTEXT, ring=ring, aad=AAD) for _ in range(2))
    assert first.ciphertext != second.ciphertext
    assert first.wrapped_key != second.wrapped_key


def test_every_flipped_byte_of_the_ciphertext_is_rejected(ring: KekRing) -> None:
    sealed = seal(PLAINTEXT, ring=ring, aad=AAD)
    for _position, _mask, changed in _flips(sealed.ciphertext):
        _expect_failure(changed, sealed.wrapped_key, ring)


def test_every_flipped_byte_of_the_wrapped_key_is_rejected(rotated_ring: KekRing) -> None:
    # With versions 2 and 3 loaded, flipping the low bit of the version field names the other,
    # existing KEK: the header is authenticated, so that must fail too.
    sealed = seal(PLAINTEXT, ring=rotated_ring, aad=AAD)
    for _position, _mask, changed in _flips(sealed.wrapped_key):
        _expect_failure(sealed.ciphertext, changed, rotated_ring)


def test_truncation_at_every_length_is_rejected(ring: KekRing) -> None:
    sealed = seal(PLAINTEXT, ring=ring, aad=AAD)
    for length in range(len(sealed.ciphertext)):
        _expect_failure(sealed.ciphertext[:length], sealed.wrapped_key, ring)
    for length in range(len(sealed.wrapped_key)):
        _expect_failure(sealed.ciphertext, sealed.wrapped_key[:length], ring)


def test_appended_bytes_are_rejected(ring: KekRing) -> None:
    sealed = seal(PLAINTEXT, ring=ring, aad=AAD)
    _expect_failure(sealed.ciphertext + b"\x00", sealed.wrapped_key, ring)
    _expect_failure(sealed.ciphertext, sealed.wrapped_key + b"\x00", ring)


@pytest.mark.parametrize("format_byte", [0x00, 0x02, 0x80, 0xFF])
def test_unknown_format_byte_is_rejected(ring: KekRing, format_byte: int) -> None:
    sealed = seal(PLAINTEXT, ring=ring, aad=AAD)
    _expect_failure(bytes([format_byte]) + sealed.ciphertext[1:], sealed.wrapped_key, ring)
    _expect_failure(sealed.ciphertext, bytes([format_byte]) + sealed.wrapped_key[1:], ring)


@pytest.mark.parametrize(
    "wrong_aad",
    [secret_aad("acme2", 42, 7), secret_aad("acme", 43, 7), secret_aad("acme", 42, 8), b""],
    ids=["tenant", "credential_id", "version", "empty"],
)
def test_wrong_context_is_rejected(ring: KekRing, wrong_aad: bytes) -> None:
    sealed = seal(PLAINTEXT, ring=ring, aad=AAD)
    _expect_failure(sealed.ciphertext, sealed.wrapped_key, ring, aad=wrong_aad)


def test_swapping_parts_between_secrets_never_yields_the_other_plaintext(ring: KekRing) -> None:
    other_aad = secret_aad("acme", 43, 1)
    mine = seal(PLAINTEXT, ring=ring, aad=AAD)
    theirs = seal(b"someone else's secret", ring=ring, aad=other_aad)
    # A whole row copied onto another row: both blobs swapped, opened in the new row's context.
    _expect_failure(theirs.ciphertext, theirs.wrapped_key, ring, aad=AAD)
    # Only one of the two parts swapped, in either row's context.
    for aad in (AAD, other_aad):
        _expect_failure(mine.ciphertext, theirs.wrapped_key, ring, aad=aad)
        _expect_failure(theirs.ciphertext, mine.wrapped_key, ring, aad=aad)


def test_swapping_wrapped_keys_between_versions_in_the_same_context_fails(ring: KekRing) -> None:
    # Two versions sealed with the same context (a bug elsewhere) still keep their data keys apart.
    first, second = (seal(PLAINTEXT, ring=ring, aad=AAD) for _ in range(2))
    _expect_failure(first.ciphertext, second.wrapped_key, ring)


def test_kek_not_in_ring_is_rejected(ring: KekRing, new_key: bytes) -> None:
    sealed = seal(PLAINTEXT, ring=ring, aad=AAD)
    other_version = KekRing([Kek(2, new_key)], primary_version=2)
    _expect_failure(sealed.ciphertext, sealed.wrapped_key, other_version)
    same_version_other_key = KekRing([Kek(1, generate_key())], primary_version=1)
    _expect_failure(sealed.ciphertext, sealed.wrapped_key, same_version_other_key)


def test_ring_with_two_versions_opens_both(old_key: bytes, rotated_ring: KekRing) -> None:
    old_ring = KekRing([Kek(2, old_key)], primary_version=2)
    by_old = seal(b"old", ring=old_ring, aad=AAD)
    by_new = seal(b"new", ring=rotated_ring, aad=AAD)
    assert (by_old.kek_version, by_new.kek_version) == (2, 3)
    assert open_sealed(by_old.ciphertext, by_old.wrapped_key, ring=rotated_ring, aad=AAD) == b"old"
    assert open_sealed(by_new.ciphertext, by_new.wrapped_key, ring=rotated_ring, aad=AAD) == b"new"


def test_rewrap_moves_the_key_to_the_primary_kek_and_leaves_the_ciphertext(
    old_key: bytes, new_key: bytes, rotated_ring: KekRing
) -> None:
    old_ring = KekRing([Kek(2, old_key)], primary_version=2)
    sealed = seal(PLAINTEXT, ring=old_ring, aad=AAD)
    rewrapped = rewrap_key(sealed.wrapped_key, ring=rotated_ring, aad=AAD)
    assert rewrapped != sealed.wrapped_key
    assert KekRing.kek_version_of(sealed.wrapped_key) == 2
    assert KekRing.kek_version_of(rewrapped) == 3
    # Once every row is re-wrapped, the old KEK can go: the new one alone opens the secret.
    new_only = KekRing([Kek(3, new_key)], primary_version=3)
    assert open_sealed(sealed.ciphertext, rewrapped, ring=new_only, aad=AAD) == PLAINTEXT


def test_rewrap_failure_carries_the_ids(ring: KekRing) -> None:
    sealed = seal(PLAINTEXT, ring=ring, aad=AAD)
    with pytest.raises(DecryptionFailed) as info:
        rewrap_key(
            sealed.wrapped_key,
            ring=ring,
            aad=secret_aad("acme", 42, 8),
            credential_id=42,
            version=8,
        )
    assert (info.value.credential_id, info.value.version) == (42, 8)
    assert info.value.__cause__ is None and info.value.__suppress_context__


TRICKY_TENANTS = [
    "",
    "a",
    "a,b",
    'a","b',
    "a|b",
    "a|42",
    "a\x00",
    "a\x00\x00\x00\x00",
    '"',
    "\\",
    "[",
    "acme]",
    "ünïcödé",
    "a" * 300,
]


def test_secret_aad_has_no_collisions() -> None:
    contexts = [
        (tenant, credential_id, version)
        for tenant in TRICKY_TENANTS
        for credential_id in (0, 1, 2, 42, 420, 2**40, -1)
        for version in (0, 1, 2, 7, 42)
    ]
    encodings = {secret_aad(*context) for context in contexts}
    assert len(encodings) == len(contexts)


def test_secret_aad_is_stable() -> None:
    assert secret_aad("acme", 42, 7) == secret_aad("acme", 42, 7)
    assert secret_aad("acme", 1, 2) != secret_aad("acme", 2, 1)


def test_sealed_secret_repr_shows_sizes_not_bytes(ring: KekRing) -> None:
    sealed = seal(PLAINTEXT, ring=ring, aad=AAD)
    for text in (repr(sealed), str(sealed)):
        assert "bytes>" in text
        assert "kek_version=1" in text
        for blob in (sealed.ciphertext, sealed.wrapped_key):
            assert repr(blob)[2:20] not in text
            assert base64.b64encode(blob).decode() not in text
            assert blob.hex()[:16] not in text
    assert isinstance(sealed, SealedSecret)


def test_failure_message_reveals_nothing(ring: KekRing, new_key: bytes) -> None:
    sealed = seal(PLAINTEXT, ring=ring, aad=AAD)
    exc = _expect_failure(sealed.ciphertext, sealed.wrapped_key[:-1], ring)
    message = str(exc)
    assert message == "secret of credential 42 version 7 failed its integrity check"
    assert base64.b64encode(new_key).decode() not in message
    assert b"sk_live" not in message.encode()
