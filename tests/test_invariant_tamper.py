"""DESIGN §5, invariant 2, at the store level: an altered or swapped blob never decrypts.

Each secret version is sealed under associated data binding it to tenant + credential id +
version, and its data key is wrapped under the same binding. These tests write to the database
directly (SQLAlchemy Core on ``secret_versions`` and ``credentials``) the way an attacker with
write access to it could, and check on SQLite and PostgreSQL that every alteration gives
:class:`flowcred.DecryptionFailed` naming the credential and version, never a value:

* every byte of a stored ciphertext and of a stored wrapped key flipped, one at a time (on
  PostgreSQL every byte of the wrapped key and 64 seeded positions of the ciphertext, for speed),
  plus truncated and extended blobs;
* blobs swapped (both together, and each alone) between two credentials of one tenant, two
  versions of one credential, and credentials of two tenants; a row's ``tenant`` changed;
* the error's message, repr and formatted traceback hold no secret and no blob bytes.

Resolves go through a broker opened with ``cache_ttl_seconds=0``, so every call reads the
database; each case ends with the original row restored and resolving again (the control that
the failure came from the tampering and nothing else).
"""

from __future__ import annotations

import base64
import random
import secrets
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, update

import flowcred
from flowcred.broker import Broker, open_broker
from flowcred.settings import load_settings
from flowcred.store.tables import credentials, secret_versions

TENANT = "acme"
OTHER_TENANT = "globex"


@pytest.fixture
def uncached(broker: Broker, database_url: str, tmp_path: Path) -> Iterator[Broker]:
    """A second broker on the same store and key, with the resolve cache disabled."""
    settings = load_settings(home=tmp_path / "home", database_url=database_url, cache_ttl_seconds=0)
    other = open_broker(settings=settings)
    try:
        yield other
    finally:
        other.close()


@dataclass
class Stored:
    credential_id: int
    tenant: str
    version: int
    secret: str


def new_secret() -> str:
    return "sk_live_" + secrets.token_urlsafe(24)


def create(broker: Broker, name: str, tenant: str) -> Stored:
    value = new_secret()
    record = broker.credentials.create(
        name=name, type="api_key", tenant=tenant, secret={"api_key": value}
    )
    return Stored(record.id, tenant, 1, value)


def read_blobs(broker: Broker, cid: int, version: int) -> tuple[bytes, bytes]:
    with broker.engine.connect() as conn:
        row = conn.execute(
            select(secret_versions.c.ciphertext, secret_versions.c.wrapped_key).where(
                secret_versions.c.credential_id == cid, secret_versions.c.version == version
            )
        ).one()
    return bytes(row[0]), bytes(row[1])


def write_blobs(
    broker: Broker,
    cid: int,
    version: int,
    *,
    ciphertext: bytes | None = None,
    wrapped_key: bytes | None = None,
) -> None:
    values: dict[str, bytes] = {}
    if ciphertext is not None:
        values["ciphertext"] = ciphertext
    if wrapped_key is not None:
        values["wrapped_key"] = wrapped_key
    with broker.engine.begin() as conn:
        result = conn.execute(
            update(secret_versions)
            .where(secret_versions.c.credential_id == cid, secret_versions.c.version == version)
            .values(**values)
        )
        assert result.rowcount == 1


def set_tenant(broker: Broker, cid: int, tenant: str) -> None:
    with broker.engine.begin() as conn:
        conn.execute(update(credentials).where(credentials.c.id == cid).values(tenant=tenant))


def resolves_to(broker: Broker, target: Stored) -> None:
    """Control: the row as it is now opens to exactly its own secret."""
    provider = broker.provider(tenant=target.tenant)
    assert provider.get_password(target.credential_id) == target.secret
    material = provider.resolve(target.credential_id)
    assert material.version == target.version
    assert material.reveal_headers() == {"X-API-Key": target.secret}


def blob_fragments(blob: bytes) -> list[str]:
    """Text forms in which (any 6-byte window of) a blob could show up in a message."""
    forms = [base64.b64encode(blob).decode(), repr(blob)[2:-1]]
    for i in range(max(len(blob) - 5, 1)):
        window = blob[i : i + 6]
        forms += [window.hex(), window.hex().upper()]
    # Very short blobs (a truncated one) have forms that could match anything; skip those.
    return [form for form in forms if len(form) >= 8]


def assert_opaque(
    exc: flowcred.DecryptionFailed,
    target: Stored,
    *,
    secrets_: list[str],
    blobs: list[bytes],
) -> None:
    """The error names the credential and version and nothing else of value."""
    assert exc.credential_id == target.credential_id
    assert exc.version == target.version
    message = str(exc)
    assert f"credential {target.credential_id}" in message
    assert f"version {target.version}" in message
    # No cause is attached, so a traceback shows no inner crypto error (or its locals' values).
    assert exc.__cause__ is None and exc.__suppress_context__
    texts = [message, repr(exc), repr(exc.args), repr(vars(exc))]
    texts.append("".join(traceback.format_exception(exc)))
    for text_ in texts:
        for value in secrets_:
            assert value not in text_, "a secret value is in the DecryptionFailed text"
        for blob in blobs:
            for fragment in blob_fragments(blob):
                assert fragment not in text_, "blob bytes are in the DecryptionFailed text"


def assert_refused(
    broker: Broker, target: Stored, *, secrets_: list[str], blobs: list[bytes]
) -> None:
    """Both resolve paths raise DecryptionFailed for ``target`` and return nothing."""
    provider = broker.provider(tenant=target.tenant)
    with pytest.raises(flowcred.DecryptionFailed) as info:
        value = provider.get_password(target.credential_id)
        pytest.fail(f"get_password returned a value of length {len(value)} for a tampered row")
    assert_opaque(info.value, target, secrets_=secrets_, blobs=blobs)
    with pytest.raises(flowcred.DecryptionFailed) as info2:
        provider.resolve(target.credential_id)
    assert_opaque(info2.value, target, secrets_=secrets_, blobs=blobs)


def flipped(blob: bytes, position: int) -> bytes:
    """``blob`` with one bit of byte ``position`` flipped (a different bit for each position)."""
    out = bytearray(blob)
    out[position] ^= 1 << (position % 8)
    return bytes(out)


def positions(blob: bytes, *, every: bool, seed: int) -> list[int]:
    if every or len(blob) <= 64:
        return list(range(len(blob)))
    return sorted(random.Random(seed).sample(range(len(blob)), 64))


# --- (a) flipped bytes ------------------------------------------------------------------------


def test_every_flipped_byte_is_refused(broker: Broker, uncached: Broker) -> None:
    target = create(broker, "flip target", TENANT)
    resolves_to(uncached, target)
    ciphertext, wrapped_key = read_blobs(broker, target.credential_id, target.version)
    on_sqlite = broker.engine.dialect.name == "sqlite"
    everything = [target.secret]

    tried = 0
    for pos in positions(ciphertext, every=on_sqlite, seed=20240501):
        bad = flipped(ciphertext, pos)
        write_blobs(broker, target.credential_id, target.version, ciphertext=bad)
        assert_refused(uncached, target, secrets_=everything, blobs=[bad, wrapped_key])
        tried += 1
    for pos in positions(wrapped_key, every=True, seed=0):
        bad = flipped(wrapped_key, pos)
        write_blobs(
            broker, target.credential_id, target.version, ciphertext=ciphertext, wrapped_key=bad
        )
        assert_refused(uncached, target, secrets_=everything, blobs=[ciphertext, bad])
        tried += 1
    # Truncated, extended and emptied blobs.
    for ct, wk in [
        (ciphertext[:-1], wrapped_key),
        (ciphertext + b"\x00", wrapped_key),
        (ciphertext, wrapped_key[:-1]),
        (ciphertext, wrapped_key + b"\x00"),
        (b"", wrapped_key),
        (ciphertext, b""),
        (ciphertext[:1], wrapped_key[:5]),
    ]:
        write_blobs(broker, target.credential_id, target.version, ciphertext=ct, wrapped_key=wk)
        assert_refused(uncached, target, secrets_=everything, blobs=[ct, wk])
        tried += 1

    assert tried >= (len(ciphertext) if on_sqlite else 64) + len(wrapped_key) + 7
    write_blobs(
        broker, target.credential_id, target.version, ciphertext=ciphertext, wrapped_key=wrapped_key
    )
    resolves_to(uncached, target)


def test_key_rotation_refuses_a_tampered_wrapped_key(broker: Broker, uncached: Broker) -> None:
    """Re-wrapping never launders a tampered data key into a valid-looking one."""
    good = create(broker, "good", TENANT)
    target = create(broker, "tampered", TENANT)
    ciphertext, wrapped_key = read_blobs(broker, target.credential_id, 1)
    write_blobs(broker, target.credential_id, 1, wrapped_key=flipped(wrapped_key, 20))
    with pytest.raises(flowcred.DecryptionFailed) as info:
        uncached.rotate_keys()
    assert_opaque(info.value, target, secrets_=[good.secret, target.secret], blobs=[wrapped_key])
    assert_refused(uncached, target, secrets_=[target.secret], blobs=[ciphertext, wrapped_key])
    resolves_to(uncached, good)


# --- (b) swapped blobs and tenants ------------------------------------------------------------


@dataclass
class Pair:
    name: str
    target: Stored
    source: Stored


def make_pairs(broker: Broker) -> list[Pair]:
    a = create(broker, "a", TENANT)
    b = create(broker, "b", TENANT)
    c = create(broker, "c", OTHER_TENANT)
    a1 = Stored(a.credential_id, a.tenant, 1, a.secret)
    a2_value = new_secret()
    record = broker.credentials.rotate(a.credential_id, secret={"api_key": a2_value})
    a2 = Stored(a.credential_id, a.tenant, record.current_version, a2_value)
    assert a2.version == 2
    return [
        Pair("same tenant, other credential", a2, b),
        Pair("same tenant, other credential (reverse)", b, a2),
        Pair("same credential, older version", a2, a1),
        Pair("other tenant", a2, c),
        Pair("other tenant (reverse)", c, b),
    ]


@pytest.mark.parametrize("columns", ["both", "ciphertext", "wrapped_key"])
def test_swapped_blobs_are_refused(broker: Broker, uncached: Broker, columns: str) -> None:
    pairs = make_pairs(broker)
    for pair in pairs:
        target, source = pair.target, pair.source
        resolves_to(uncached, target)
        original = read_blobs(broker, target.credential_id, target.version)
        donor = read_blobs(broker, source.credential_id, source.version)
        ct = donor[0] if columns in ("both", "ciphertext") else None
        wk = donor[1] if columns in ("both", "wrapped_key") else None
        write_blobs(broker, target.credential_id, target.version, ciphertext=ct, wrapped_key=wk)
        # The rollback case needs the version row to be current; a2 is current after make_pairs.
        assert_refused(
            uncached,
            target,
            secrets_=[source.secret, target.secret],
            blobs=[*original, *donor],
        )
        write_blobs(
            broker,
            target.credential_id,
            target.version,
            ciphertext=original[0],
            wrapped_key=original[1],
        )
        resolves_to(uncached, target)
        # The donor was never touched and still opens to its own secret.
        if source.version == 1 and source.credential_id == target.credential_id:
            continue  # an older version is not current, so it is not resolvable directly
        resolves_to(uncached, source)


def test_a_row_moved_to_another_tenant_is_refused(broker: Broker, uncached: Broker) -> None:
    moved = create(broker, "moved", TENANT)
    resident = create(broker, "resident", OTHER_TENANT)
    resolves_to(uncached, moved)
    set_tenant(broker, moved.credential_id, OTHER_TENANT)
    as_other = Stored(moved.credential_id, OTHER_TENANT, moved.version, moved.secret)
    blobs = list(read_blobs(broker, moved.credential_id, moved.version))
    assert_refused(uncached, as_other, secrets_=[moved.secret, resident.secret], blobs=blobs)
    # Its own tenant no longer sees it at all (the row says it belongs elsewhere).
    with pytest.raises(flowcred.CredentialNotFound) as info:
        uncached.provider(tenant=TENANT).get_password(moved.credential_id)
    assert moved.secret not in str(info.value)
    resolves_to(uncached, resident)
    set_tenant(broker, moved.credential_id, TENANT)
    resolves_to(uncached, moved)


def test_rollback_onto_a_swapped_version_is_refused(broker: Broker, uncached: Broker) -> None:
    """A version row overwritten with another version's blobs stays unreadable after rollback."""
    a = create(broker, "rolled", TENANT)
    a2_value = new_secret()
    broker.credentials.rotate(a.credential_id, secret={"api_key": a2_value})
    v2_blobs = read_blobs(broker, a.credential_id, 2)
    v1_blobs = read_blobs(broker, a.credential_id, 1)
    write_blobs(broker, a.credential_id, 1, ciphertext=v2_blobs[0], wrapped_key=v2_blobs[1])
    # Rollback re-seals the old secret as a new version (issue 8, item 16), so it must open the
    # swapped row first: that fails, opaquely, and nothing changes.
    with pytest.raises(flowcred.DecryptionFailed) as info:
        broker.credentials.rollback(a.credential_id, 1)
    assert_opaque(info.value, a, secrets_=[a.secret, a2_value], blobs=[*v1_blobs, *v2_blobs])
    assert broker.credentials.get(a.credential_id).current_version == 2
    write_blobs(broker, a.credential_id, 1, ciphertext=v1_blobs[0], wrapped_key=v1_blobs[1])
    broker.credentials.rollback(a.credential_id, 1)
    resolves_to(uncached, Stored(a.credential_id, a.tenant, 3, a.secret))
