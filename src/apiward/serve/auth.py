"""API tokens, roles and console sessions, in ``<state>/auth.db``.

Tokens are random (``aw_`` + 43 url-safe characters), shown once, and kept
only as an HMAC-SHA256 keyed with the state's ``secret``: a copy of
``auth.db`` alone does not let anyone in. Roles:

- ``viewer``: read everything except raw SQL;
- ``analyst``: viewer + triage, SQL hunts, incident reports;
- ``admin``: everything, token management, and ingestion;
- ``ingest``: only the ingestion endpoints (collectors, proxies, plugins).

Console sessions are random cookies, also stored as HMACs, each with its
own CSRF token; they expire after ``SESSION_SECONDS``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from apiward.state import StateDir

__all__ = ["ROLES", "SESSION_SECONDS", "AuthError", "AuthStore", "LoginLimiter", "Principal", "allowed"]

ROLES = ("viewer", "analyst", "admin", "ingest")
_RANK = {"viewer": 1, "analyst": 2, "admin": 3}
SESSION_SECONDS = 8 * 3600


class AuthError(ValueError):
    """A bad role or name given to token management."""


def allowed(have: str, need: str) -> bool:
    """May a principal with role ``have`` use a route needing ``need``?
    ``ingest`` routes take ingest and admin tokens; the others rank
    viewer < analyst < admin, and an ingest token reads nothing."""
    if need == "ingest":
        return have in ("ingest", "admin")
    return _RANK.get(have, 0) >= _RANK[need]


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: str
    session: str = ""  # the session's id hash when signed in through the console
    csrf: str = ""


class AuthStore:
    """Tokens and sessions of one state directory (SQLite, WAL)."""

    def __init__(self, state_dir: Path | str) -> None:
        sd = StateDir(state_dir)
        self._key = hmac.new(sd.secret(), b"apiward-auth-v1", hashlib.sha256).digest()
        path = sd.root / "auth.db"
        new = not path.exists()
        if new:
            import os

            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._lock = threading.Lock()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, "
            "digest BLOB UNIQUE NOT NULL, created REAL NOT NULL, last_used REAL, revoked REAL)"
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS sessions (digest BLOB PRIMARY KEY, token_id TEXT NOT NULL, csrf TEXT NOT NULL, "
            "created REAL NOT NULL, expires REAL NOT NULL)"
        )

    def _digest(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).digest()

    # -- tokens -----------------------------------------------------------------
    def create(self, role: str, name: str) -> tuple[str, str]:
        """A new token; returns (token id, the token). The token is not kept."""
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        name = name.strip()
        if not name or len(name) > 100:
            raise AuthError("name must be 1 to 100 characters")
        token = "aw_" + secrets.token_urlsafe(32)
        tid = "T-" + secrets.token_hex(4)
        with self._lock:
            self.db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL, NULL)", (tid, name, role, self._digest(token), time.time()))
        return tid, token

    def has_admin(self) -> bool:
        return self.db.execute("SELECT 1 FROM tokens WHERE role = 'admin' AND revoked IS NULL LIMIT 1").fetchone() is not None

    def check(self, token: str) -> Principal | None:
        """The principal a token belongs to, or None (unknown or revoked)."""
        if not token or len(token) > 200:
            return None
        row = self.db.execute("SELECT id, name, role FROM tokens WHERE digest = ? AND revoked IS NULL", (self._digest(token),)).fetchone()
        if row is None:
            return None
        with self._lock:
            self.db.execute("UPDATE tokens SET last_used = ? WHERE id = ?", (time.time(), row[0]))
        return Principal(row[0], row[1], row[2])

    def revoke(self, token_id: str) -> bool:
        with self._lock:
            cur = self.db.execute("UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", (time.time(), token_id))
            self.db.execute("DELETE FROM sessions WHERE token_id = ?", (token_id,))
        return cur.rowcount > 0

    def tokens(self) -> list[dict[str, object]]:
        cols = ("id", "name", "role", "created", "last_used", "revoked")
        return [dict(zip(cols, r)) for r in self.db.execute(f"SELECT {', '.join(cols)} FROM tokens ORDER BY created")]

    # -- console sessions ---------------------------------------------------------
    def open_session(self, p: Principal) -> tuple[str, str]:
        """A session for a signed-in token; returns (cookie value, CSRF token)."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = time.time()
        with self._lock:
            self.db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            self.db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", (self._digest(sid), p.token_id, csrf, now, now + SESSION_SECONDS))
        return sid, csrf

    def session(self, sid: str) -> Principal | None:
        if not sid or len(sid) > 200:
            return None
        d = self._digest(sid)
        row = self.db.execute(
            "SELECT t.id, t.name, t.role, s.csrf FROM sessions s JOIN tokens t ON t.id = s.token_id "
            "WHERE s.digest = ? AND s.expires > ? AND t.revoked IS NULL", (d, time.time())
        ).fetchone()
        if row is None:
            return None
        return Principal(row[0], row[1], row[2], session=d.hex(), csrf=row[3])

    def close_session(self, sid: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM sessions WHERE digest = ?", (self._digest(sid),))

    def close(self) -> None:
        self.db.close()


class LoginLimiter:
    """At most ``attempts`` failed sign-ins per client address per
    ``window`` seconds; later tries wait (HTTP 429) until the window moves."""

    def __init__(self, attempts: int = 5, window: float = 60.0) -> None:
        self.attempts = attempts
        self.window = window
        self._fails: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds the client must wait, 0 when it may try now."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._fails.get(client, []) if now - t < self.window]
            self._fails[client] = recent
            if len(recent) < self.attempts:
                return 0
            return max(1, int(self.window - (now - recent[0])) + 1)

    def failed(self, client: str) -> None:
        with self._lock:
            self._fails.setdefault(client, []).append(time.monotonic())
            if len(self._fails) > 100_000:  # bound memory under a spray of addresses
                self._fails.pop(next(iter(self._fails)))
