"""A citizen checking and following applications from a chat (the shell side of
flows/status.py).

Brute-force safety lives here, per chat, in the `lookup_guard` row: every verification
attempt counts towards an hourly limit, and every failed one — an unknown number exactly
like a wrong answer, and computed the same way — towards the lock-out. So a chat learns
nothing about a number it cannot verify, and cannot try many.
"""

from __future__ import annotations

import hmac
import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from bot.models import application_t, guard_t, subscription_t
from bot.services.applications import keyed, status_text
from flows.content import Content
from flows.types import (
    ApplicationChecked,
    ApplicationFollowed,
    ApplicationsListed,
    CheckApplication,
    Event,
    FollowApplication,
    Lang,
    ListApplications,
)

WINDOW = timedelta(hours=1)
MAX_LISTED = 20
_UNKNOWN = "0" * 64  # compared against when the number does not exist, to take equal time


def answer(conn: Connection, contact_id: int,
           asks: CheckApplication | ListApplications | FollowApplication, content: Content,
           secret: str, lang: Lang, at: datetime, now: datetime) -> Event:
    if isinstance(asks, CheckApplication):
        return check(conn, contact_id, asks, content, secret, lang, at, now)
    if isinstance(asks, ListApplications):
        return ApplicationsListed(at, listed(conn, contact_id, content, lang))
    return ApplicationFollowed(at, asks.reg_no, asks.follow,
                               follow(conn, contact_id, asks, now))


def check(conn: Connection, contact_id: int, asks: CheckApplication, content: Content,
          secret: str, lang: Lang, at: datetime, now: datetime) -> ApplicationChecked:
    ac = content.applications
    assert ac is not None
    reg_no = asks.reg_no.strip().upper()
    g = guard_t.c
    guard = conn.execute(select(g.failures, g.locked_until, g.window_start, g.lookups)
                         .where(g.contact_id == contact_id)).first()
    if guard is None:
        conn.execute(insert(guard_t), {"contact_id": contact_id, "failures": 0,
                                       "locked_until": None, "window_start": now,
                                       "lookups": 0})
        failures, locked_until, window_start, lookups = 0, None, now, 0
    else:
        failures, locked_until, window_start, lookups = guard
    if locked_until is not None and locked_until > now:
        minutes = math.ceil((locked_until - now).total_seconds() / 60)
        return ApplicationChecked(at, reg_no, "locked", minutes=minutes)
    if now - window_start >= WINDOW:
        window_start, lookups = now, 0
    if lookups >= ac.lookups_per_hour:
        return ApplicationChecked(at, reg_no, "too_many")
    a = application_t.c
    row = conn.execute(select(a.id, a.status, a.reason, a.office, a.verify_kind,
                              a.verify_hmac).where(a.reg_no == reg_no)).first()
    given = keyed(secret, f"verify:{asks.kind}:{reg_no}", asks.answer)
    stored = row.verify_hmac if row is not None and row.verify_kind == asks.kind else _UNKNOWN
    ok = hmac.compare_digest(given, stored) and row is not None
    values: dict[str, Any] = {"window_start": window_start, "lookups": lookups + 1}
    if ok:
        values.update(failures=0, locked_until=None)
    elif failures + 1 >= ac.verify_attempts:
        values.update(failures=0, locked_until=now + timedelta(minutes=ac.lock_minutes))
    else:
        values.update(failures=failures + 1)
    conn.execute(update(guard_t).where(g.contact_id == contact_id).values(**values))
    if not ok or row is None:
        if values.get("locked_until") is not None:
            return ApplicationChecked(at, reg_no, "locked", minutes=ac.lock_minutes)
        return ApplicationChecked(at, reg_no, "no_match",
                                  attempts_left=ac.verify_attempts - values["failures"])
    s = subscription_t.c
    following = conn.execute(select(s.contact_id).where(
        s.application_id == row.id, s.contact_id == contact_id,
        s.stopped_at.is_(None))).first() is not None
    st = ac.get(row.status)
    text = status_text(content, lang, reg_no, row.status, row.reason, row.office)
    return ApplicationChecked(at, reg_no, "found", text, following=following,
                              done=st is not None and st.type == "done")


def listed(conn: Connection, contact_id: int, content: Content,
           lang: Lang) -> tuple[tuple[str, str], ...]:
    """The applications this chat follows, with their status as the citizen reads it."""
    ac = content.applications
    assert ac is not None
    a, s = application_t.c, subscription_t.c
    rows = conn.execute(
        select(a.reg_no, a.status).join(subscription_t, s.application_id == a.id)
        .where(s.contact_id == contact_id, s.stopped_at.is_(None))
        .order_by(a.status_changed_at.desc(), a.id.desc()).limit(MAX_LISTED))
    out = []
    for r in rows:
        st = ac.get(r.status)
        out.append((r.reg_no, st.label.get(lang) if st is not None else r.status))
    return tuple(out)


def follow(conn: Connection, contact_id: int, asks: FollowApplication, now: datetime) -> bool:
    """Start or stop notifications. Starting is only asked for a number the conversation
    verified (the engine keeps that list); it is checked to exist all the same."""
    a, s = application_t.c, subscription_t.c
    app_id = conn.execute(select(a.id).where(a.reg_no == asks.reg_no.upper())).scalar()
    if app_id is None:
        return False
    where = (s.application_id == app_id, s.contact_id == contact_id)
    if not asks.follow:
        done = conn.execute(update(subscription_t).where(*where, s.stopped_at.is_(None))
                            .values(stopped_at=now))
        return done.rowcount == 1
    known = conn.execute(select(s.stopped_at).where(*where)).first()
    if known is None:
        conn.execute(insert(subscription_t), {"application_id": app_id,
                                              "contact_id": contact_id, "created_at": now})
    elif known.stopped_at is not None:
        conn.execute(update(subscription_t).where(*where).values(stopped_at=None))
    return True
