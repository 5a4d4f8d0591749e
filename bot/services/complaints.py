"""Complaint tickets: numbers, working-day deadlines, limits against abuse, and what a
citizen may do with a ticket afterwards (see it, add information, rate it once closed).

A ticket number is the kind's prefix, the year and six random characters from an alphabet
without look-alikes (ADU-2026-7K3QF9): a citizen can read it out and type it back, and it
says nothing about how many tickets exist or whose they are. Everything a citizen does with
a ticket goes through `complaint_follower`: a chat only ever sees or touches the tickets it
follows, and every refusal looks the same whether the number exists or not.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update

from bot.models import complaint_t, contact_t, follower_t, update_t
from bot.services import alerts
from flows.content import Content
from flows.types import (
    AddToTicket,
    ComplaintFiled,
    Event,
    FileComplaint,
    Lang,
    LookupTickets,
    RateTicket,
    TicketInfoAdded,
    TicketRated,
    TicketsFound,
)

log = logging.getLogger(__name__)

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
MAX_INFO = 2000  # characters of information a citizen adds, like a complaint's story
MAX_PHOTOS = 10  # kept on one ticket, whether sent with it or added later


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
        "state": "baru", "due_on": due, "created_at": now, "updated_at": now,
    }).inserted_primary_key[0]  # type: ignore[index]
    conn.execute(insert(follower_t), {"complaint_id": complaint_id, "contact_id": contact_id,
                                      "created_at": now})
    if effect.urgent:  # admins see it on the dashboard now, and on Telegram within a minute
        alerts.add(conn, "urgent", complaint_id, due, None, now)
        log.warning("URGENT complaint %s (%s) at office %s", number, effect.category,
                    effect.office)
    return Filed(number, due)


_NAME = select(contact_t.c.display_name).where(contact_t.c.id == bindparam("cid"))
_MINE = (
    select(complaint_t.c.id, complaint_t.c.state, complaint_t.c.rating, complaint_t.c.photos)
    .join(follower_t, follower_t.c.complaint_id == complaint_t.c.id)
    .where(follower_t.c.contact_id == bindparam("cid"),
           complaint_t.c.number == bindparam("number"))
)
_LATEST_ANSWER = (
    select(update_t.c.text)
    .where(update_t.c.complaint_id == bindparam("tid"), update_t.c.public.is_(True),
           update_t.c.author == "staff", update_t.c.text.is_not(None))
    .order_by(update_t.c.id.desc()).limit(1)
)


def followed(conn: Connection, contact_id: int, content: Content, lang: Lang, tz: ZoneInfo,
             limit: int = 10, number: str | None = None) -> tuple[tuple[str, str, str, str], ...]:
    """The tickets this chat follows, newest first: (number, kind, state, sent on).

    With `number`, only that ticket, and only if this chat follows it.
    """
    query = (
        select(complaint_t.c.number, complaint_t.c.kind, complaint_t.c.state,
               complaint_t.c.created_at)
        .join(follower_t, follower_t.c.complaint_id == complaint_t.c.id)
        .where(follower_t.c.contact_id == contact_id)
        .order_by(complaint_t.c.id.desc()).limit(limit)
    )
    if number is not None:
        query = query.where(complaint_t.c.number == number)
    rows = conn.execute(query).all()
    return tuple((r.number, r.kind, r.state,
                  content.format_date(lang, r.created_at.astimezone(tz).date())) for r in rows)


def _mine(conn: Connection, contact_id: int, number: str) -> Row[Any] | None:
    return conn.execute(_MINE, {"cid": contact_id, "number": number}).first()


def _states(content: Content, kind: str) -> list[str]:
    assert content.complaints is not None
    return [s.id for s in content.complaints.state if s.type == kind]


def latest_answer(conn: Connection, contact_id: int, number: str) -> str | None:
    """The newest public staff answer on a ticket this chat follows (None for any other)."""
    mine = _mine(conn, contact_id, number)
    if mine is None:
        return None
    text: str | None = conn.execute(_LATEST_ANSWER, {"tid": mine.id}).scalar()
    return text


def rate(conn: Connection, contact_id: int, number: str, score: int, content: Content,
         now: datetime) -> bool:
    """Store the citizen's 1-5 for a closed ticket they follow; a new rating replaces the
    old one on the ticket, and the history keeps both."""
    closed = _states(content, "closed")
    mine = _mine(conn, contact_id, number)
    if not 1 <= score <= 5 or mine is None or mine.state not in closed:
        return False
    done = conn.execute(
        update(complaint_t)
        .where(complaint_t.c.id == mine.id, complaint_t.c.state.in_(closed))  # not reopened
        .values(rating=score, updated_at=now))
    if done.rowcount != 1:
        return False
    conn.execute(insert(update_t), {
        "complaint_id": mine.id, "author": "citizen", "staff_id": None, "public": False,
        "text": None, "state_after": None, "changes": {"rating": [mine.rating, score]},
        "created_at": now})
    return True


Added = Literal["added", "closed", "refused"]


def add_info(conn: Connection, contact_id: int, effect: AddToTicket, content: Content,
             now: datetime) -> Added:
    """Append the citizen's information (public: it is part of the conversation) to an open
    ticket they follow. "closed" is only ever said about their own ticket."""
    text = effect.text.strip()[:MAX_INFO]
    mine = _mine(conn, contact_id, effect.number)
    if mine is None or not text:
        return "refused"
    still_open = _states(content, "open")
    if mine.state not in still_open:
        return "closed"
    values: dict[str, object] = {"updated_at": now}
    changes: dict[str, object] = {}
    photos = list(mine.photos or [])
    if effect.photos:
        added = [*photos, *effect.photos][:MAX_PHOTOS]
        values["photos"] = added
        changes["photos"] = [photos, added]
    done = conn.execute(update(complaint_t).where(
        complaint_t.c.id == mine.id, complaint_t.c.state.in_(still_open)).values(**values))
    if done.rowcount != 1:  # closed meanwhile
        return "closed"
    conn.execute(insert(update_t), {
        "complaint_id": mine.id, "author": "citizen", "staff_id": None, "public": True,
        "text": text, "state_after": None, "changes": changes, "created_at": now})
    return "added"


def answer(conn: Connection, contact_id: int, asks: FileComplaint | LookupTickets
           | RateTicket | AddToTicket, content: Content, tz: ZoneInfo, lang: Lang,
           at: datetime, now: datetime) -> Event:
    """Do what the engine asked and return the event that tells it the outcome.

    `at` is the citizen's message time (the engine's clock); `now` is when we store.
    """
    if isinstance(asks, FileComplaint):
        name = conn.execute(_NAME, {"cid": contact_id}).scalar()
        filed = create(conn, contact_id, name, asks, content, tz, now)
        return ComplaintFiled(
            at, filed.number, content.format_date(lang, filed.due) if filed.due else None,
            filed.refused, filed.limit)  # type: ignore[arg-type]
    if isinstance(asks, LookupTickets):
        found = followed(conn, contact_id, content, lang, tz, number=asks.number)
        said = latest_answer(conn, contact_id, asks.number) if asks.number and found else None
        return TicketsFound(at, found, asks.number, said)
    if isinstance(asks, RateTicket):
        return TicketRated(at, asks.number,
                           rate(conn, contact_id, asks.number, asks.score, content, now))
    added = add_info(conn, contact_id, asks, content, now)
    return TicketInfoAdded(at, asks.number, added == "added", added == "closed")
