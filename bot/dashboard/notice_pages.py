"""Service notices in the dashboard: every role sees the current and upcoming disruptions;
staff and admins add one (office, service, text, start and expected end in office time),
end one early, or turn one into a draft broadcast to the kecamatan it affects. Each change is
one transaction with its audit row (routes of the dashboard).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import Connection, select

from bot.models import notice_t, staff_t
from bot.services import broadcasts, notices
from bot.services import staff as accounts
from bot.services.audience import Audience
from bot.services.broadcasts import BroadcastError
from bot.services.staff import Session
from flows.content import Content
from flows.types import Lang

if TYPE_CHECKING:
    from bot.dashboard.server import Dashboard

LOCAL = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends
NOT_FOUND = "Pemberitahuan tidak ditemukan atau sudah berakhir."


def add_routes(d: Dashboard, app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/notices", d._guard(lambda req, s: list_page(d, req, s)))
    r.add_post("/admin/notices", d._guard(lambda req, s: add(d, req, s), act=True))
    r.add_post(r"/admin/notices/{id:\d{1,12}}/end",
               d._guard(lambda req, s: end(d, req, s), act=True))
    r.add_post(r"/admin/notices/{id:\d{1,12}}/broadcast",
               d._guard(lambda req, s: broadcast(d, req, s), act=True))


@dataclass
class NoticeForm:
    """The add form as typed (re-shown on an error) and, when valid, the values to store."""

    office: str = ""
    service: str = ""
    text: str = ""
    text_en: str = ""
    mulai: str = ""
    selesai: str = ""
    errors: list[str] = field(default_factory=list)
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @classmethod
    def blank(cls, now: datetime, tz: ZoneInfo) -> NoticeForm:
        return cls(mulai=now.astimezone(tz).strftime(LOCAL))

    @classmethod
    def parse(cls, form: MultiDictProxy[Any], content: Content, tz: ZoneInfo,
              now: datetime) -> NoticeForm:
        f = cls(office=str(form.get("office", ""))[:64], service=str(form.get("service", ""))[:64],
                text=str(form.get("text", ""))[:2000].strip(),
                text_en=str(form.get("text_en", ""))[:2000].strip(),
                mulai=str(form.get("mulai", ""))[:32].strip(),
                selesai=str(form.get("selesai", ""))[:32].strip())
        if f.office and f.office not in {o.id for o in content.offices}:
            f.errors.append("Pilih kantor dari daftar.")
        if f.service and f.service not in content.services:
            f.errors.append("Pilih layanan dari daftar.")
        if not f.text:
            f.errors.append("Isi pemberitahuan wajib diisi.")
        elif len(f.text) > notices.TEXT_MAX:
            f.errors.append(f"Isi pemberitahuan paling banyak {notices.TEXT_MAX} karakter.")
        if len(f.text_en) > notices.TEXT_MAX:
            f.errors.append(f"Teks bahasa Inggris paling banyak {notices.TEXT_MAX} karakter.")
        start = _local(f.mulai, tz) if f.mulai else now
        finish = _local(f.selesai, tz) if f.selesai else None
        if start is None:
            f.errors.append("Waktu mulai tidak valid.")
        if finish is None:
            f.errors.append("Perkiraan selesai wajib diisi dengan tanggal dan jam yang valid.")
        elif start is not None:
            if finish <= start:
                f.errors.append("Perkiraan selesai harus sesudah waktu mulai.")
            elif finish <= now:
                f.errors.append("Perkiraan selesai sudah lewat.")
            elif finish - start > notices.LONGEST:
                f.errors.append("Gangguan paling lama 30 hari; untuk perubahan tetap, "
                                "perbarui isi layanan.")
        if not f.errors:
            f.starts_at, f.ends_at = start, finish
        return f


def _local(value: str, tz: ZoneInfo) -> datetime | None:
    """A datetime-local value in office time, as aware UTC; None if it is not one."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None or not 2000 <= parsed.year <= 2100:
        return None
    return parsed.replace(tzinfo=tz).astimezone(UTC)


def _rows(conn: Connection, now: datetime) -> list[Any]:
    return list(conn.execute(
        select(notice_t, staff_t.c.display_name.label("staff_name"))
        .outerjoin(staff_t, staff_t.c.id == notice_t.c.created_by)
        .where(notice_t.c.ends_at > now, notice_t.c.ended_at.is_(None))
        .order_by(notice_t.c.starts_at, notice_t.c.id).limit(200)))


async def _page(d: Dashboard, session: Session, form: NoticeForm, status: int = 200,
                done: str = "") -> web.Response:
    now = datetime.now(UTC)
    rows = await d.db.transaction(_rows, now)
    return d.render("notices.html", status, session=session, rows=rows, form=form, now=now,
                    done=done, services={k: s.label.get("id")
                                         for k, s in d.content.services.items()})


async def list_page(d: Dashboard, request: web.Request, session: Session) -> web.Response:
    done = request.query.get("ok", "")
    return await _page(d, session, NoticeForm.blank(datetime.now(UTC), d.tz),
                       done=done if done in ("add", "end") else "")


async def add(d: Dashboard, request: web.Request, session: Session) -> web.StreamResponse:
    """Add a notice (staff and admins; `_guard` has checked the role and CSRF)."""
    now = datetime.now(UTC)
    f = NoticeForm.parse(await request.post(), d.content, d.tz, now)
    if f.errors or f.starts_at is None or f.ends_at is None:
        return await _page(d, session, f, 422)
    staff, ip = session.staff, request.remote
    starts_at, ends_at = f.starts_at, f.ends_at

    def run(conn: Connection) -> None:
        notice_id = notices.add(conn, text_id=f.text, text_en=f.text_en or None,
                                office=f.office or None, service=f.service or None,
                                starts_at=starts_at, ends_at=ends_at, created_by=staff.id,
                                now=now)
        accounts.audit(conn, staff.id, "notice_add", str(notice_id), ip,
                       office=f.office or None, service=f.service or None)

    await d.db.transaction(run)
    raise web.HTTPSeeOther("/admin/notices?ok=add")


async def end(d: Dashboard, request: web.Request, session: Session) -> web.StreamResponse:
    notice_id = int(request.match_info["id"])
    staff, ip = session.staff, request.remote

    def run(conn: Connection) -> bool:
        ended = notices.end(conn, notice_id, datetime.now(UTC))
        if ended:
            accounts.audit(conn, staff.id, "notice_end", str(notice_id), ip)
        return ended

    if not await d.db.transaction(run):
        return d.render("error.html", 404, session=session, message=NOT_FOUND)
    raise web.HTTPSeeOther("/admin/notices?ok=end")


def _notice_text(d: Dashboard, notice: Any, lang: Lang) -> str:
    """The notice worded as the chat shows it before a service's answer (bot/inbox.py)."""
    c = d.content
    offices = {o.id: o.label.get(lang) for o in c.offices}
    office = (offices.get(notice.office, notice.office) if notice.office
              else c.msg(lang, "service_notice_all_offices"))
    text = (notice.text_en or notice.text_id) if lang == "en" else notice.text_id
    until = notice.ends_at.astimezone(d.tz)
    line = c.msg(lang, "service_notice_line", office=office, text=text,
                 until=f"{c.format_date(lang, until.date())} {until:%H.%M} "
                       f"{until.tzname() or ''}".rstrip())
    return c.msg(lang, "service_notice", notices=line)


async def broadcast(d: Dashboard, request: web.Request, session: Session
                    ) -> web.StreamResponse:
    """A draft broadcast of a current notice to the kecamatan of its office (everyone for a
    notice of every office, or of the dinas, which serves the whole city). It still needs
    an admin's approval, like any draft."""
    notice_id, now = int(request.match_info["id"]), datetime.now(UTC)
    staff, ip, content = session.staff, request.remote, d.content

    def run(conn: Connection) -> int | None:
        notice = conn.execute(select(notice_t).where(
            notice_t.c.id == notice_id, notice_t.c.ended_at.is_(None),
            notice_t.c.ends_at > now)).first()
        if notice is None:
            return None
        office = next((o for o in content.offices if o.id == notice.office), None)
        where = office.label.get("id") if office else "semua kantor"
        new_id = broadcasts.create(
            conn, content, title=f"Gangguan layanan: {where}"[:broadcasts.TITLE_MAX],
            text_id=_notice_text(d, notice, "id"),
            text_en=_notice_text(d, notice, "en") if notice.text_en else None,
            buttons=[notice.service] if notice.service in content.all_topics else [],
            audience=Audience(kecamatan=(office.kecamatan,) if office and office.kecamatan
                              else ()),
            notice_id=notice.id, created_by=staff.id, now=now)
        accounts.audit(conn, staff.id, "broadcast_from_notice", str(new_id), ip,
                       notice=notice.id)
        return new_id

    try:
        new_id = await d.db.transaction(run)
    except BroadcastError as exc:
        return d.render("error.html", 422, session=session, message=f"Tidak bisa: {exc}.")
    if new_id is None:
        return d.render("error.html", 404, session=session,
                        message="Pemberitahuan tidak ditemukan atau sudah berakhir.")
    raise web.HTTPSeeOther(f"/admin/broadcasts/{new_id}?ok=notice")
