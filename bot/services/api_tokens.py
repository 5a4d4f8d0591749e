"""Bearer tokens for the staff API (`lontar api-token`).

A token is 256 random bits shown once when it is created; the database keeps only its
SHA-256, so a copy of the database (or a backup) lets no one call the API. A fast hash, not
argon2: the token is random, not a password a person chose, so there is nothing to guess,
and every API request looks it up. Revoking keeps the row: the audit log names tokens, and a
name is never reused for a different system.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection, insert, select, update

from bot.models import token_t
from bot.services.staff import audit

SCOPES = ("read", "write")
PREFIX = "lontar_"  # lets secret scanners and people recognise a leaked token
NAME = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is a hint, not a log: spare the writes


class TokenError(ValueError):
    """A token name or scope that cannot be used; the message says why."""


class Token(NamedTuple):
    """Who is calling: what every API permission check looks at."""

    id: int
    name: str
    scope: str

    @property
    def can_write(self) -> bool:
        return self.scope == "write"


@dataclass(frozen=True)
class TokenInfo:
    """A token as `lontar api-token list` shows it: never the token or its hash."""

    id: int
    name: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(conn: Connection, name: str, scope: str, now: datetime | None = None) -> str:
    """A new token; returns it in plain text, the only time it exists outside the caller."""
    name = name.strip().lower()
    if not NAME.match(name):
        raise TokenError("name: 1-64 lower-case letters, digits, '.', '_' or '-', "
                         "starting with a letter")
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {', '.join(SCOPES)}")
    if conn.execute(select(token_t.c.id).where(token_t.c.name == name)).first():
        raise TokenError(f"a token named {name!r} already exists (names are never reused)")
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(insert(token_t), {"name": name, "scope": scope, "token_hash": digest(token),
                                   "created_at": now or datetime.now(UTC)})
    audit(conn, None, "api_token_create", name, None, scope=scope)
    return token


def revoke(conn: Connection, name_or_id: str, now: datetime | None = None) -> bool:
    """Revoke by name (or by id when no token has that name); False if there is no such
    live token, so a typo is never reported as done."""
    key = name_or_id.strip().lower()
    row = conn.execute(select(token_t.c.id, token_t.c.name, token_t.c.revoked_at)
                       .where(token_t.c.name == key)).first()
    if row is None and key.isdigit() and len(key) < 12:
        row = conn.execute(select(token_t.c.id, token_t.c.name, token_t.c.revoked_at)
                           .where(token_t.c.id == int(key))).first()
    if row is None or row.revoked_at is not None:
        return False
    conn.execute(update(token_t).where(token_t.c.id == row.id)
                 .values(revoked_at=now or datetime.now(UTC)))
    audit(conn, None, "api_token_revoke", row.name)
    return True


def list_tokens(conn: Connection) -> list[TokenInfo]:
    t = token_t.c
    return [TokenInfo(r.id, r.name, r.scope, r.created_at, r.revoked_at, r.last_used_at)
            for r in conn.execute(select(t.id, t.name, t.scope, t.created_at, t.revoked_at,
                                         t.last_used_at).order_by(t.id))]


def find(conn: Connection, token: str, now: datetime | None = None) -> Token | None:
    """The live token for a bearer value, or None (unknown or revoked). Looked up by its
    hash, so the comparison never touches the secret itself."""
    if not token.startswith(PREFIX) or len(token) > 128:
        return None
    now = now or datetime.now(UTC)
    t = token_t.c
    row = conn.execute(select(t.id, t.name, t.scope, t.revoked_at, t.last_used_at)
                       .where(t.token_hash == digest(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        conn.execute(update(token_t).where(t.id == row.id).values(last_used_at=now))
    return Token(row.id, row.name, row.scope)
