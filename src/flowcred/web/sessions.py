"""Server-side sessions of the web UI: the cookie holds a random token, the server the rest.

A session is created by signing in with an API key and remembers only the key's *id*, never the
key: every request looks the key up again, so a revoked or expired key ends its sessions at
once. The cookie value is 256 random bits; only its SHA-256 is kept, so a memory dump of the
store cannot be replayed as a cookie.

Expiry: a session ends after ``idle_seconds`` without a request, and ``absolute_seconds`` after
sign-in whatever happens. Sign-out removes it here, so the cookie is worthless afterwards even if
the browser kept it.

The store is in process memory, bounded to ``max_sessions`` (the least recently used go first).
Every ``serve`` process has its own: behind several replicas a browser must stick to one, or the
store must move to the shared database (the [scale] seam: :class:`SessionStore` is the one class
to replace).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_IDLE_SECONDS = 30 * 60.0
DEFAULT_ABSOLUTE_SECONDS = 12 * 3600.0
DEFAULT_MAX_SESSIONS = 10_000


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class UiSession:
    """One signed-in browser: which key, its CSRF token, and when it started and was last used.

    ``flash`` carries one message to the next page after a redirect (never a secret: the pages
    put only fixed text and names there). The repr names the key only.
    """

    key_id: str
    csrf_token: str
    created: float
    last_seen: float
    flash: list[tuple[str, str]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"UiSession(key_id={self.key_id!r})"

    def add_flash(self, kind: str, text: str) -> None:
        self.flash.append((kind, text))
        del self.flash[:-5]

    def take_flash(self) -> list[tuple[str, str]]:
        out, self.flash = self.flash, []
        return out


class SessionStore:
    """Sessions by cookie-token hash, with idle and absolute expiry; thread-safe and bounded."""

    def __init__(
        self,
        *,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        absolute_seconds: float = DEFAULT_ABSOLUTE_SECONDS,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, UiSession] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SessionStore({len(self._sessions)} sessions)"

    def create(self, key_id: str) -> tuple[str, UiSession]:
        """Start a session for ``key_id``; returns the cookie token (shown to the browser only)."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = UiSession(
            key_id=key_id, csrf_token=secrets.token_urlsafe(32), created=now, last_seen=now
        )
        with self._lock:
            self._sessions[_digest(token)] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return token, session

    def get(self, token: str | None) -> UiSession | None:
        """The live session ``token`` names, touched; None (and forgotten) when expired."""
        if not token or len(token) > 256:
            return None
        key = _digest(token)
        now = self._clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if (
                now - session.last_seen >= self.idle_seconds
                or now - session.created >= self.absolute_seconds
            ):
                del self._sessions[key]
                return None
            session.last_seen = now
            self._sessions.move_to_end(key)
            return session

    def end(self, token: str | None) -> bool:
        """End the session ``token`` names (sign-out); True when there was one."""
        if not token:
            return False
        with self._lock:
            return self._sessions.pop(_digest(token), None) is not None

    def end_for_key(self, key_id: str) -> int:
        """End every session signed in with ``key_id`` (its key was revoked or rotated away)."""
        with self._lock:
            doomed = [k for k, s in self._sessions.items() if s.key_id == key_id]
            for k in doomed:
                del self._sessions[k]
        return len(doomed)

    def __len__(self) -> int:
        return len(self._sessions)
