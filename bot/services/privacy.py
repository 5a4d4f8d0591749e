"""Personal data (UU 27/2022): erasure on the citizen's request, export for an access
request, and retention.

`erase` runs in the turn's own transaction when a citizen confirms "hapus data saya"
(flows/privacy.py emits `DeleteMyData`). Deleted: the conversation state, every stored
inbound message but the one being answered (kept, with its platform id, so a redelivered
webhook is still recognised), replies and notifications queued or sent to the chat,
application subscriptions, the look-up guard, topics and tags. The contact row stays, with
nothing personal left on it (no name, no area, opted out): the confirmation reply is sent
through it, broadcast deliveries point at it, and it is what keeps the chat out of outreach
from now on. Complaint tickets are kept for the office's service record (a public-service
task, Ps 15 limits erasure there), but anonymised as domain.md §5 asks: the text stays, the
identity goes (no contact, no name, identity "anonymous", no following chat), and the
ticket's history notes the change. Broadcast rows are the office's text, not the
citizen's: kept for the broadcast's report, and cancelled if still queued. SKM answers
never had a link to anyone. The request itself is logged in the audit log (Ps 14).

`purge_inbound` and `purge_attachments` enforce retention (bot/jobs.py runs them daily).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, union, update

from bot.models import (
    application_t,
    broadcast_t,
    complaint_t,
    contact_t,
    conversation_t,
    delivery_t,
    follower_t,
    guard_t,
    inbound_t,
    outbox_t,
    subscription_t,
    tag_t,
    topic_t,
    update_t,
)
from bot.outbox import CANCELLED, HELD, PENDING
from bot.services import consent

log = logging.getLogger(__name__)

PURGE_BATCH = 5000  # inbound rows deleted per transaction by the retention job


@dataclass(frozen=True)
class Erased:
    inbound: int
    outbox: int
    complaints: int
    subscriptions: int


def erase(conn: Connection, contact_id: int, at: datetime,
          keep_inbound_id: int | None = None) -> Erased:
    """Delete what is stored about one contact (see the module docstring for what stays)."""
    cid = contact_id
    tickets = list(conn.execute(union(
        select(complaint_t.c.id).where(complaint_t.c.contact_id == cid),
        select(follower_t.c.complaint_id).where(follower_t.c.contact_id == cid))).scalars())
    for row in conn.execute(select(complaint_t.c.id, complaint_t.c.identity)
                            .where(complaint_t.c.id.in_(tickets))).all():
        conn.execute(update(complaint_t).where(complaint_t.c.id == row.id).values(
            contact_id=None, display_name=None, identity="anonymous"))
        conn.execute(insert(update_t), {
            "complaint_id": row.id, "author": "system", "staff_id": None, "public": False,
            "text": None, "state_after": None, "created_at": at,
            "changes": {"identity": [row.identity, "anonymous"]}})
    conn.execute(delete(follower_t).where(follower_t.c.contact_id == cid))
    subscriptions = conn.execute(
        delete(subscription_t).where(subscription_t.c.contact_id == cid)).rowcount
    for table in (guard_t, topic_t, tag_t, conversation_t):
        conn.execute(delete(table).where(table.c.contact_id == cid))
    outbox = conn.execute(delete(outbox_t).where(  # replies and notifications: its chat
        outbox_t.c.contact_id == cid, outbox_t.c.broadcast_id.is_(None))).rowcount
    conn.execute(update(outbox_t).where(
        outbox_t.c.contact_id == cid, outbox_t.c.broadcast_id.is_not(None),
        outbox_t.c.status.in_((PENDING, HELD))).values(status=CANCELLED))
    gone = delete(inbound_t).where(inbound_t.c.contact_id == cid)
    if keep_inbound_id is not None:
        gone = gone.where(inbound_t.c.id != keep_inbound_id)
    inbound = conn.execute(gone).rowcount
    consent.opt_out(conn, cid, at)
    conn.execute(update(contact_t).where(contact_t.c.id == cid).values(
        display_name=None, kecamatan=None, kelurahan=None))
    from bot.services.staff import audit  # late: argon2 is not needed on the chat path

    audit(conn, None, "privacy_erase", f"contact:{cid}", inbound=inbound, outbox=outbox,
          complaints=len(tickets), subscriptions=subscriptions)
    log.info("contact %d: personal data erased on request", cid)
    return Erased(inbound, outbox, len(tickets), subscriptions)


# -- export ---------------------------------------------------------------------------------


def find_contact(conn: Connection, spec: str) -> int | None:
    """A contact by internal id ("42") or by "channel:external_id" ("telegram:5001")."""
    spec = spec.strip()
    channel, sep, external = spec.partition(":")
    if not sep:
        if not spec.isdigit():
            return None
        query = select(contact_t.c.id).where(contact_t.c.id == int(spec))
    else:
        query = select(contact_t.c.id).where(contact_t.c.channel == channel,
                                             contact_t.c.external_id == external)
    found: int | None = conn.execute(query).scalar()
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if hasattr(value, "isoformat"):  # a date
        return value.isoformat()
    return value


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in conn.execute(query).mappings()]


def export(conn: Connection, contact_id: int) -> dict[str, Any]:
    """Everything stored about one contact, as plain JSON-ready data (an access request,
    Ps 7/13). Internal ticket notes are included: staff decide what to hand over."""
    cid = contact_id
    contact = _rows(conn, select(contact_t).where(contact_t.c.id == cid))
    if not contact:
        raise LookupError(f"no contact {cid}")
    followed = select(follower_t.c.complaint_id).where(follower_t.c.contact_id == cid)
    complaints = _rows(conn, select(complaint_t).where(or_(
        complaint_t.c.contact_id == cid, complaint_t.c.id.in_(followed)))
        .order_by(complaint_t.c.id))
    for ticket in complaints:
        ticket["following"] = conn.execute(select(follower_t.c.contact_id).where(
            follower_t.c.complaint_id == ticket["id"],
            follower_t.c.contact_id == cid)).first() is not None
        ticket["updates"] = _rows(conn, select(update_t).where(
            update_t.c.complaint_id == ticket["id"]).order_by(update_t.c.id))
    c = contact[0]
    return {
        "contact": c,
        "consent": {"opted_in": c["opted_in"], "consent_at": c["consent_at"],
                    "opted_out_at": c["opted_out_at"], "blocked_at": c["blocked_at"]},
        "conversation": next(iter(_rows(conn, select(conversation_t).where(
            conversation_t.c.contact_id == cid))), None),
        "inbound_messages": _rows(conn, select(inbound_t).where(
            inbound_t.c.contact_id == cid).order_by(inbound_t.c.id)),
        "outbox_messages": _rows(conn, select(outbox_t).where(
            outbox_t.c.contact_id == cid).order_by(outbox_t.c.id)),
        "complaints": complaints,
        "application_subscriptions": _rows(conn, select(
            subscription_t, application_t.c.reg_no, application_t.c.service,
            application_t.c.office, application_t.c.status)
            .join(application_t, application_t.c.id == subscription_t.c.application_id)
            .where(subscription_t.c.contact_id == cid)
            .order_by(subscription_t.c.created_at)),
        "lookup_guard": next(iter(_rows(conn, select(guard_t).where(
            guard_t.c.contact_id == cid))), None),
        "deliveries": _rows(conn, select(delivery_t, broadcast_t.c.title)
                            .join(broadcast_t, broadcast_t.c.id == delivery_t.c.broadcast_id)
                            .where(delivery_t.c.contact_id == cid).order_by(delivery_t.c.id)),
        "topics": _rows(conn, select(topic_t).where(topic_t.c.contact_id == cid)
                        .order_by(topic_t.c.topic)),
        "tags": _rows(conn, select(tag_t).where(tag_t.c.contact_id == cid)
                      .order_by(tag_t.c.tag)),
    }


# -- retention ------------------------------------------------------------------------------


def purge_inbound(conn: Connection, before: datetime, limit: int = PURGE_BATCH) -> int:
    """Delete up to `limit` processed inbound messages received before `before`; the replies
    to them stay, unlinked. Call again while it returns `limit`."""
    ids = list(conn.execute(
        select(inbound_t.c.id).where(inbound_t.c.received_at < before,
                                     inbound_t.c.processed_at.is_not(None))
        .order_by(inbound_t.c.id).limit(limit)).scalars())
    if not ids:
        return 0
    conn.execute(update(outbox_t).where(outbox_t.c.inbound_id.in_(ids)).values(inbound_id=None))
    return conn.execute(delete(inbound_t).where(inbound_t.c.id.in_(ids))).rowcount


def purge_attachments(conn: Connection, data_dir: Path, before: datetime,
                      open_states: list[str]) -> int:
    """Delete files under data_dir/attachments last written before `before`, except those a
    still-open ticket refers to; empty folders go too. Returns the files deleted."""
    root = data_dir / "attachments"
    if not root.is_dir():
        return 0
    keep: set[Path] = set()
    for photos in conn.execute(select(complaint_t.c.photos).where(
            complaint_t.c.state.in_(open_states))).scalars():
        keep.update((data_dir / str(p)).resolve() for p in photos or ())
    cutoff = before.timestamp()
    deleted = 0
    for path in sorted(root.rglob("*"), reverse=True):  # files before their folders
        try:
            if path.is_dir():
                if not any(path.iterdir()):
                    path.rmdir()
            elif path.stat().st_mtime < cutoff and path.resolve() not in keep:
                path.unlink()
                deleted += 1
        except OSError:  # gone meanwhile, or not ours to remove: the next run tries again
            log.warning("retention: could not remove an attachment file")
    return deleted
