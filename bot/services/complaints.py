"""Complaint tickets: numbers, working-day deadlines, limits against abuse.

A ticket number is the kind's prefix, the year and six random characters from an alphabet
without look-alikes (ADU-2026-7K3QF9): a citizen can read it out and type it back, and it
says nothing about how many tickets exist or whose they are.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, insert, select

from bot.models import complaint_t, follower_t
from flows.content import Content
from flows.types import FileComplaint, Lang

log = logging.getLogger(__name__)

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


@dataclass(frozen=True)
class Filed:
    number: str | None
    due: date | None = None
    refused: str | None = None  # "too_many" or "duplicate"
    limit: int = 0


def add_working_days(start: date, days: int, holidays: frozenset[date]) -> date:
    """`days` working days after `start` (Monday-Friday, not a public holiday)."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in holidays:
            days -= 1
    return current


def new_number(prefix: str, year: int) -> str:
    return f"{prefix}-{year}-{''.join(secrets.choice(ALPHABET) for _ in range(6))}"


def text_hash(text: str) -> str:
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()


def create(conn: Connection, contact_id: int, display_name: str | None, effect: FileComplaint,
           content: Content, tz: ZoneInfo, now: datetime | None = None) -> Filed:
    """Store a ticket (or refuse it: too many today, or the same story again)."""
    cc = content.complaints
    assert cc is not None
    now = now or datetime.now(UTC)
    today = now.astimezone(tz).date()
    start_of_day = datetime(today.year, today.month, today.day, tzinfo=tz).astimezone(UTC)
    mine = (select(complaint_t.c.number, complaint_t.c.text_hash, complaint_t.c.created_at)
            .join(follower_t, follower_t.c.complaint_id == complaint_t.c.id)
            .where(follower_t.c.contact_id == contact_id))
    digest = text_hash(effect.text)
    same = conn.execute(mine.where(complaint_t.c.text_hash == digest)).first()
    if same is not None:
        return Filed(same.number, refused="duplicate")
    today_count = conn.execute(select(func.count()).select_from(
        mine.where(complaint_t.c.created_at >= start_of_day).subquery())).scalar_one()
    if today_count >= cc.max_per_day:
        return Filed(None, refused="too_many", limit=cc.max_per_day)
    prefix = next((k.prefix for k in cc.kind if k.id == effect.kind), "ADU")
    number = new_number(prefix, today.year)
    while conn.execute(select(complaint_t.c.id).where(complaint_t.c.number == number)).first():
        number = new_number(prefix, today.year)
    due = add_working_days(today, cc.verify_working_days, frozenset(cc.holidays))
    anonymous = effect.identity == "anonymous"
    complaint_id = conn.execute(insert(complaint_t), {
        "number": number, "kind": effect.kind, "service": effect.service,
        "office": effect.office, "category": effect.category, "dimension": effect.dimension,
        "urgent": effect.urgent, "text": effect.text, "text_hash": digest,
        "photos": list(effect.photos), "happened": effect.when, "identity": effect.identity,
        "contact_id": None if anonymous else contact_id,
        "display_name": display_name if effect.identity == "named" else None,
        "state": "baru", "due_on": due, "created_at": now,
    }).inserted_primary_key[0]  # type: ignore[index]
    conn.execute(insert(follower_t), {"complaint_id": complaint_id, "contact_id": contact_id,
                                      "created_at": now})
    if effect.urgent:  # admins are alerted from the dashboard (next step); the log says it now
        log.warning("URGENT complaint %s (%s) at office %s", number, effect.category,
                    effect.office)
    return Filed(number, due)




def followed(conn: Connection, contact_id: int, content: Content, lang: Lang, tz: ZoneInfo,
             limit: int = 10) -> tuple[tuple[str, str, str, str], ...]:
    """The tickets this chat follows, newest first: (number, kind, state, sent on)."""
    rows = conn.execute(
        select(complaint_t.c.number, complaint_t.c.kind, complaint_t.c.state,
               complaint_t.c.created_at)
        .join(follower_t, follower_t.c.complaint_id == complaint_t.c.id)
        .where(follower_t.c.contact_id == contact_id)
        .order_by(complaint_t.c.id.desc()).limit(limit)
    ).all()
    return tuple((r.number, r.kind, r.state,
                  content.format_date(lang, r.created_at.astimezone(tz).date())) for r in rows)
