"""What staff do to a ticket: answer, note, change state, assign, correct its tags.

Every action appends a `complaint_update` row (the ticket's history is never rewritten),
writes the audit log, and, when the citizen should know, queues a notification to every chat
following the ticket in the same transaction: the answer leaves through the outbox only if
the action committed. An anonymous ticket has no contact of its own, but its follower row
still carries the answers to the chat that filed it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, insert, select, update

from bot.models import (
    PRIORITY_NOTIFICATION,
    complaint_t,
    contact_t,
    follower_t,
    outbox_t,
    staff_t,
    update_t,
)
from bot.outbox import new_row
from bot.services.complaints import add_working_days
from bot.services.staff import Staff, audit
from flows.content import Content
from flows.types import Lang, Option, Reply

MAX_ANSWER = 4000
RATING_TARGET = "go:rate:{number}:{score}"  # the engine reads these as rating buttons


class ActionError(ValueError):
    """The action cannot be done (unknown ticket, value or permission); shown to staff."""


@dataclass(frozen=True)
class Done:
    channels: frozenset[str]  # senders to wake after commit


def _ticket(conn: Connection, complaint_id: int) -> Row[Any]:
    row = conn.execute(select(complaint_t).where(complaint_t.c.id == complaint_id)).first()
    if row is None:
        raise ActionError("tiket tidak ditemukan")
    return row


def _need(staff: Staff) -> None:
    if not staff.can_act:
        raise ActionError("peran Anda hanya boleh melihat")


def _log(conn: Connection, ticket: Row[Any], staff: Staff | None, now: datetime, *,
         public: bool = False, text: str | None = None, state_after: str | None = None,
         changes: dict[str, Any] | None = None, author: str = "staff") -> None:
    conn.execute(insert(update_t), {
        "complaint_id": ticket.id, "author": author,
        "staff_id": staff.id if staff else None, "public": public, "text": text,
        "state_after": state_after, "changes": changes or {}, "created_at": now})


def _clean(text: str) -> str:
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t").strip()
    if not text:
        raise ActionError("teks kosong")
    if len(text) > MAX_ANSWER:
        raise ActionError(f"teks terlalu panjang (paling banyak {MAX_ANSWER} huruf)")
    return text


def notify_followers(conn: Connection, ticket_id: int,
                     make: Callable[[str], Reply], now: datetime) -> frozenset[str]:
    """Queue `make(language)` to every chat following the ticket (blocked chats too: the
    sender marks those failed, which keeps the record of what was attempted)."""
    rows = conn.execute(
        select(contact_t.c.id, contact_t.c.channel, contact_t.c.language)
        .join(follower_t, follower_t.c.contact_id == contact_t.c.id)
        .where(follower_t.c.complaint_id == ticket_id)).all()
    if rows:
        conn.execute(insert(outbox_t), [
            new_row(r.id, r.channel, make(r.language).to_dict(), PRIORITY_NOTIFICATION, now)
            for r in rows])
    return frozenset(r.channel for r in rows)


def _lang(language: str) -> Lang:
    return "en" if language == "en" else "id"


def answer(conn: Connection, ticket_id: int, staff: Staff, text: str, content: Content,
           ip: str | None = None, now: datetime | None = None) -> Done:
    """A public answer: stored in the history and sent to the citizen."""
    _need(staff)
    now = now or datetime.now(UTC)
    ticket = _ticket(conn, ticket_id)
    text = _clean(text)
    _log(conn, ticket, staff, now, public=True, text=text)
    values: dict[str, Any] = {"updated_at": now}
    if ticket.first_answer_at is None:
        values["first_answer_at"] = now
    conn.execute(update(complaint_t).where(complaint_t.c.id == ticket.id).values(**values))
    audit(conn, staff.id, "answer", ticket.number, ip)
    channels = notify_followers(conn, ticket.id, lambda lang: Reply(content.msg(
        _lang(lang), "ticket_answer", number=ticket.number, text=text)), now)
    return Done(channels)


def note(conn: Connection, ticket_id: int, staff: Staff, text: str, ip: str | None = None,
         now: datetime | None = None) -> Done:
    """An internal note: staff only, never sent."""
    _need(staff)
    now = now or datetime.now(UTC)
    ticket = _ticket(conn, ticket_id)
    _log(conn, ticket, staff, now, text=_clean(text))
    conn.execute(update(complaint_t).where(complaint_t.c.id == ticket.id).values(updated_at=now))
    audit(conn, staff.id, "note", ticket.number, ip)
    return Done(frozenset())


def change_state(conn: Connection, ticket_id: int, staff: Staff, state: str, content: Content,
                 tz: ZoneInfo, ip: str | None = None, now: datetime | None = None) -> Done:
    """Move the ticket; the citizen hears of it, and is asked to rate when it closes."""
    _need(staff)
    cc = content.complaints
    assert cc is not None
    types = {s.id: s.type for s in cc.state}
    if state not in types:
        raise ActionError("status tidak dikenal")
    now = now or datetime.now(UTC)
    ticket = _ticket(conn, ticket_id)
    if ticket.state == state:
        return Done(frozenset())
    values: dict[str, Any] = {"state": state, "updated_at": now}
    closing = types[state] == "closed"
    if closing:
        values["closed_at"] = now
    elif types.get(ticket.state) == "closed":
        values["closed_at"] = None  # reopened
    if ticket.state == "baru" and not closing:  # verified: the follow-up clock starts
        values["due_on"] = add_working_days(now.astimezone(tz).date(),
                                            cc.follow_up_working_days, frozenset(cc.holidays))
    conn.execute(update(complaint_t).where(complaint_t.c.id == ticket.id).values(**values))
    _log(conn, ticket, staff, now, public=True, state_after=state,
         changes={"state": [ticket.state, state]})
    audit(conn, staff.id, "state", ticket.number, ip, before=ticket.state, after=state)
    labels = {s.id: s.label for s in cc.state}

    def make(language: str) -> Reply:
        lang = _lang(language)
        text = content.msg(lang, "ticket_state", number=ticket.number,
                           state=labels[state].get(lang))
        if not closing:
            return Reply(text)
        ask = content.msg(lang, "ticket_rate", number=ticket.number)
        return Reply(f"{text}\n\n{ask}", tuple(
            Option(RATING_TARGET.format(number=ticket.number, score=n), str(n))
            for n in range(1, 6)))

    return Done(notify_followers(conn, ticket.id, make, now))


def assign(conn: Connection, ticket_id: int, staff: Staff, assignee_id: int | None,
           ip: str | None = None, now: datetime | None = None) -> Done:
    _need(staff)
    now = now or datetime.now(UTC)
    ticket = _ticket(conn, ticket_id)
    if assignee_id is not None and conn.execute(select(staff_t.c.id).where(
            staff_t.c.id == assignee_id, staff_t.c.active.is_(True),
            staff_t.c.role != "viewer")).first() is None:
        raise ActionError("petugas tidak dikenal")
    if ticket.assignee_id == assignee_id:
        return Done(frozenset())
    conn.execute(update(complaint_t).where(complaint_t.c.id == ticket.id)
                 .values(assignee_id=assignee_id, updated_at=now))
    _log(conn, ticket, staff, now, changes={"assignee": [ticket.assignee_id, assignee_id]})
    audit(conn, staff.id, "assign", ticket.number, ip, assignee=assignee_id)
    return Done(frozenset())


def retag(conn: Connection, ticket_id: int, staff: Staff, category: str, dimension: str,
          content: Content, ip: str | None = None, now: datetime | None = None) -> Done:
    """Correct the automatic category and quality dimension."""
    _need(staff)
    cc = content.complaints
    assert cc is not None
    if category not in {c.id for c in cc.category} or dimension not in {
            d.id for d in cc.dimension}:
        raise ActionError("kategori atau dimensi tidak dikenal")
    now = now or datetime.now(UTC)
    ticket = _ticket(conn, ticket_id)
    changes = {k: [getattr(ticket, k), v] for k, v in
               (("category", category), ("dimension", dimension)) if getattr(ticket, k) != v}
    if not changes:
        return Done(frozenset())
    conn.execute(update(complaint_t).where(complaint_t.c.id == ticket.id)
                 .values(category=category, dimension=dimension, updated_at=now))
    _log(conn, ticket, staff, now, changes=changes)
    audit(conn, staff.id, "retag", ticket.number, ip, **{k: v[1] for k, v in changes.items()})
    return Done(frozenset())

