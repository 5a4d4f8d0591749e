"""Consent to outreach: the one place a contact opts in, opts out or is found unreachable.

Every form of "no more messages" ends here: the citizen's choice in the chat (`/berhenti`,
"stop", the settings), a Telegram block, WhatsApp's marketing stop button and its error
131050. An opt-out or block within `ATTRIBUTION` of a broadcast reaching the contact is
counted against that broadcast, so staff see which outreach drove people away.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select, update

from bot.models import contact_t, delivery_t

ATTRIBUTION = timedelta(hours=72)


def opt_in(conn: Connection, contact_id: int, now: datetime) -> None:
    conn.execute(update(contact_t).where(contact_t.c.id == contact_id)
                 .values(opted_in=True, consent_at=now))


def opt_out(conn: Connection, contact_id: int, now: datetime) -> None:
    conn.execute(update(contact_t).where(contact_t.c.id == contact_id)
                 .values(opted_in=False, opted_out_at=now))
    _attribute(conn, contact_id, now)


def declined(conn: Connection, contact_id: int, now: datetime) -> None:
    """Said no when first asked: not an opt-out of any broadcast, just no consent."""
    conn.execute(update(contact_t).where(contact_t.c.id == contact_id)
                 .values(opted_in=False, opted_out_at=now))


def blocked(conn: Connection, contact_id: int, now: datetime) -> None:
    """The platform says the contact blocked Lontar or is gone (deactivated)."""
    done = conn.execute(update(contact_t).where(contact_t.c.id == contact_id,
                                                contact_t.c.blocked_at.is_(None))
                        .values(blocked_at=now))
    if done.rowcount:
        _attribute(conn, contact_id, now)


def unblocked(conn: Connection, contact_id: int) -> None:
    conn.execute(update(contact_t).where(contact_t.c.id == contact_id)
                 .values(blocked_at=None))


def _attribute(conn: Connection, contact_id: int, now: datetime) -> None:
    """Count the opt-out against the latest broadcast queued to the contact, if recent."""
    latest = conn.execute(
        select(func.max(delivery_t.c.id))
        .where(delivery_t.c.contact_id == contact_id, delivery_t.c.skipped.is_(None),
               delivery_t.c.created_at >= now - ATTRIBUTION)).scalar()
    if latest is not None:
        conn.execute(update(delivery_t).where(delivery_t.c.id == latest,
                                              delivery_t.c.opted_out_at.is_(None))
                     .values(opted_out_at=now))
