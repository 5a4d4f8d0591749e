"""Alerts for staff: an urgent ticket (being asked to pay), a deadline tomorrow, a deadline
passed. Each is a `staff_alert` row with a key that makes it happen once; the dashboard
lists them, and `deliver` sends them to staff Telegram chats when Telegram is configured.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from bot.models import (
    PRIORITY_NOTIFICATION,
    alert_t,
    complaint_t,
    contact_t,
    outbox_t,
    staff_t,
)
from bot.outbox import new_row
from flows.types import Reply

TEXTS = {
    "urgent": "MENDESAK: laporan {number} tentang biaya/pungli. Layanan Dukcapil gratis; "
              "mohon segera ditindaklanjuti.",
    "due_soon": "Pengingat: laporan {number} jatuh tempo {due}.",
    "overdue": "Lewat tenggat: laporan {number} seharusnya ditanggapi paling lambat {due}.",
}


def add(conn: Connection, kind: str, ticket_id: int, due_on: date, staff_id: int | None,
        now: datetime | None = None) -> bool:
    """Record an alert unless it exists; True when new."""
    key = f"{kind}:{ticket_id}:{due_on.isoformat()}:{staff_id or 'admins'}"
    if conn.execute(select(alert_t.c.id).where(alert_t.c.key == key)).first() is not None:
        return False
    conn.execute(insert(alert_t), {"key": key, "kind": kind, "complaint_id": ticket_id,
                                   "staff_id": staff_id, "created_at": now or datetime.now(UTC)})
    return True


def sweep(conn: Connection, open_states: list[str], today: date, horizon: date,
          now: datetime | None = None) -> int:
    """Deadline alerts for open tickets: one when the due date is at most `horizon` (the
    next working day; to the assignee, or admins when nobody is assigned) and one after it
    (to the assignee and admins)."""
    now = now or datetime.now(UTC)
    rows = conn.execute(
        select(complaint_t.c.id, complaint_t.c.due_on, complaint_t.c.assignee_id)
        .where(complaint_t.c.state.in_(open_states), complaint_t.c.due_on <= horizon,
               complaint_t.c.due_on >= today - timedelta(days=60))).all()
    made = 0
    for r in rows:
        if r.due_on < today:
            for who in {r.assignee_id, None}:
                made += add(conn, "overdue", r.id, r.due_on, who, now)
        else:
            made += add(conn, "due_soon", r.id, r.due_on, r.assignee_id, now)
    return made


def deliver(conn: Connection, telegram: bool, now: datetime | None = None) -> int:
    """Queue new alerts to the Telegram chats of their staff (or of every admin); without
    Telegram they stay on the dashboard only. Returns the messages queued."""
    now = now or datetime.now(UTC)
    pending = conn.execute(
        select(alert_t.c.id, alert_t.c.kind, alert_t.c.staff_id, complaint_t.c.number,
               complaint_t.c.due_on)
        .join(complaint_t, complaint_t.c.id == alert_t.c.complaint_id)
        .where(alert_t.c.notified_at.is_(None)).order_by(alert_t.c.id).limit(500)).all()
    if not pending:
        return 0
    queued = 0
    if telegram:
        chats = conn.execute(select(staff_t.c.id, staff_t.c.role, staff_t.c.telegram_chat_id)
                             .where(staff_t.c.active.is_(True),
                                    staff_t.c.telegram_chat_id.is_not(None))).all()
        for alert in pending:
            text = TEXTS[alert.kind].format(number=alert.number,
                                            due=alert.due_on.strftime("%d-%m-%Y"))
            for staff in chats:
                if staff.id == alert.staff_id or (alert.staff_id is None
                                                  and staff.role == "admin"):
                    _queue(conn, staff.telegram_chat_id, text, now)
                    queued += 1
    conn.execute(update(alert_t).where(alert_t.c.id.in_([a.id for a in pending]))
                 .values(notified_at=now))
    return queued


def _queue(conn: Connection, chat_id: str, text: str, now: datetime) -> None:
    contact: Any = conn.execute(select(contact_t.c.id).where(
        contact_t.c.channel == "telegram", contact_t.c.external_id == chat_id)).scalar()
    if contact is None:
        contact = conn.execute(insert(contact_t), {
            "channel": "telegram", "external_id": chat_id, "display_name": "staf",
            "language": "id", "opted_in": False, "created_at": now,
        }).inserted_primary_key[0]  # type: ignore[index]
    conn.execute(insert(outbox_t), new_row(contact, "telegram", Reply(text).to_dict(),
                                           PRIORITY_NOTIFICATION, now))
