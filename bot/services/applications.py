"""Applications (permohonan): one service layer for the CSV import, the dashboard and the
staff API. Every input is checked in full before anything is written, so a bad row or
payload leaves the database as it was; every status change is a history row and a
notification, in the same transaction, to every chat that asked to follow it.

Secrets: the NIK is stored only as HMAC-SHA256 under the server secret (look-ups compare
HMACs); the verification answer as an HMAC bound to the registration number, so equal
birth dates do not give equal hashes. A keyed hash, not argon2: the key is the protection
(a copy of the database without it reveals nothing), and an import of 100,000 rows must
take seconds, not hours. Guessing through the chat is stopped by the lock-out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from bot.models import (
    PRIORITY_NOTIFICATION,
    app_update_t,
    application_t,
    contact_t,
    outbox_t,
    subscription_t,
)
from bot.outbox import new_row
from bot.wakeups import notify_at_commit
from flows import nik as niks
from flows.content import Content
from flows.status import REG_NO, normalise_answer
from flows.types import Lang, Option, Reply

FIELDS = ("nomor_registrasi", "layanan", "kantor", "status", "alasan", "nik",
          "tanggal_lahir")
REQUIRED = ("nomor_registrasi", "layanan", "kantor", "status")
CHUNK = 500


def keyed(secret: str, purpose: str, value: str) -> str:
    return hmac.new(secret.encode(), f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def verify_hash(secret: str, reg_no: str, kind: str, answer: str) -> str | None:
    value = normalise_answer(kind, answer)
    return keyed(secret, f"verify:{kind}:{reg_no.upper()}", value) if value else None


@dataclass(frozen=True)
class Item:
    """One application as an input row, already checked."""

    reg_no: str
    service: str
    office: str
    status: str
    reason: str | None
    nik_hmac: str | None
    verify_kind: str
    verify_hmac: str


Problem = tuple[str, str]  # (field, what is wrong)


def check(raw: Mapping[str, Any], content: Content, secret: str,
          today: date) -> tuple[Item | None, list[Problem]]:
    """Validate one input (a CSV row or an API object); never raises."""
    problems: list[Problem] = []
    ac = content.applications
    assert ac is not None

    def text(name: str, limit: int) -> str:
        value = raw.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            problems.append((name, "must be text"))
            return ""
        value = value.strip()
        if len(value) > limit:
            problems.append((name, f"longer than {limit} characters"))
        return value

    reg_no = text("nomor_registrasi", 64).upper()
    service, office = text("layanan", 64), text("kantor", 64)
    status, reason = text("status", 32), text("alasan", 500)
    raw_nik, birth = text("nik", 40), text("tanggal_lahir", 10)
    for name, value in (("nomor_registrasi", reg_no), ("layanan", service),
                        ("kantor", office), ("status", status)):
        if not value and not any(p[0] == name for p in problems):
            problems.append((name, "required"))
    if reg_no and not REG_NO.match(reg_no):
        problems.append(("nomor_registrasi", "3-40 letters, digits, / . _ -"))
    if service and service not in content.services:
        problems.append(("layanan", f"unknown service {service[:64]!r}"))
    if office and office not in {o.id for o in content.offices}:
        problems.append(("kantor", f"unknown office {office[:64]!r}"))
    st = ac.get(status) if status else None
    if status and st is None:
        problems.append(("status", f"unknown status {status[:32]!r}"))
    if st is not None and st.type in ("action", "closed") and not reason:
        problems.append(("alasan", f"required for status {status}"))
    nik_hmac = None
    last4 = ""
    if raw_nik:
        checked = niks.validate(raw_nik, today=today)
        if checked.nik is None:
            problems.append(("nik", f"not a valid NIK ({checked.problem})"))  # never echoed
        else:
            nik_hmac, last4 = keyed(secret, "nik", checked.nik), checked.nik[-4:]
    if birth:
        try:
            born = date.fromisoformat(birth)
            if born > today or born.year < 1900:
                problems.append(("tanggal_lahir", "not a possible birth date"))
        except ValueError:
            problems.append(("tanggal_lahir", "not a date (YYYY-MM-DD)"))
    if not birth and not raw_nik:
        problems.append(("tanggal_lahir", "a birth date or a NIK is needed for verification"))
    if problems:
        return None, problems
    kind, answer = ("birth_date", birth) if birth else ("nik_last4", last4)
    hashed = verify_hash(secret, reg_no, kind, answer)
    assert hashed is not None
    return Item(reg_no, service, office, status, reason or None, nik_hmac, kind, hashed), []


@dataclass
class Applied:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    notified: int = 0
    channels: set[str] = field(default_factory=set)


def apply(conn: Connection, items: Sequence[Item], content: Content, *, source: str,
          staff_id: int | None = None, now: datetime | None = None) -> Applied:
    """Create or update applications (matched by registration number); status changes get
    a history row and notify subscribers. Call only with checked items."""
    now = now or datetime.now(UTC)
    result = Applied()
    a = application_t.c
    changed: list[tuple[int, str | None, Item]] = []
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        known = {r.reg_no: r for r in conn.execute(
            select(a.id, a.reg_no, a.service, a.office, a.status, a.reason, a.nik_hmac,
                   a.verify_kind, a.verify_hmac, a.status_changed_at, a.reminded_at)
            .where(a.reg_no.in_([i.reg_no for i in chunk])))}
        new = [i for i in chunk if i.reg_no not in known]
        if new:
            conn.execute(insert(application_t), [
                {"reg_no": i.reg_no, "service": i.service, "office": i.office,
                 "status": i.status, "reason": i.reason, "nik_hmac": i.nik_hmac,
                 "verify_kind": i.verify_kind, "verify_hmac": i.verify_hmac,
                 "status_changed_at": now, "created_at": now, "updated_at": now}
                for i in new])
            ids = {r.reg_no: r.id for r in conn.execute(select(a.reg_no, a.id).where(
                a.reg_no.in_([i.reg_no for i in new])))}
            changed += [(ids[i.reg_no], None, i) for i in new]
            result.created += len(new)
        edits = []
        for i in chunk:
            old = known.get(i.reg_no)
            if old is None:
                continue
            same = (old.service, old.office, old.status, old.reason, old.nik_hmac,
                    old.verify_kind, old.verify_hmac) == (
                i.service, i.office, i.status, i.reason, i.nik_hmac, i.verify_kind,
                i.verify_hmac)
            if same:
                result.unchanged += 1
                continue
            moved = old.status != i.status
            edits.append({"_id": old.id, "service": i.service, "office": i.office,
                          "status": i.status, "reason": i.reason, "nik_hmac": i.nik_hmac,
                          "verify_kind": i.verify_kind, "verify_hmac": i.verify_hmac,
                          "status_changed_at": now if moved else old.status_changed_at,
                          "updated_at": now,
                          # a new status starts a new reminder period; other edits do not
                          "reminded_at": None if moved else old.reminded_at})
            if moved:
                changed.append((old.id, old.status, i))
            result.updated += 1
        if edits:
            conn.execute(update(application_t).where(a.id == bindparam("_id")), edits)
    if changed:
        conn.execute(insert(app_update_t), [
            {"application_id": app_id, "status_before": before, "status_after": i.status,
             "reason": i.reason, "staff_id": staff_id, "source": source, "created_at": now}
            for app_id, before, i in changed])
        moved_ids = {app_id: i for app_id, before, i in changed if before is not None}
        result.notified, result.channels = notify(conn, moved_ids, content, now)
    return result


def office_label(content: Content, lang: Lang, office: str) -> str:
    return next((o.label.get(lang) for o in content.offices if o.id == office), office)


def next_step(content: Content, lang: Lang, status: str, reason: str | None,
              office: str) -> str:
    """The status's plain words on what happens now, with the office and reason filled."""
    ac = content.applications
    assert ac is not None
    st = ac.get(status)
    if st is None:
        return ""
    return st.next.get(lang).format(office=office_label(content, lang, office),
                                    reason=reason or "-")


def status_text(content: Content, lang: Lang, reg_no: str, status: str, reason: str | None,
                office: str) -> str:
    """What a citizen reads about one application's status (look-up and notification)."""
    ac = content.applications
    assert ac is not None
    st = ac.get(status)
    return content.msg(lang, "application_status", number=reg_no,
                       status=st.label.get(lang) if st is not None else status,
                       next=next_step(content, lang, status, reason, office))


def notification(content: Content, lang: Lang, reg_no: str, status: str, reason: str | None,
                 office: str) -> Reply:
    """A pushed change: the status and a link to stop these notifications. No survey button:
    the reminder sweep (`application_reminders`) sends one invitation per collection."""
    return Reply(status_text(content, lang, reg_no, status, reason, office),
                 (Option(f"go:p:stop:{reg_no}", content.msg(lang, "opt_stop_updates")),))


def notify(conn: Connection, items: Mapping[int, Item], content: Content,
           now: datetime) -> tuple[int, set[str]]:
    """Queue the new status to every active subscriber of these applications."""
    def build(app_id: int, lang: Lang) -> Reply:
        i = items[app_id]
        return notification(content, lang, i.reg_no, i.status, i.reason, i.office)

    return queue_to_subscribers(conn, list(items), build, now)


def queue_to_subscribers(conn: Connection, app_ids: Sequence[int],
                         build: Callable[[int, Lang], Reply],
                         now: datetime) -> tuple[int, set[str]]:
    """One message per active subscriber of these applications, in the contact's language
    (built once per application and language): the messages queued and their channels."""
    rows: list[dict[str, Any]] = []
    s, c = subscription_t.c, contact_t.c
    for start in range(0, len(app_ids), CHUNK):
        built: dict[tuple[int, Lang], dict[str, Any]] = {}
        for sub in conn.execute(
                select(s.application_id, c.id, c.channel, c.language)
                .join(contact_t, c.id == s.contact_id)
                .where(s.application_id.in_(app_ids[start:start + CHUNK]),
                       s.stopped_at.is_(None))):
            lang: Lang = "en" if sub.language == "en" else "id"
            key = (sub.application_id, lang)
            if key not in built:
                built[key] = build(sub.application_id, lang).to_dict()
            rows.append(new_row(sub.id, sub.channel, built[key], PRIORITY_NOTIFICATION, now))
    channels = {r["channel"] for r in rows}
    if rows:
        conn.execute(insert(outbox_t), rows)
        notify_at_commit(conn, channels)  # an import from the CLI wakes the leader too
    return len(rows), channels


def check_all(rows: Iterable[tuple[int, Mapping[str, Any]]], content: Content, secret: str,
              today: date) -> tuple[list[Item], list[tuple[int, str, str]]]:
    """Check many inputs keyed by their line (or index); duplicates of a registration
    number are errors on the later line."""
    items: list[Item] = []
    errors: list[tuple[int, str, str]] = []
    seen: dict[str, int] = {}
    for line, raw in rows:
        item, problems = check(raw, content, secret, today)
        errors += [(line, f, p) for f, p in problems]
        if item is None:
            continue
        if item.reg_no in seen:
            errors.append((line, "nomor_registrasi",
                           f"duplicate of line {seen[item.reg_no]}"))
            continue
        seen[item.reg_no] = line
        items.append(item)
    return items, errors


@dataclass(frozen=True)
class Changed:
    """The outcome of one status change: what it was, and who was told."""

    reg_no: str
    status_before: str
    status: str
    changed: bool
    notified: int = 0
    channels: frozenset[str] = frozenset()


def check_change(status: Any, reason: Any, content: Content) -> list[Problem]:
    """Check a status change (dashboard form or API payload) before anything is written."""
    ac = content.applications
    assert ac is not None
    problems: list[Problem] = []
    if not isinstance(status, str) or not status.strip():
        problems.append(("status", "required, text"))
    elif ac.get(status.strip()) is None:
        problems.append(("status", f"unknown status {status.strip()[:32]!r}"))
    if reason is not None and not isinstance(reason, str):
        problems.append(("alasan", "must be text"))
    elif isinstance(reason, str) and len(reason.strip()) > 500:
        problems.append(("alasan", "longer than 500 characters"))
    if not problems:
        st = ac.get(status.strip())
        if st is not None and st.type in ("action", "closed") and not (reason or "").strip():
            problems.append(("alasan", f"required for status {status.strip()}"))
    return problems


def change_status(conn: Connection, reg_no: str, status: str, reason: str | None,
                  content: Content, *, source: str, staff_id: int | None = None,
                  now: datetime | None = None) -> Changed | None:
    """Move one application to `status` (already checked with `check_change`): a history row
    and a notification to every subscriber, in the caller's transaction. None if there is no
    such application. The same status and reason again changes nothing and tells no one."""
    now = now or datetime.now(UTC)
    a = application_t.c
    row = conn.execute(select(a.id, a.reg_no, a.service, a.office, a.status, a.reason)
                       .where(a.reg_no == reg_no.strip().upper())).first()
    if row is None:
        return None
    status, reason = status.strip(), (reason or "").strip() or None
    if (row.status, row.reason) == (status, reason):
        return Changed(row.reg_no, row.status, status, changed=False)
    moved = row.status != status
    values: dict[str, Any] = {"status": status, "reason": reason, "updated_at": now}
    if moved:
        values.update(status_changed_at=now, reminded_at=None)
    conn.execute(update(application_t).where(a.id == row.id).values(**values))
    conn.execute(insert(app_update_t), {
        "application_id": row.id, "status_before": row.status, "status_after": status,
        "reason": reason, "staff_id": staff_id, "source": source, "created_at": now})
    item = Item(row.reg_no, row.service, row.office, status, reason, None, "", "")
    notified, channels = notify(conn, {row.id: item}, content, now)
    return Changed(row.reg_no, row.status, status, True, notified, frozenset(channels))
