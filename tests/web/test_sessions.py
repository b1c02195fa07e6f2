"""The UI's server-side sessions: idle and absolute expiry, sign-out, and per-key ending."""

from __future__ import annotations

from flowcred.web.sessions import SessionStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_after_the_idle_time_without_a_request() -> None:
    clock = FakeClock()
    store = SessionStore(idle_seconds=60, absolute_seconds=3600, clock=clock)
    token, _ = store.create("key1")
    clock.now += 59
    assert store.get(token) is not None  # a request: the idle timer starts again
    clock.now += 59
    assert store.get(token) is not None
    clock.now += 60
    assert store.get(token) is None
    assert len(store) == 0


def test_a_session_ends_at_the_absolute_limit_even_when_used() -> None:
    clock = FakeClock()
    store = SessionStore(idle_seconds=60, absolute_seconds=200, clock=clock)
    token, _ = store.create("key1")
    for _ in range(3):
        clock.now += 50
        assert store.get(token) is not None
    clock.now += 50
    assert store.get(token) is None


def test_sign_out_and_key_revocation_end_sessions_and_only_theirs() -> None:
    store = SessionStore()
    a, _ = store.create("key1")
    b, _ = store.create("key1")
    c, _ = store.create("key2")
    assert store.end(a) is True
    assert store.get(a) is None
    assert store.end_for_key("key1") == 1
    assert store.get(b) is None
    assert store.get(c) is not None


def test_the_store_keeps_only_a_digest_of_the_cookie_and_is_bounded() -> None:
    store = SessionStore(max_sessions=3)
    tokens = [store.create(f"key{i}")[0] for i in range(5)]
    assert len(store) == 3
    assert store.get(tokens[0]) is None and store.get(tokens[4]) is not None
    assert all(t not in repr(store._sessions) for t in tokens)
    assert store.get("x" * 300) is None and store.get(None) is None


def test_each_session_has_its_own_csrf_token_and_flash_is_read_once() -> None:
    store = SessionStore()
    _, one = store.create("key1")
    _, two = store.create("key1")
    assert one.csrf_token != two.csrf_token and len(one.csrf_token) >= 40
    one.add_flash("ok", "Saved")
    assert one.take_flash() == [("ok", "Saved")]
    assert one.take_flash() == []
    assert "csrf" not in repr(one) and one.csrf_token not in repr(one)
