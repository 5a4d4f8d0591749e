"""Service notices: a disruption staff announce (the central server is down, a power cut, a
broken recording device) for one office or every office, one service or every service, from
a start until an expected end. While one is in effect the inbox tells a citizen who asks
about that service, before they travel (bot/inbox.py); staff add and end them in the
dashboard (bot/dashboard/notice_pages.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update

from bot.models import notice_t

TEXT_MAX = 500
LONGEST = timedelta(days=30)  # a notice longer than this is not a disruption
SHOWN = 3  # at most this many notices in one reply

_ACTIVE = (
    select(notice_t)
    .where(notice_t.c.ends_at > bindparam("now"), notice_t.c.starts_at <= bindparam("now"),
           notice_t.c.ended_at.is_(None))
    .order_by(notice_t.c.starts_at.desc(), notice_t.c.id.desc())
)
_FOR_SERVICE = _ACTIVE.where(or_(notice_t.c.service.is_(None),
                                 notice_t.c.service == bindparam("service"))).limit(SHOWN)
_ANY = _ACTIVE.limit(SHOWN)


def add(conn: Connection, *, text_id: str, starts_at: datetime, ends_at: datetime,
        created_by: int, now: datetime, office: str | None = None, service: str | None = None,
        text_en: str | None = None) -> int:
    """Store a notice (already checked by the caller); returns its id."""
    return int(conn.execute(insert(notice_t), {
        "office": office or None, "service": service or None, "text_id": text_id,
        "text_en": text_en or None, "starts_at": starts_at, "ends_at": ends_at,
        "created_by": created_by, "created_at": now, "ended_at": None,
    }).inserted_primary_key[0])  # type: ignore[index]


def end(conn: Connection, notice_id: int, now: datetime) -> bool:
    """End a notice early; False if there is no such notice or it is already over."""
    done = conn.execute(update(notice_t).where(
        notice_t.c.id == notice_id, notice_t.c.ended_at.is_(None),
        notice_t.c.ends_at > now).values(ended_at=now))
    return bool(done.rowcount)


def active(conn: Connection, now: datetime, service: str | None = None) -> list[Any]:
    """Notices in effect at `now`, newest first, at most three: those for `service` or for
    every service; with no `service` (office hours, locations), all of them."""
    if service is None:
        return list(conn.execute(_ANY, {"now": now}))
    return list(conn.execute(_FOR_SERVICE, {"now": now, "service": service}))

