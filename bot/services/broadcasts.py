"""Outreach broadcasts: compose, approve, schedule, deliver in batches, report.

Staff reach citizens who agreed to hear from the office ("every household needs a KK",
jemput bola days, disruptions). The dashboard and `lontar broadcast` call these functions;
the scheduler's `tick` turns a running broadcast into outbox rows a batch at a time, so a
100,000-recipient broadcast never sits in memory and a restart goes on from the cursor.
Each recipient is queued once: a `delivery` row per (broadcast, contact), unique, written
in the same transaction as the outbox row and the cursor. The outbox sends broadcast rows at
the lowest priority, outside quiet hours (bot/outbox.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from bot.models import (
    PRIORITY_BROADCAST,
    PRIORITY_NOTIFICATION,
    broadcast_t,
    contact_t,
    delivery_t,
    outbox_t,
)
from bot.outbox import (
    CANCELLED,
    FAILED,
    HELD,
    IN_FLIGHT,
    PENDING,
    SENDING,
    SENT,
    UNCONFIRMED,
    UNSENDABLE,
    new_row,
)
from bot.services.audience import Audience, size
from bot.services.audience import batch as audience_batch
from bot.services.staff import audit
from bot.wakeups import notify_at_commit
from flows.content import Content
from flows.screens import topic_target
from flows.types import Lang, Option, Reply

DRAFT, APPROVED, SCHEDULED, SENDING_B, PAUSED, DONE, CANCELLED_B = (
    "draft", "approved", "scheduled", "sending", "paused", "done", "cancelled")
TEXT_MAX = 1000  # WhatsApp: a body with buttons, and a template parameter, stay under 1024
CAPTION_MAX = 900  # Telegram: a photo caption is at most 1024 with the footer line
TITLE_MAX = 120
BUTTONS_MAX = 3  # WhatsApp reply buttons
BATCH = 1000  # contacts read and queued per transaction
WINDOW = 2000  # queued but unsent rows per broadcast before the next batch is added
RATE_WINDOW = timedelta(seconds=60)
OPEN = (PENDING, SENDING, IN_FLIGHT)


class BroadcastError(ValueError):
    """A request staff must correct; the message is shown to them (Indonesian)."""


CHANGED = "siaran baru saja diubah orang lain: muat ulang halaman lalu periksa lagi"


# --- composing and the life cycle -----------------------------------------------------------


def validate(content: Content, *, title: str, text_id: str, text_en: str | None,
             buttons: list[str], audience: Audience, image: str | None) -> None:
    problems = []
    if not title.strip() or len(title) > TITLE_MAX:
        problems.append(f"judul wajib diisi, paling banyak {TITLE_MAX} karakter")
    limit = CAPTION_MAX if image else TEXT_MAX
    for lang, text in (("id", text_id), ("en", text_en)):
        if lang == "id" and not (text or "").strip():
            problems.append("teks bahasa Indonesia wajib diisi")
        if text and len(text) > limit:
            problems.append(f"teks ({lang}) paling banyak {limit} karakter"
                            + (" karena ada gambar" if image else ""))
    if len(buttons) > BUTTONS_MAX:
        problems.append(f"paling banyak {BUTTONS_MAX} tombol")
    problems += [f"tombol: topik {b!r} tidak ada" for b in buttons if b not in content.all_topics]
    problems += audience.problems(content)
    if problems:
        raise BroadcastError("; ".join(problems))


def _composed(content: Content, *, title: str, text_id: str, text_en: str | None,
              buttons: list[str] | None, audience: Audience | None,
              image: str | None) -> dict[str, Any]:
    """The composed fields as stored, after `validate`: a new draft and an edited one pass
    through here, so an edit can never store what composing would refuse."""
    buttons, audience = list(buttons or []), audience or Audience()
    validate(content, title=title, text_id=text_id, text_en=text_en, buttons=buttons,
             audience=audience, image=image)
    return {"title": title.strip(), "text_id": text_id.strip(),
            "text_en": (text_en or "").strip() or None, "image": image, "buttons": buttons,
            "audience": audience.model_dump(mode="json")}


def create(conn: Connection, content: Content, *, title: str, text_id: str,
           text_en: str | None = None, buttons: list[str] | None = None,
           audience: Audience | None = None, image: str | None = None,
           notice_id: int | None = None, created_by: int | None = None,
           now: datetime) -> int:
    """Store a draft; it needs an admin's approval before it can be sent."""
    composed = _composed(content, title=title, text_id=text_id, text_en=text_en,
                         buttons=buttons, audience=audience, image=image)
    return int(conn.execute(insert(broadcast_t), composed | {
        "status": DRAFT, "notice_id": notice_id,
        "send_at": None, "created_by": created_by, "created_at": now, "approved_by": None,
        "approved_at": None, "cursor": 0, "queued": 0, "planned": 0, "skipped_blocked": 0,
        "skipped_opted_out": 0, "expanded_at": None, "started_at": None,
        "finished_at": None, "updated_at": now,
    }).inserted_primary_key[0])  # type: ignore[index]


@dataclass(frozen=True)
class Edit:
    """What `update_draft` did: the fields that differ now, and the picture the broadcast no
    longer uses (the caller removes its file after commit, if no other broadcast uses it)."""

    changed: tuple[str, ...]
    dropped_image: str | None


def update_draft(conn: Connection, content: Content, broadcast_id: int, *, title: str,
                 text_id: str, text_en: str | None, buttons: list[str] | None,
                 audience: Audience | None, image: str | None, staff_id: int | None,
                 now: datetime, ip: str | None = None) -> Edit:
    """Correct a draft: every composed field is given (the stored ones for what is not
    changing), checked as on creation. Only a draft, not yet approved: the admin approves a
    text, and that text is what goes out, so an approved broadcast is cancelled and composed
    again instead. The audit row names the fields changed, never their text."""
    row = get(conn, broadcast_id)
    if row.status != DRAFT:
        raise BroadcastError(_not_draft(broadcast_id, row.status))
    composed = _composed(content, title=title, text_id=text_id, text_en=text_en,
                         buttons=buttons, audience=audience, image=image)
    # the stored audience read through the model, so a filter added since is no change
    stored = {k: getattr(row, k) for k in composed} | {
        "audience": audience_of(row).model_dump(mode="json")}
    changed = tuple(k for k, v in composed.items() if stored[k] != v)
    if not changed:
        return Edit((), None)
    done = conn.execute(update(broadcast_t).where(broadcast_t.c.id == broadcast_id,
                                                  broadcast_t.c.status == DRAFT)
                        .values(updated_at=now, **{k: composed[k] for k in changed}))
    if not done.rowcount:  # approved or cancelled since it was read
        raise BroadcastError(_not_draft(broadcast_id, get(conn, broadcast_id).status))
    audit(conn, staff_id, "broadcast_edit", str(broadcast_id), ip, changed=list(changed))
    return Edit(changed, row.image if "image" in changed else None)


def _not_draft(broadcast_id: int, status: str) -> str:
    then = "buat siaran baru" if status in (DONE, CANCELLED_B) else "batalkan lalu buat lagi"
    return (f"siaran {broadcast_id} berstatus {status}: hanya draf yang belum disetujui yang "
            f"bisa diubah; {then}")


def get(conn: Connection, broadcast_id: int) -> Any:
    row = conn.execute(select(broadcast_t).where(broadcast_t.c.id == broadcast_id)).first()
    if row is None:
        raise BroadcastError(f"siaran {broadcast_id} tidak ada")
    return row


def listed(conn: Connection, limit: int = 100) -> list[Any]:
    return list(conn.execute(select(broadcast_t).order_by(broadcast_t.c.id.desc())
                             .limit(limit)))


def audience_of(row: Any) -> Audience:
    return Audience.model_validate(row.audience)


def _move(conn: Connection, broadcast_id: int, allowed: tuple[str, ...], now: datetime,
          seen: datetime | None = None, **values: Any) -> Any:
    """Change the status, if the broadcast is still in an allowed one when written (another
    process may have moved it since it was read) and, given `seen`, still as last seen."""
    row = get(conn, broadcast_id)
    if row.status not in allowed:
        raise BroadcastError(f"siaran {broadcast_id} berstatus {row.status}: tidak bisa")
    if seen is not None and row.updated_at != seen:
        raise BroadcastError(CHANGED)
    where = [broadcast_t.c.id == broadcast_id, broadcast_t.c.status.in_(allowed)]
    if seen is not None:
        where.append(broadcast_t.c.updated_at == row.updated_at)
    done = conn.execute(update(broadcast_t).where(*where).values(updated_at=now, **values))
    if not done.rowcount:
        raise BroadcastError(CHANGED)
    return row


def approve(conn: Connection, broadcast_id: int, staff_id: int | None, now: datetime,
            seen: datetime | None = None) -> None:
    """An admin's approval (the caller checks the role): only a draft, as it stands. A draft
    can be edited, so the dashboard passes `seen`, the draft's `updated_at` on the page the
    admin read: an edit since then refuses the approval instead of approving unread text."""
    _move(conn, broadcast_id, (DRAFT,), now, seen, status=APPROVED, approved_by=staff_id,
          approved_at=now)


def schedule(conn: Connection, content: Content, broadcast_id: int, now: datetime,
             at: datetime | None = None) -> int:
    """Send now or at `at` (UTC); returns the audience size at this moment."""
    if at is not None and at < now - timedelta(minutes=1):
        raise BroadcastError("waktu kirim sudah lewat")
    row = get(conn, broadcast_id)
    if row.status == DRAFT:
        raise BroadcastError("siaran belum disetujui admin")
    planned = size(conn, audience_of(row), content)
    _move(conn, broadcast_id, (APPROVED,), now, status=SCHEDULED, send_at=at or now,
          planned=planned)
    return planned


def pause(conn: Connection, broadcast_id: int, now: datetime) -> int:
    """Stop sending; queued rows are held (not lost) until resumed. Returns rows held."""
    _move(conn, broadcast_id, (SCHEDULED, SENDING_B), now, status=PAUSED)
    return _set_rows(conn, broadcast_id, (PENDING,), HELD, now)


def resume(conn: Connection, broadcast_id: int, now: datetime) -> int:
    row = _move(conn, broadcast_id, (PAUSED,), now)
    conn.execute(update(broadcast_t).where(broadcast_t.c.id == broadcast_id).values(
        status=SENDING_B if row.started_at is not None else SCHEDULED))
    return _set_rows(conn, broadcast_id, (HELD,), PENDING, now)


def cancel(conn: Connection, broadcast_id: int, now: datetime) -> int:
    """Nothing more goes out; rows already handed to a platform stay as they are."""
    _move(conn, broadcast_id, (DRAFT, APPROVED, SCHEDULED, SENDING_B, PAUSED), now,
          status=CANCELLED_B, finished_at=now)
    return _set_rows(conn, broadcast_id, (PENDING, HELD), CANCELLED, now)


def _set_rows(conn: Connection, broadcast_id: int, before: tuple[str, ...], after: str,
              now: datetime) -> int:
    done = conn.execute(update(outbox_t).where(outbox_t.c.broadcast_id == broadcast_id,
                                               outbox_t.c.status.in_(before))
                        .values(status=after, next_attempt_at=now))
    return int(done.rowcount or 0)


# --- the message ------------------------------------------------------------------------------


def message(row: Any, lang: Lang, content: Content) -> dict[str, Any]:
    """The outbox payload for a recipient in `lang`: text, how to stop, topic buttons."""
    text = row.text_en if lang == "en" and row.text_en else row.text_id
    text = f"{text}\n\n{content.msg(lang, 'broadcast_footer')}"
    options = tuple(Option(f"go:{t.to}", t.label)
                    for t in (topic_target(content, lang, b) for b in row.buttons
                              if b in content.all_topics))
    payload = Reply(text, options).to_dict()
    payload["category"] = "marketing"
    if row.image:
        payload["image"] = row.image
    return payload


def test_send(conn: Connection, content: Content, broadcast_id: int, channel: str,
              external_id: str, now: datetime, lang: Lang = "id") -> int:
    """Queue the message to one staff chat as it will go out (not counted in the report)."""
    row = get(conn, broadcast_id)
    found = conn.execute(select(contact_t.c.id).where(contact_t.c.channel == channel,
                                                      contact_t.c.external_id == external_id))
    contact_id = found.scalar()
    if contact_id is None:
        contact_id = conn.execute(insert(contact_t), {
            "channel": channel, "external_id": external_id, "language": lang,
            "opted_in": False, "created_at": now}).inserted_primary_key[0]  # type: ignore[index]
    payload = message(row, lang, content)
    payload["category"] = "utility"  # to staff: not outreach
    conn.execute(insert(outbox_t), new_row(int(contact_id), channel, payload,
                                           PRIORITY_NOTIFICATION, now))
    notify_at_commit(conn, {channel})  # `lontar broadcast test` runs outside the server
    return int(contact_id)


# --- delivery: called by the scheduler ------------------------------------------------------


def tick(conn: Connection, content: Content, now: datetime, *, batch: int = BATCH,
         window: int = WINDOW) -> set[str]:
    """Start what is due, queue the next batch of each running broadcast while its unsent
    rows are few, and finish what is done. Returns the channels given new rows."""
    conn.execute(update(broadcast_t).where(broadcast_t.c.status == SCHEDULED,
                                           broadcast_t.c.send_at <= now)
                 .values(status=SENDING_B, started_at=now, updated_at=now))
    channels: set[str] = set()
    running = list(conn.execute(select(broadcast_t).where(broadcast_t.c.status == SENDING_B)))
    for row in running:
        unsent = _count(conn, row.id, OPEN)
        if row.expanded_at is None and unsent < window:
            channels |= _expand(conn, content, row, now, batch)
        elif row.expanded_at is not None and unsent == 0:
            conn.execute(update(broadcast_t).where(broadcast_t.c.id == row.id)
                         .values(status=DONE, finished_at=now, updated_at=now))
    return channels


def _count(conn: Connection, broadcast_id: int, statuses: tuple[str, ...]) -> int:
    return int(conn.execute(select(func.count()).select_from(outbox_t).where(
        outbox_t.c.broadcast_id == broadcast_id, outbox_t.c.status.in_(statuses))).scalar_one())


def _expand(conn: Connection, content: Content, row: Any, now: datetime,
            batch: int) -> set[str]:
    """One batch of recipients into the outbox, with their delivery rows and the cursor, in
    the caller's transaction: a crash either keeps all of it or none."""
    contacts = conn.execute(audience_batch(audience_of(row), content, row.cursor, batch,
                                           row.created_at)).all()
    payloads: dict[str, dict[str, Any]] = {}
    deliveries, rows = [], []
    blocked = opted_out = 0
    for c in contacts:
        skipped = "blocked" if c.blocked_at is not None else (
            None if c.opted_in else "opted_out")
        if skipped is not None:
            blocked += skipped == "blocked"
            opted_out += skipped == "opted_out"
            deliveries.append({"broadcast_id": row.id, "contact_id": c.id, "outbox_id": None,
                               "skipped": skipped, "created_at": now, "opted_out_at": None})
            continue
        lang: Lang = "en" if c.language == "en" else "id"
        if lang not in payloads:
            payloads[lang] = message(row, lang, content)
        out = new_row(c.id, c.channel, payloads[lang], PRIORITY_BROADCAST, now)
        out["broadcast_id"] = row.id
        rows.append(out)
    if rows:
        ids = conn.execute(insert(outbox_t).returning(outbox_t.c.id,
                                                      sort_by_parameter_order=True),
                           rows).scalars().all()
        deliveries += [{"broadcast_id": row.id, "contact_id": r["contact_id"], "outbox_id": i,
                        "skipped": None, "created_at": now, "opted_out_at": None}
                       for r, i in zip(rows, ids, strict=True)]
    if deliveries:
        conn.execute(insert(delivery_t), deliveries)
    conn.execute(update(broadcast_t).where(broadcast_t.c.id == row.id).values(
        cursor=contacts[-1].id if contacts else row.cursor,
        queued=broadcast_t.c.queued + len(rows),
        skipped_blocked=broadcast_t.c.skipped_blocked + blocked,
        skipped_opted_out=broadcast_t.c.skipped_opted_out + opted_out,
        expanded_at=now if len(contacts) < batch else None, updated_at=now))
    return {r["channel"] for r in rows}


# --- progress and reports ---------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    status: str
    planned: int
    queued: int
    sent: int
    failed: int
    blocked: int
    opted_out: int
    unsendable: int
    unconfirmed: int
    waiting: int  # queued, not yet sent (held while paused included)
    cancelled: int
    opt_outs_after: int  # contacts who opted out or blocked within 72 h of receiving it
    rate_per_minute: float
    eta_seconds: float | None

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.blocked + self.opted_out + self.unsendable \
            + self.unconfirmed

    def reasons(self) -> dict[str, int]:
        """Counts per outcome, for the report and its CSV."""
        return {"sent": self.sent, "failed": self.failed, "blocked": self.blocked,
                "opted_out": self.opted_out, "unsendable": self.unsendable,
                "unconfirmed": self.unconfirmed, "waiting": self.waiting,
                "cancelled": self.cancelled}


def progress(conn: Connection, broadcast_id: int, now: datetime) -> Progress:
    row = get(conn, broadcast_id)
    counts: dict[tuple[str, str | None], int] = {}
    for status, reason, count in conn.execute(
            select(outbox_t.c.status, outbox_t.c.unsendable_reason, func.count())
            .where(outbox_t.c.broadcast_id == broadcast_id)
            .group_by(outbox_t.c.status, outbox_t.c.unsendable_reason)):
        key = (status, reason if reason in ("blocked", "opted_out") else None)
        counts[key] = counts.get(key, 0) + int(count)

    def n(status: str, reason: str | None = None) -> int:
        return counts.get((status, reason), 0)

    recent = int(conn.execute(select(func.count()).select_from(outbox_t).where(
        outbox_t.c.broadcast_id == broadcast_id, outbox_t.c.status == SENT,
        outbox_t.c.sent_at >= now - RATE_WINDOW)).scalar_one())
    opt_outs = int(conn.execute(select(func.count()).select_from(delivery_t).where(
        delivery_t.c.broadcast_id == broadcast_id,
        delivery_t.c.opted_out_at.is_not(None))).scalar_one())
    waiting = n(PENDING) + n(SENDING) + n(IN_FLIGHT) + n(HELD)
    rate = recent * 60 / RATE_WINDOW.total_seconds()
    expected = max(row.planned - row.skipped_blocked - row.skipped_opted_out, row.queued)
    left = max(expected - (row.queued - waiting), 0) if row.status == SENDING_B else 0
    eta = left / (rate / 60) if rate > 0 and left else (0.0 if row.status == DONE else None)
    return Progress(
        status=row.status, planned=row.planned, queued=row.queued, sent=n(SENT),
        failed=n(FAILED),
        blocked=row.skipped_blocked + n(FAILED, "blocked"),
        opted_out=row.skipped_opted_out + n(FAILED, "opted_out"),
        unsendable=n(UNSENDABLE), unconfirmed=n(UNCONFIRMED), waiting=waiting,
        cancelled=n(CANCELLED), opt_outs_after=opt_outs, rate_per_minute=rate,
        eta_seconds=eta)


def report_rows(conn: Connection, broadcast_id: int) -> Iterator[dict[str, Any]]:
    """One row per recipient, read in pages (a 100,000-row report never sits in memory).
    Contacts appear by internal id and channel only: no phone numbers leave the server."""
    get(conn, broadcast_id)
    after = 0
    while True:
        page = conn.execute(
            select(delivery_t.c.id, delivery_t.c.contact_id, delivery_t.c.skipped,
                   delivery_t.c.opted_out_at, outbox_t.c.channel, outbox_t.c.status,
                   outbox_t.c.unsendable_reason, outbox_t.c.sent_at, outbox_t.c.template)
            .select_from(delivery_t.outerjoin(outbox_t,
                                              outbox_t.c.id == delivery_t.c.outbox_id))
            .where(delivery_t.c.broadcast_id == broadcast_id, delivery_t.c.id > after)
            .order_by(delivery_t.c.id).limit(1000)).all()
        if not page:
            return
        for r in page:
            outcome = f"skipped_{r.skipped}" if r.skipped else (
                r.unsendable_reason if r.status == FAILED
                and r.unsendable_reason in ("blocked", "opted_out") else r.status)
            yield {"contact_id": r.contact_id, "channel": r.channel or "",
                   "outcome": outcome, "sent_at": r.sent_at.isoformat() if r.sent_at else "",
                   "whatsapp_template": r.template or "",
                   "opted_out_after": r.opted_out_at.isoformat() if r.opted_out_at else ""}
        after = page[-1].id


def reach(conn: Connection, content: Content, audience: Audience) -> int:
    """The audience size shown before sending."""
    return size(conn, audience, content)


