"""Dashboard accounts, logins and the audit log.

Passwords are argon2id hashes (argon2-cffi's defaults, rehashed when they change). A login
is a random token in a cookie; the database keeps only its SHA-256, with the session's CSRF
token and when it was last used, so logout and idle expiry are a row deleted or ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, insert, select, update

from bot.models import audit_t, session_t, staff_t

ROLES = ("admin", "staff", "viewer")
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps "no such user" as slow as
# "wrong password", so timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A username, role or password that cannot be used; the message says why."""


@dataclass(frozen=True)
class Staff:
    """Who is logged in: what every permission check looks at."""

    id: int
    username: str
    name: str
    role: str

    @property
    def can_act(self) -> bool:
        return self.role in ("admin", "staff")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def create_user(conn: Connection, username: str, password: str, role: str,
                name: str | None = None, telegram_chat_id: str | None = None) -> int:
    username = username.strip().lower()
    if not username or len(username) > 64 or not all(
            ch.isalnum() or ch in "._-" for ch in username):
        raise AccountError("username: 1-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
    if conn.execute(select(staff_t.c.id).where(staff_t.c.username == username)).first():
        raise AccountError(f"user {username!r} already exists")
    return int(conn.execute(insert(staff_t), {
        "username": username, "display_name": (name or username)[:128],
        "password_hash": _hasher.hash(password), "role": role,
        "telegram_chat_id": telegram_chat_id or None, "active": True,
        "created_at": datetime.now(UTC),
    }).inserted_primary_key[0])  # type: ignore[index]


def authenticate(conn: Connection, username: str, password: str) -> Staff | None:
    row = conn.execute(select(staff_t).where(
        staff_t.c.username == username.strip().lower(), staff_t.c.active.is_(True))).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    values: dict[str, Any] = {"last_login_at": datetime.now(UTC)}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = _hasher.hash(password)
    conn.execute(update(staff_t).where(staff_t.c.id == row.id).values(**values))
    return Staff(row.id, row.username, row.display_name, row.role)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(conn: Connection, staff_id: int, now: datetime | None = None) -> str:
    """A new session; returns the cookie's token (shown once, stored only as a hash)."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    conn.execute(insert(session_t), {"token_hash": _digest(token), "staff_id": staff_id,
                                     "csrf": secrets.token_urlsafe(32), "created_at": now,
                                     "last_seen_at": now})
    return token


@dataclass(frozen=True)
class Session:
    staff: Staff
    csrf: str
    token_hash: str


def find_session(conn: Connection, token: str, idle: timedelta,
                 now: datetime | None = None) -> Session | None:
    """The live session for a cookie; an idle one is deleted and treated as logged out."""
    now = now or datetime.now(UTC)
    digest = _digest(token)
    row = conn.execute(
        select(session_t.c.csrf, session_t.c.last_seen_at, staff_t.c.id, staff_t.c.username,
               staff_t.c.display_name, staff_t.c.role, staff_t.c.active)
        .join(staff_t, staff_t.c.id == session_t.c.staff_id)
        .where(session_t.c.token_hash == digest)).first()
    if row is None:
        return None
    if not row.active or now - row.last_seen_at > idle:
        conn.execute(delete(session_t).where(session_t.c.token_hash == digest))
        return None
    if now - row.last_seen_at > timedelta(seconds=30):  # spare a write on most requests
        conn.execute(update(session_t).where(session_t.c.token_hash == digest)
                     .values(last_seen_at=now))
    return Session(Staff(row.id, row.username, row.display_name, row.role), row.csrf, digest)


def close_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(session_t).where(session_t.c.token_hash == token_hash))


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), str(sent).encode())


def audit(conn: Connection, staff_id: int | None, action: str, target: str | None = None,
          ip: str | None = None, **detail: Any) -> None:
    """Record an action. Callers pass ids and field names, never message text or identity."""
    conn.execute(insert(audit_t), {"at": datetime.now(UTC), "staff_id": staff_id,
                                   "action": action, "target": target, "detail": detail,
                                   "ip": ip})


class LoginLimiter:
    """At most `attempts` failed logins per key (address, and username) per `window`
    seconds; in memory, as one process serves the dashboard."""

    def __init__(self, attempts: int = 5, window: float = 900.0):
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        return any(len(self._recent(k, now)) >= self.attempts for k in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for k in keys:
            self._recent(k, now).append(now)
        if len(self._failures) > 10_000:  # forget stale keys rather than grow without end
            for k in [k for k, q in self._failures.items() if not q]:
                del self._failures[k]

    def succeeded(self, *keys: str) -> None:
        for k in keys:
            self._failures.pop(k, None)
