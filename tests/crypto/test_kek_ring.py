"""KEK ring and build_ring: which keys flowcred will start with, and what it says when it won't."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from flowcred.crypto import Kek, KekRing, build_ring, fingerprint, generate_key, unregistered_keys
from flowcred.errors import ConfigurationError, DecryptionFailed, KeyMismatch, KeyUnavailable

AAD = b"context"
SOURCE = "key file /srv/flowcred/master.key"


def _secret_texts(key: bytes) -> list[str]:
    """Ways a key could leak into text."""
    return [base64.b64encode(key).decode(), key.hex(), repr(key)[2:-1][:24]]


def _assert_no_key(text: str, *keys: bytes) -> None:
    for key in keys:
        for leaked in _secret_texts(key):
            assert leaked not in text


class TestFingerprint:
    def test_is_stable_32_hex_chars_and_differs_per_key(self) -> None:
        key = generate_key()
        assert fingerprint(key) == fingerprint(key)
        assert len(fingerprint(key)) == 32
        int(fingerprint(key), 16)
        assert fingerprint(key) != fingerprint(generate_key())

    def test_known_answer(self) -> None:
        # HMAC-SHA256(key=32 zero bytes, b"flowcred kek fingerprint v1"), first 32 hex chars. The
        # database stores this value, so it must never change.
        import hashlib
        import hmac

        expected = hmac.new(bytes(32), b"flowcred kek fingerprint v1", hashlib.sha256).hexdigest()
        assert fingerprint(bytes(32)) == expected[:32]


class TestKek:
    def test_repr_shows_version_and_fingerprint_never_the_key(self) -> None:
        key = generate_key()
        kek = Kek(2, key)
        assert repr(kek) == f"Kek(version=2, fingerprint='{fingerprint(key)[:12]}…')"
        _assert_no_key(repr(kek), key)
        _assert_no_key(str(kek), key)
        _assert_no_key(repr([kek]), key)

    @pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
    def test_rejects_keys_that_are_not_32_bytes(self, length: int) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            Kek(1, b"\x00" * length)

    @pytest.mark.parametrize("version", [-1, 2**32])
    def test_rejects_versions_outside_uint32(self, version: int) -> None:
        with pytest.raises(ValueError, match="version"):
            Kek(version, generate_key())


class TestKekRing:
    def test_primary_must_be_in_the_ring(self) -> None:
        with pytest.raises(ValueError, match="primary KEK version 2"):
            KekRing([Kek(1, generate_key())], primary_version=2)

    def test_one_version_cannot_have_two_keys(self) -> None:
        with pytest.raises(ValueError, match="two different keys"):
            KekRing([Kek(1, generate_key()), Kek(1, generate_key())], primary_version=1)

    def test_properties_and_repr(self, rotated_ring: KekRing, old_key: bytes) -> None:
        assert rotated_ring.primary_version == 3
        assert rotated_ring.versions == frozenset({2, 3})
        assert rotated_ring.fingerprint_of(2) == fingerprint(old_key)
        assert repr(rotated_ring) == "KekRing(primary_version=3, versions=[2, 3])"

    def test_unknown_version_lookups_raise_key_unavailable(self, ring: KekRing) -> None:
        with pytest.raises(KeyUnavailable, match="version 9"):
            ring.fingerprint_of(9)
        with pytest.raises(KeyUnavailable, match="version 9"):
            ring.derive_key(9, b"flowcred test v1")

    def test_wrap_names_the_primary_version_and_unwraps(self, rotated_ring: KekRing) -> None:
        data_key = generate_key()
        wrapped = rotated_ring.wrap(data_key, AAD)
        assert KekRing.kek_version_of(wrapped) == 3
        assert rotated_ring.unwrap(wrapped, AAD) == data_key

    def test_wrap_rejects_a_data_key_of_the_wrong_size(self, ring: KekRing) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            ring.wrap(b"short", AAD)

    def test_unwrap_with_older_version_and_rewrap(
        self, old_key: bytes, rotated_ring: KekRing
    ) -> None:
        data_key = generate_key()
        old_wrapped = KekRing([Kek(2, old_key)], primary_version=2).wrap(data_key, AAD)
        assert rotated_ring.unwrap(old_wrapped, AAD) == data_key
        rewrapped = rotated_ring.rewrap(old_wrapped, AAD)
        assert KekRing.kek_version_of(rewrapped) == 3
        assert rotated_ring.unwrap(rewrapped, AAD) == data_key

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda w: w[:-1],
            lambda w: b"",
            lambda w: b"\x02" + w[1:],
            lambda w: w[:1] + (99).to_bytes(4, "big") + w[5:],
            lambda w: w[:-1] + bytes([w[-1] ^ 1]),
        ],
        ids=["truncated", "empty", "format", "kek-version-not-in-ring", "tag"],
    )
    def test_unwrap_and_rewrap_failures_are_opaque(
        self, ring: KekRing, mangle: Callable[[bytes], bytes]
    ) -> None:
        wrapped = mangle(ring.wrap(generate_key(), AAD))
        for call in (ring.unwrap, ring.rewrap):
            with pytest.raises(DecryptionFailed) as info:
                call(wrapped, AAD)
            assert (info.value.credential_id, info.value.version) == (None, None)
            assert info.value.__cause__ is None and info.value.__suppress_context__

    def test_unwrap_with_wrong_aad_fails(self, ring: KekRing) -> None:
        wrapped = ring.wrap(generate_key(), AAD)
        with pytest.raises(DecryptionFailed):
            ring.unwrap(wrapped, b"other context")

    @pytest.mark.parametrize("blob", [b"", b"\x01\x00\x00", b"\x02\x00\x00\x00\x01"])
    def test_kek_version_of_rejects_malformed_headers(self, blob: bytes) -> None:
        with pytest.raises(DecryptionFailed):
            KekRing.kek_version_of(blob)

    def test_derive_key_is_deterministic_and_separated_by_label_and_version(
        self, rotated_ring: KekRing, old_key: bytes
    ) -> None:
        audit = rotated_ring.derive_key(3, b"flowcred audit chain v1")
        assert len(audit) == 32
        assert audit == rotated_ring.derive_key(3, b"flowcred audit chain v1")
        assert audit != rotated_ring.derive_key(3, b"flowcred something else v1")
        assert audit != rotated_ring.derive_key(2, b"flowcred audit chain v1")
        assert old_key not in (audit, rotated_ring.derive_key(2, b"flowcred audit chain v1"))


class TestBuildRing:
    def test_no_keys_at_all_is_key_unavailable(self) -> None:
        expected = fingerprint(generate_key())
        with pytest.raises(KeyUnavailable) as info:
            build_ring([], {1: expected}, 1, source_description=SOURCE)
        message = str(info.value)
        assert SOURCE in message
        assert expected[:12] in message
        assert "restore the key file or set FLOWCRED_MASTER_KEY" in message
        assert isinstance(info.value, ConfigurationError)

    def test_wrong_key_is_key_mismatch_naming_fingerprints_not_keys(self) -> None:
        right, wrong = generate_key(), generate_key()
        with pytest.raises(KeyMismatch) as info:
            build_ring([wrong], {1: fingerprint(right)}, 1, source_description=SOURCE)
        message = str(info.value)
        assert SOURCE in message
        assert fingerprint(wrong)[:12] in message
        assert fingerprint(right)[:12] in message
        assert "refuses to start" in message
        _assert_no_key(message, right, wrong)

    def test_only_an_older_key_is_key_mismatch_with_a_hint(self) -> None:
        old, new = generate_key(), generate_key()
        registered = {1: fingerprint(old), 2: fingerprint(new)}
        with pytest.raises(KeyMismatch, match=r"only older version\(s\) \[1\]"):
            build_ring([old], registered, 2, source_description=SOURCE)

    def test_correct_key_builds_a_ring(self) -> None:
        key = generate_key()
        ring = build_ring([key], {1: fingerprint(key)}, 1, source_description=SOURCE)
        assert ring.primary_version == 1
        assert ring.versions == {1}
        assert ring.unwrap(ring.wrap(b"k" * 32, AAD), AAD) == b"k" * 32

    def test_rotated_database_with_keys_for_both_versions(self) -> None:
        old, new = generate_key(), generate_key()
        registered = {1: fingerprint(old), 2: fingerprint(new)}
        old_wrapped = KekRing([Kek(1, old)], 1).wrap(b"o" * 32, AAD)
        # Order in the source does not matter: keys are matched by fingerprint.
        for keys in ([new, old], [old, new]):
            ring = build_ring(keys, registered, 2, source_description=SOURCE)
            assert ring.primary_version == 2
            assert ring.versions == {1, 2}
            assert ring.unwrap(old_wrapped, AAD) == b"o" * 32

    def test_missing_older_version_is_left_out(self) -> None:
        old, new = generate_key(), generate_key()
        registered = {1: fingerprint(old), 2: fingerprint(new)}
        ring = build_ring([new], registered, 2, source_description=SOURCE)
        assert ring.versions == {2}
        assert set(registered) - ring.versions == {1}

    def test_unregistered_keys_are_ignored_and_reported(self) -> None:
        key, extra = generate_key(), generate_key()
        registered = {1: fingerprint(key)}
        ring = build_ring([extra, key], registered, 1, source_description=SOURCE)
        assert ring.versions == {1}
        assert unregistered_keys([extra, key], registered) == [extra]

    def test_primary_must_be_registered(self) -> None:
        with pytest.raises(ValueError, match="not registered"):
            build_ring([generate_key()], {}, 1, source_description=SOURCE)
