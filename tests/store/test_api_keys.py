"""API keys (DESIGN §4): random, shown once, stored only as hashes; one answer for every bad key."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from flowcred.clock import ManualClock
from flowcred.errors import AccessDenied, ConfigurationError, InvalidCredential
from flowcred.store import migrate
from flowcred.store.api_keys import (
    ADMIN_KEY_FILE,
    DEFAULT_EXPIRY,
    INVALID_KEY_MESSAGE,
    ROLES,
    ApiKey,
    ApiKeyStore,
    bootstrap_from_env,
    ensure_admin_key,
    generate_raw_key,
    hash_key,
    key_id_of,
    load_bootstrap_keys,
)
from flowcred.store.engine import make_engine

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = 86400


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def store(engine: Engine, clock: ManualClock) -> ApiKeyStore:
    return ApiKeyStore(engine, clock)


def fresh(engine: Engine, clock: ManualClock, **kw: object) -> ApiKeyStore:
    """Another process's view: same database, its own cache."""
    return ApiKeyStore(engine, clock, **kw)  # type: ignore[arg-type]


def denied(store: ApiKeyStore, raw: str) -> str:
    with pytest.raises(AccessDenied) as info:
        store.authenticate(raw)
    return str(info.value)


def bootstrap_entry(raw: str, **fields: object) -> dict[str, object]:
    key_id = key_id_of(raw)
    assert key_id is not None
    entry: dict[str, object] = {"id": key_id, "sha256": hash_key(raw), "role": "worker"}
    entry.update(fields)
    return entry


# -- format ----------------------------------------------------------------------------------------


def test_raw_key_format_is_prefix_id_and_256_bit_secret() -> None:
    key_id, raw = generate_raw_key()
    assert raw.startswith(f"fck_{key_id}_")
    assert len(key_id) == 12 and key_id == key_id.lower() and key_id.isalnum()
    secret = raw[len(f"fck_{key_id}_") :]
    assert len(secret) == 43
    assert key_id_of(raw) == key_id
    assert generate_raw_key()[1] != raw


# -- create / list / get / revoke ------------------------------------------------------------------


def test_create_list_get_revoke(store: ApiKeyStore, clock: ManualClock) -> None:
    admin, raw_admin = store.create(role="admin", name="ops")
    clock.advance(1)  # lists are ordered by creation time
    viewer, _ = store.create(role="viewer", tenant="acme", name="dash", expires_at=None)
    assert admin.tenant == "*" and admin.source == "database"
    assert admin.expires_at == START + timedelta(days=365)  # FlowGenX's default
    assert viewer.expires_at is None
    assert raw_admin.startswith(f"fck_{admin.id}_")

    assert [k.id for k in store.list()] == [admin.id, viewer.id]
    assert [k.id for k in store.list(tenant="acme")] == [viewer.id]
    assert [k.id for k in store.list(tenant="*")] == [admin.id]
    assert store.get(viewer.id) == viewer
    assert store.get("nosuchkey000") is None

    clock.advance(59)
    revoked = store.revoke(viewer.id)
    assert revoked.revoked_at == START + timedelta(seconds=60)
    assert revoked.state(clock.now()) == "revoked"
    clock.advance(60)
    assert store.revoke(viewer.id).revoked_at == revoked.revoked_at  # idempotent
    assert [k.id for k in store.list(include_revoked=False)] == [admin.id]
    assert len(store.list()) == 2


def test_to_dict_is_camel_case_without_secrets(store: ApiKeyStore, clock: ManualClock) -> None:
    key, raw = store.create(role="developer", tenant="acme", name="ci")
    data = key.to_dict(clock.now())
    assert set(data) == {
        "id",
        "name",
        "role",
        "tenant",
        "createdAt",
        "expiresAt",
        "revokedAt",
        "lastUsedAt",
        "state",
        "source",
    }
    assert data["state"] == "active" and data["source"] == "database"
    blob = json.dumps(data) + repr(key)
    assert raw not in blob and hash_key(raw) not in blob


def test_create_validates_every_field(store: ApiKeyStore) -> None:
    with pytest.raises(InvalidCredential) as info:
        store.create(role="root", tenant="no spaces", name="x" * 300)  # type: ignore[arg-type]
    assert {p.field for p in info.value.problems} == {"role", "tenant", "name"}
    for tenant in ("", "-lead", "a/b", "é", "x" * 129):
        with pytest.raises(InvalidCredential, match="tenant"):
            store.create(role="viewer", tenant=tenant)
    with pytest.raises(InvalidCredential, match="expires_at"):
        store.create(role="viewer", expires_at=START - timedelta(seconds=1))
    with pytest.raises(InvalidCredential, match="expires_at"):
        store.create(role="viewer", expires_at=datetime(2030, 1, 1))  # naive
    assert store.list() == []
    for role in ROLES:
        assert store.create(role=role, tenant="t.1_a-b")[0].role == role


def test_revoke_unknown_id(store: ApiKeyStore) -> None:
    with pytest.raises(InvalidCredential) as info:
        store.revoke("abcdefabcdef")
    assert [(p.field, p.message) for p in info.value.problems] == [("id", "unknown API key")]


# -- storage -------------------------------------------------------------------------------------


def test_raw_key_is_never_stored(store: ApiKeyStore, engine: Engine, database_url: str) -> None:
    keys = [store.create(role="admin")[1], store.create(role="worker", tenant="acme")[1]]
    _, raw_rotated = store.rotate(key_id_of(keys[0]) or "")
    keys.append(raw_rotated)
    for raw in keys:
        store.authenticate(raw)  # caches and writes last_used_at: nothing of the key either
    secrets_ = [(raw, raw[len("fck_") + 12 + 1 :]) for raw in keys]  # (key, its secret part)

    if engine.dialect.name == "sqlite":
        engine.dispose()  # release the file; the WAL stays and is scanned too
        db = Path(database_url.removeprefix("sqlite:///"))
        blob = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
        for raw, secret in secrets_:
            assert blob.count(raw.encode()) == 0
            assert blob.count(secret.encode()) == 0
            assert blob.count(hash_key(raw).encode()) >= 1
    else:
        with engine.connect() as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ]
            dump = "\n".join(
                str(row[0])
                for table in tables
                for row in conn.execute(text(f'SELECT t::text FROM "{table}" t'))
            )
        for raw, secret in secrets_:
            assert raw not in dump and secret not in dump
            assert hash_key(raw) in dump


# -- authentication --------------------------------------------------------------------------------


def test_authenticate_valid_key(store: ApiKeyStore, engine: Engine, clock: ManualClock) -> None:
    key, raw = store.create(role="worker", tenant="acme", name="runner")
    found = store.authenticate(raw)
    assert (found.id, found.role, found.tenant, found.name) == (key.id, "worker", "acme", "runner")
    assert fresh(engine, clock).authenticate(raw).id == key.id  # from the database, not a cache


def test_every_bad_key_gets_the_same_answer(store: ApiKeyStore, clock: ManualClock) -> None:
    key, raw = store.create(role="admin")
    revoked, raw_revoked = store.create(role="admin")
    store.revoke(revoked.id)
    _, raw_expired = store.create(role="admin", expires_at=START + timedelta(hours=1))
    clock.advance(3600)
    secret = raw.split("_", 2)[2]
    other_secret = "A" * 43 if secret != "A" * 43 else "B" * 43
    bad = [
        f"fck_{key.id}_{other_secret}",  # wrong secret for a real id
        f"fck_zzzzzzzzzzzz_{secret}",  # unknown id
        "",
        "fck_",
        "fck__",
        raw + "x",
        raw[:-1],
        raw.upper(),
        " " + raw,
        "x" * 100_000,
        "fck_" + "a" * 12 + "_" + "é" * 43,
        "🔑" * 20,
        "fck_\udcff_" + secret,  # lone surrogate
        raw_revoked,
        raw_expired,
    ]
    messages = {denied(store, candidate) for candidate in bad}
    assert messages == {INVALID_KEY_MESSAGE}
    assert store.authenticate(raw).id == key.id


def test_revoke_takes_effect_at_once_in_this_process(store: ApiKeyStore) -> None:
    key, raw = store.create(role="admin")
    store.authenticate(raw)  # now cached
    store.revoke(key.id)
    assert denied(store, raw) == INVALID_KEY_MESSAGE


def test_revoke_elsewhere_is_seen_after_the_cache_ttl(
    store: ApiKeyStore, engine: Engine, clock: ManualClock
) -> None:
    key, raw = store.create(role="admin")
    store.authenticate(raw)
    fresh(engine, clock).revoke(key.id)  # another process
    clock.advance(6)  # past the 5 s cache
    assert denied(store, raw) == INVALID_KEY_MESSAGE


def test_cached_key_still_expires(store: ApiKeyStore, clock: ManualClock) -> None:
    _, raw = store.create(role="admin", expires_at=START + timedelta(seconds=3))
    store.authenticate(raw)
    clock.advance(3)
    assert denied(store, raw) == INVALID_KEY_MESSAGE


def test_last_used_is_written_at_most_once_a_minute(
    store: ApiKeyStore, engine: Engine, clock: ManualClock
) -> None:
    key, raw = store.create(role="admin")
    assert store.get(key.id).last_used_at is None  # type: ignore[union-attr]
    store.authenticate(raw)
    first = store.get(key.id).last_used_at  # type: ignore[union-attr]
    assert first == START
    clock.advance(30)
    store.authenticate(raw)
    fresh(engine, clock).authenticate(raw)  # another process within the minute: no write either
    assert store.get(key.id).last_used_at == first  # type: ignore[union-attr]
    clock.advance(31)
    store.authenticate(raw)
    assert store.get(key.id).last_used_at == START + timedelta(seconds=61)  # type: ignore[union-attr]


# -- states and rotation ---------------------------------------------------------------------------


def test_states(store: ApiKeyStore, clock: ManualClock) -> None:
    key, _ = store.create(role="viewer", expires_at=START + timedelta(days=10))
    never, _ = store.create(role="viewer", expires_at=None)
    assert key.state(clock.now()) == "active"
    clock.advance(3 * DAY)  # exactly 7 days left
    assert store.get(key.id).state(clock.now()) == "expiring_soon"  # type: ignore[union-attr]
    clock.advance(7 * DAY)
    assert store.get(key.id).state(clock.now()) == "expired"  # type: ignore[union-attr]
    assert store.get(never.id).state(clock.now()) == "active"  # type: ignore[union-attr]
    assert store.revoke(never.id).state(clock.now()) == "revoked"
    states = {k.id: k.to_dict(clock.now())["state"] for k in store.list()}
    assert states == {key.id: "expired", never.id: "revoked"}


def test_rotation_grace_both_keys_work_until_the_old_expires(
    store: ApiKeyStore, engine: Engine, clock: ManualClock
) -> None:
    old, raw_old = store.create(role="developer", tenant="acme", name="ci")
    store.authenticate(raw_old)
    clock.advance(DAY)
    new, raw_new = store.rotate(old.id, grace_seconds=2 * DAY)
    assert (new.role, new.tenant, new.name) == ("developer", "acme", "ci")
    assert new.id != old.id and raw_new != raw_old
    assert new.expires_at == clock.now() + timedelta(days=365)
    old_now = store.get(old.id)
    assert old_now is not None
    assert old_now.expires_at == clock.now() + timedelta(days=2)
    assert old_now.state(clock.now()) == "expiring_soon"

    other = fresh(engine, clock)
    for s in (store, other):
        assert s.authenticate(raw_old).id == old.id
        assert s.authenticate(raw_new).id == new.id
    clock.advance(2 * DAY - 1)
    assert store.authenticate(raw_old).id == old.id
    clock.advance(1)
    for s in (store, other):
        assert denied(s, raw_old) == INVALID_KEY_MESSAGE
        assert s.authenticate(raw_new).id == new.id


def test_rotation_never_extends_and_refuses_dead_keys(
    store: ApiKeyStore, clock: ManualClock
) -> None:
    short, _ = store.create(role="viewer", expires_at=START + timedelta(hours=1))
    store.rotate(short.id)  # default 7-day grace would outlive the key: keep its hour
    assert store.get(short.id).expires_at == START + timedelta(hours=1)  # type: ignore[union-attr]
    gone, _ = store.create(role="viewer")
    store.revoke(gone.id)
    with pytest.raises(InvalidCredential, match="revoked"):
        store.rotate(gone.id)
    clock.advance(3600)
    with pytest.raises(InvalidCredential, match="expired"):
        store.rotate(short.id)
    with pytest.raises(InvalidCredential, match="unknown API key"):
        store.rotate("abcdefabcdef")
    key, raw = store.create(role="viewer")
    store.rotate(key.id, grace_seconds=0)
    assert denied(store, raw) == INVALID_KEY_MESSAGE


def test_default_expiry_sentinel_is_explicit(store: ApiKeyStore) -> None:
    a, _ = store.create(role="viewer", expires_at=DEFAULT_EXPIRY)
    b, _ = store.create(role="viewer")
    assert a.expires_at == b.expires_at == START + timedelta(days=365)


# -- bootstrap keys ------------------------------------------------------------------------------


def test_bootstrap_keys_from_env_authenticate_and_cannot_be_revoked(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, clock: ManualClock
) -> None:
    _, raw = generate_raw_key()
    entry = bootstrap_entry(raw, role="worker", tenant="acme", name="deployed runner")
    monkeypatch.setenv("FLOWCRED_API_KEYS", json.dumps([entry]))
    store = fresh(engine, clock, bootstrap=bootstrap_from_env(now=clock.now()))
    found = store.authenticate(raw)
    assert (found.id, found.role, found.tenant, found.source) == (
        entry["id"],
        "worker",
        "acme",
        "bootstrap",
    )
    listed = store.list()
    assert [(k.id, k.source) for k in listed] == [(entry["id"], "bootstrap")]
    assert listed[0].last_used_at == clock.now()
    assert store.list(tenant="other") == []
    with pytest.raises(InvalidCredential, match="configured"):
        store.revoke(str(entry["id"]))
    with pytest.raises(InvalidCredential, match="configured"):
        store.rotate(str(entry["id"]))
    wrong = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    assert denied(store, wrong) == INVALID_KEY_MESSAGE
    assert store.count_stored() == 0


def test_bootstrap_file_yaml_and_json(tmp_path: Path) -> None:
    _, raw1 = generate_raw_key()
    _, raw2 = generate_raw_key()
    e1, e2 = bootstrap_entry(raw1, role="admin"), bootstrap_entry(raw2, name="n")
    yaml_file = tmp_path / "keys.yaml"
    yaml_file.write_text(
        "".join(
            f"- id: {e['id']}\n  sha256: '{e['sha256']}'\n  role: {e['role']}\n" for e in (e1, e2)
        )
    )
    loaded = load_bootstrap_keys(None, yaml_file)
    assert [(h, k.id, k.tenant) for h, k in loaded] == [
        (hash_key(raw1), e1["id"], "*"),
        (hash_key(raw2), e2["id"], "*"),
    ]
    json_file = tmp_path / "keys.json"
    json_file.write_text(json.dumps([e2]))
    assert [k.id for _, k in load_bootstrap_keys(json.dumps([e1]), json_file)] == [
        e1["id"],
        e2["id"],
    ]
    assert load_bootstrap_keys(None, None) == []
    assert load_bootstrap_keys("  ", None) == []


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda e: e.update(sha256=str(e["sha256"])[:-1]), "field 'sha256'"),
        (lambda e: e.update(sha256=str(e["sha256"])[:-1] + "g"), "field 'sha256'"),
        (lambda e: e.update(role="root"), "field 'role'"),
        (lambda e: e.update(tenant="a b"), "field 'tenant'"),
        (lambda e: e.update(id="UPPER_case"), "field 'id'"),
        (lambda e: e.pop("sha256"), "field 'sha256' is required"),
        (lambda e: e.update(secret="x"), "unknown field(s) secret"),
        (lambda e: e.update(name=5), "field 'name'"),
    ],
)
def test_bad_bootstrap_entry_names_index_and_field_never_the_hash(
    mutate: object, fragment: str
) -> None:
    _, raw_ok = generate_raw_key()
    _, raw_bad = generate_raw_key()
    bad = bootstrap_entry(raw_bad)
    mutate(bad)  # type: ignore[operator]
    spec = json.dumps([bootstrap_entry(raw_ok), bad])
    with pytest.raises(ConfigurationError) as info:
        load_bootstrap_keys(spec, None)
    message = str(info.value)
    assert "FLOWCRED_API_KEYS: entry 1" in message and fragment in message
    for raw in (raw_ok, raw_bad):
        assert hash_key(raw) not in message and hash_key(raw)[:16] not in message
        assert raw not in message


def test_bad_bootstrap_documents(tmp_path: Path) -> None:
    _, raw = generate_raw_key()
    entry = bootstrap_entry(raw)
    for spec, fragment in [
        ("{not json", "not valid JSON (line 1"),
        (json.dumps(entry), "expected a list"),
        (json.dumps(["x"]), "entry 0: expected an object"),
        (json.dumps([entry, entry]), "entry 1: field 'id' repeats"),
        (json.dumps([entry, {**entry, "id": "other1"}]), "entry 1: field 'sha256' repeats"),
    ]:
        with pytest.raises(ConfigurationError, match=re.escape(fragment)) as info:
            load_bootstrap_keys(spec, None)
        assert hash_key(raw) not in str(info.value)
    broken = tmp_path / "keys.yaml"
    broken.write_text(f"- id: {entry['id']}\n  sha256: '{entry['sha256']}\n  role: [\n")
    with pytest.raises(ConfigurationError, match="not valid JSON or YAML") as info:
        load_bootstrap_keys(None, broken)
    assert hash_key(raw) not in str(info.value)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_bootstrap_keys(None, tmp_path / "missing.yaml")


def test_bootstrap_from_env_reads_the_file_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, raw = generate_raw_key()
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([bootstrap_entry(raw, role="viewer")]))
    monkeypatch.setenv("FLOWCRED_API_KEYS_FILE", str(path))
    [(digest, key)] = bootstrap_from_env()
    assert digest == hashlib.sha256(raw.encode()).hexdigest() and key.role == "viewer"


# -- the first admin key -------------------------------------------------------------------------


def test_ensure_admin_key_creates_a_private_file_once(
    store: ApiKeyStore, tmp_path: Path, engine: Engine, clock: ManualClock
) -> None:
    home = tmp_path / "home"
    raw = ensure_admin_key(store, home)
    assert raw is not None
    path = home / ADMIN_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == raw
    key = store.authenticate(raw)
    assert (key.role, key.tenant, key.name) == ("admin", "*", "initial admin")
    assert [p.name for p in home.iterdir() if p.name.startswith(".admin.key")] == []

    before = path.stat()
    assert ensure_admin_key(store, home) is None
    assert ensure_admin_key(fresh(engine, clock), home) is None
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.read_text().strip() == raw
    store.revoke(key.id)  # a revoked key still counts: no silent new admin
    assert ensure_admin_key(store, home) is None
    assert len(store.list()) == 1


def test_ensure_admin_key_never_overwrites_a_file(store: ApiKeyStore, tmp_path: Path) -> None:
    home = tmp_path / "stale"
    home.mkdir()
    (home / ADMIN_KEY_FILE).write_text("old\n")
    with pytest.raises(ConfigurationError, match="exists"):
        ensure_admin_key(store, home)
    assert (home / ADMIN_KEY_FILE).read_text() == "old\n"
    assert store.list() == []  # the insert rolled back with the failed write


def test_ensure_admin_key_skips_when_keys_are_configured(
    engine: Engine, clock: ManualClock, tmp_path: Path
) -> None:
    _, raw = generate_raw_key()
    configured = load_bootstrap_keys(json.dumps([bootstrap_entry(raw, role="admin")]), None)
    store = fresh(engine, clock, bootstrap=configured)
    assert ensure_admin_key(store, tmp_path / "h") is None
    assert not (tmp_path / "h" / ADMIN_KEY_FILE).exists()
    assert store.count_stored() == 0


def test_ensure_admin_key_skips_when_a_key_exists(store: ApiKeyStore, tmp_path: Path) -> None:
    store.create(role="viewer", tenant="acme")
    assert ensure_admin_key(store, tmp_path / "h") is None
    assert not os.path.exists(tmp_path / "h" / ADMIN_KEY_FILE)


def test_api_key_holds_no_secret_fields() -> None:
    assert "hash" not in " ".join(ApiKey.__slots__) and "key" not in ApiKey.__slots__
