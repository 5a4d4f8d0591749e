"""Outreach broadcasts in the dashboard (routes of the dashboard): every role sees the list, a
broadcast's previews, progress and report; staff and admins compose drafts (with the audience
size counted before saving) and act on them; only an admin approves a draft.

Each action is one transaction with its audit row (the action and the broadcast id, never
the text); a refusal from the service (`BroadcastError`) is shown with status 422 and
nothing is written. Pages that are still sending refresh themselves with a meta tag, as the
dashboard runs no JavaScript.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import Connection, func, select

from bot.dashboard import broadcast_forms as bf
from bot.dashboard.notice_pages import _local as local_to_utc
from bot.dashboard.reports import safe_cell
from bot.models import broadcast_t, outbox_t, staff_t
from bot.outbox import SENT
from bot.services import broadcast_images as images
from bot.services import broadcasts
from bot.services import staff as accounts
from bot.services.broadcasts import BroadcastError
from bot.services.staff import Session
from flows.types import Lang

if TYPE_CHECKING:
    from bot.dashboard.server import Dashboard

ID = r"{id:\d{1,12}}"
ACTIONS = ("approve", "send", "schedule", "pause", "resume", "cancel", "test")
LIVE = (broadcasts.SCHEDULED, broadcasts.SENDING_B)  # the detail page refreshes itself
BEFORE_SENDING = (broadcasts.DRAFT, broadcasts.APPROVED)
UPLOAD_MAX = bf.IMAGE_MAX + 512 * 1024  # the picture and the form's other fields
NOT_FOUND = "Siaran tidak ditemukan."
CSV_HEAD = ["kontak", "kanal", "hasil", "terkirim", "templat_whatsapp", "berhenti_setelah"]


def add_routes(d: Dashboard, app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/broadcasts", d._guard(lambda req, s: list_page(d, req, s)))
    r.add_post("/admin/broadcasts", _upload(d, d._guard(lambda req, s: create(d, req, s),
                                                        act=True)))
    r.add_get(f"/admin/broadcasts/{ID}", d._guard(lambda req, s: detail_page(d, req, s)))
    r.add_get(f"/admin/broadcasts/{ID}/image", d._guard(lambda req, s: image(d, req, s)))
    r.add_get(f"/admin/broadcasts/{ID}/report.csv",
              d._guard(lambda req, s: report_csv(d, req, s)))
    # before the actions' pattern, which "edit" also matches
    r.add_post(f"/admin/broadcasts/{ID}/edit",
               _upload(d, d._guard(lambda req, s: edit(d, req, s), act=True)))
    r.add_post(f"/admin/broadcasts/{ID}/{{action:[a-z]{{1,16}}}}",
               d._guard(lambda req, s: act(d, req, s), act=True))


def _upload(d: Dashboard, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
            ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Let the compose form carry a picture: this one route takes bodies up to ~5.5 MB (the
    server's limit elsewhere stays small), and a bigger one gets a readable refusal."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request.clone(
                client_max_size=max(UPLOAD_MAX, request.client_max_size)))
        except web.HTTPRequestEntityTooLarge:
            return d.render("error.html", 413, session=None,
                            message="Gambar terlalu besar: paling besar 5 MB.")

    return wrapped


def _folder(d: Dashboard) -> Any:
    return d.data_dir / "broadcasts"


# --- the list and the compose form ----------------------------------------------------------


def _rows(conn: Connection) -> tuple[list[Any], dict[int, int]]:
    creator, approver = staff_t.alias("creator"), staff_t.alias("approver")
    rows = list(conn.execute(
        select(broadcast_t, creator.c.display_name.label("created_name"),
               approver.c.display_name.label("approved_name"))
        .outerjoin(creator, creator.c.id == broadcast_t.c.created_by)
        .outerjoin(approver, approver.c.id == broadcast_t.c.approved_by)
        .order_by(broadcast_t.c.id.desc()).limit(100)))
    ids = [r.id for r in rows]
    sent: dict[int, int] = dict(conn.execute(
        select(outbox_t.c.broadcast_id, func.count())
        .where(outbox_t.c.broadcast_id.in_(ids), outbox_t.c.status == SENT)
        .group_by(outbox_t.c.broadcast_id)).all()) if ids else {}
    return rows, sent


async def _list(d: Dashboard, session: Session, form: bf.BroadcastForm, status: int = 200,
                size: int | None = None) -> web.Response:
    rows, sent = await d.db.transaction(_rows)
    return d.render("broadcasts.html", status, session=session, rows=rows, sent=sent,
                    status_label=bf.STATUS,
                    describe=lambda r: broadcasts.audience_of(r).describe(d.content),
                    **_compose(d, form, size))


def _compose(d: Dashboard, form: bf.BroadcastForm, counted: int | None,
             editing: int | None = None) -> dict[str, Any]:
    """What broadcast_form.html needs, composing a new draft or editing draft `editing`."""
    return {"form": form, "counted": counted, "editing": editing,
            "topics": bf.topics(d.content), "kelurahan": bf.kelurahan(d.content),
            "kecamatan": {k.id: k.name for k in d.content.kecamatan},
            "text_max": broadcasts.TEXT_MAX, "caption_max": broadcasts.CAPTION_MAX,
            "title_max": broadcasts.TITLE_MAX}


async def list_page(d: Dashboard, request: web.Request, session: Session) -> web.Response:
    return await _list(d, session, bf.BroadcastForm())


async def create(d: Dashboard, request: web.Request, session: Session) -> web.StreamResponse:
    """Count the audience ("Hitung penerima") or save a draft (staff and admins; `_guard`
    has checked the role and CSRF). A picture is checked and stored first, so a count or
    an error does not make staff choose it again."""
    form = await request.post()
    f = bf.BroadcastForm.parse(form, d.content)
    await f.take_image(form, _folder(d))
    audience = f.audience
    if f.errors or audience is None:
        return await _list(d, session, f, 422)
    if form.get("do") == "count":
        return await _list(d, session, f, size=await d.db.transaction(
            broadcasts.reach, d.content, audience))
    staff, ip, now = session.staff, request.remote, datetime.now(UTC)

    def run(conn: Connection) -> int:
        new_id = broadcasts.create(
            conn, d.content, title=f.title, text_id=f.text_id, text_en=f.text_en or None,
            buttons=f.chosen_buttons, audience=audience, image=f.image or None,
            created_by=staff.id, now=now)
        accounts.audit(conn, staff.id, "broadcast_create", str(new_id), ip,
                       image=bool(f.image), buttons=len(f.chosen_buttons))
        return new_id

    try:
        new_id = await d.db.transaction(run)
    except BroadcastError as exc:
        f.errors.append(f"Belum bisa disimpan: {exc}.")
        return await _list(d, session, f, 422)
    raise web.HTTPSeeOther(f"/admin/broadcasts/{new_id}?ok=create")


# --- one broadcast --------------------------------------------------------------------------


def _context(conn: Connection, d: Dashboard, broadcast_id: int, staff_id: int,
             now: datetime) -> dict[str, Any] | None:
    try:
        row = broadcasts.get(conn, broadcast_id)
    except BroadcastError:
        return None
    names: dict[int, str] = dict(conn.execute(select(staff_t.c.id, staff_t.c.display_name).where(
        staff_t.c.id.in_([row.created_by or 0, row.approved_by or 0]))).all())
    chat = conn.execute(select(staff_t.c.telegram_chat_id)
                        .where(staff_t.c.id == staff_id)).scalar()
    audience = broadcasts.audience_of(row)
    return {"b": row, "names": names, "has_chat": bool(chat), "audience": audience,
            "size": broadcasts.reach(conn, d.content, audience),
            "p": broadcasts.progress(conn, broadcast_id, now)}


def _quiet(d: Dashboard, now: datetime) -> dict[str, Any]:
    q = d.quiet
    hours = (f"{q.start:%H.%M}–{q.end:%H.%M} WITA" if q.start != q.end else "")
    until = q.until(now)
    return {"quiet_hours": hours, "quiet_until": until}


async def _detail(d: Dashboard, request: web.Request, session: Session, status: int = 200,
                  error: str = "", form: bf.BroadcastForm | None = None,
                  counted: int | None = None) -> web.Response:
    """The page; `form` is the edit form as typed (opened), else the draft as stored."""
    broadcast_id, now = int(request.match_info["id"]), datetime.now(UTC)
    ctx = await d.db.transaction(_context, d, broadcast_id, session.staff.id, now)
    if ctx is None:
        return d.render("error.html", 404, session=session, message=NOT_FOUND)
    row = ctx["b"]
    if form is not None and form.errors and row.status != broadcasts.DRAFT:
        error = error or " ".join(form.errors)  # no edit form on the page to show them in
    langs: list[Lang] = ["id", "en"] if row.text_en else ["id"]
    done, n = request.query.get("ok", ""), request.query.get("n", "0")
    p = ctx["p"]
    return d.render(
        "broadcast.html", status, session=session, error=error, now=now,
        done=done if done in (*ACTIONS, "create", "notice", "edit") else "",
        n=int(n) if n.isdigit() and len(n) < 9 else 0,
        previews=[bf.preview(row, lang, d.content) for lang in langs],
        describe=ctx["audience"].describe(d.content), status_label=bf.STATUS,
        reasons=[(bf.REASONS[k], v) for k, v in p.reasons().items()],
        bar_max=max(p.planned, p.done + p.waiting, 1), live=row.status in LIVE,
        before_sending=row.status in BEFORE_SENDING,
        default_at=now.astimezone(d.tz).strftime("%Y-%m-%dT%H:%M"),
        edit_open=form is not None, **_compose(d, form or bf.BroadcastForm.of(row), counted,
                                                 broadcast_id),
        **_quiet(d, now), **ctx)


async def edit(d: Dashboard, request: web.Request, session: Session) -> web.StreamResponse:
    """Correct a draft from the form on its page, or count the audience as typed; the rules
    of composing apply (`_guard` has checked the role and CSRF). The picture the draft no
    longer uses is deleted once the change is committed, unless another broadcast uses it."""
    broadcast_id = int(request.match_info["id"])
    form = await request.post()
    f = bf.BroadcastForm.parse(form, d.content)
    await f.take_image(form, _folder(d))
    audience = f.audience
    if f.errors or audience is None:
        return await _detail(d, request, session, 422, form=f)
    if form.get("do") == "count":
        return await _detail(d, request, session, form=f, counted=await d.db.transaction(
            broadcasts.reach, d.content, audience))
    staff, ip, now = session.staff, request.remote, datetime.now(UTC)
    try:
        done = await d.db.transaction(lambda conn: broadcasts.update_draft(
            conn, d.content, broadcast_id, title=f.title, text_id=f.text_id,
            text_en=f.text_en or None, buttons=f.chosen_buttons, audience=audience,
            image=f.image or None, staff_id=staff.id, now=now, ip=ip))
    except BroadcastError as exc:
        f.errors.append(f"Belum bisa disimpan: {exc}.")
        return await _detail(d, request, session, 422, form=f)
    if done.dropped_image:
        await d.db.transaction(images.remove_unused, _folder(d), done.dropped_image)
    raise web.HTTPSeeOther(f"/admin/broadcasts/{broadcast_id}?ok=edit&n={len(done.changed)}")


async def detail_page(d: Dashboard, request: web.Request, session: Session) -> web.Response:
    return await _detail(d, request, session)


async def image(d: Dashboard, request: web.Request, session: Session) -> web.StreamResponse:
    broadcast_id = int(request.match_info["id"])
    found = await d.db.transaction(lambda conn: conn.execute(
        select(broadcast_t.c.image).where(broadcast_t.c.id == broadcast_id)).first())
    path = bf.image_path(_folder(d), found.image if found else None)
    if path is None:
        return d.render("error.html", 404, session=session, message="Gambar tidak ada.")
    return web.FileResponse(path, headers={"Content-Type": bf.IMAGE_TYPES[path.suffix]})


def _step(d: Dashboard, action: str, broadcast_id: int, form: Any, session: Session,
          ip: str | None, at: datetime | None, now: datetime
          ) -> Callable[[Connection], tuple[int, set[str]]]:
    """One action with its audit row, in the caller's transaction: a BroadcastError (from
    the service or here) rolls both back."""
    staff, content = session.staff, d.content

    def run(conn: Connection) -> tuple[int, set[str]]:
        detail: dict[str, Any] = {}
        channels: set[str] = set()
        if action == "approve":
            broadcasts.approve(conn, broadcast_id, staff.id, now, _seen(form))
            n = 0
        elif action in ("send", "schedule"):
            n = broadcasts.schedule(conn, content, broadcast_id, now, at)
            detail = {"planned": n, "at": (at or now).isoformat(timespec="minutes")}
        elif action == "pause":
            n = broadcasts.pause(conn, broadcast_id, now)
            detail = {"held": n}
        elif action == "resume":
            n = broadcasts.resume(conn, broadcast_id, now)
            channels = {"telegram", "whatsapp"}
            detail = {"released": n}
        elif action == "cancel":
            n = broadcasts.cancel(conn, broadcast_id, now)
            detail = {"cancelled": n}
        else:
            chat = conn.execute(select(staff_t.c.telegram_chat_id)
                                .where(staff_t.c.id == staff.id)).scalar()
            if not chat:
                raise BroadcastError(
                    "akun Anda belum terhubung ke chat Telegram. Minta admin mengisi ID "
                    "chat Telegram Anda (lontar admin create-user --telegram-chat)")
            lang: Lang = "en" if form.get("lang") == "en" else "id"
            broadcasts.test_send(conn, content, broadcast_id, "telegram", str(chat), now,
                                 lang)
            n, channels = 1, {"telegram"}
            detail = {"lang": lang}
        accounts.audit(conn, staff.id, f"broadcast_{action}", str(broadcast_id), ip,
                       **detail)
        return n, channels

    return run


def _seen(form: Any) -> datetime | None:
    """The draft's `updated_at` as the approving admin's page showed it."""
    try:
        return datetime.fromisoformat(str(form.get("seen", ""))[:40])
    except ValueError:
        return None


async def act(d: Dashboard, request: web.Request, session: Session) -> web.StreamResponse:
    """Approve, send now, schedule, pause, resume, cancel or send a test to oneself."""
    broadcast_id, action = int(request.match_info["id"]), request.match_info["action"]
    if action not in ACTIONS:
        return d.render("error.html", 404, session=session, message="Aksi tidak dikenal.")
    if action == "approve" and not session.staff.is_admin:
        return d.render("error.html", 403, session=session,
                        message="Hanya admin yang boleh menyetujui siaran.")
    form = await request.post()
    now, at = datetime.now(UTC), None
    if action == "schedule":
        at = local_to_utc(str(form.get("waktu", ""))[:32].strip(), d.tz)
        if at is None:
            return await _detail(d, request, session, 422,
                                 "Isi tanggal dan jam kirim (WITA) yang valid.")
    exists = await d.db.transaction(lambda conn: conn.execute(
        select(broadcast_t.c.id).where(broadcast_t.c.id == broadcast_id)).first())
    if exists is None:
        return d.render("error.html", 404, session=session, message=NOT_FOUND)
    try:
        n, channels = await d.db.transaction(
            _step(d, action, broadcast_id, form, session, request.remote, at, now))
    except BroadcastError as exc:
        message = str(exc)
        return await _detail(d, request, session, 422,
                             f"Tidak bisa: {message[:1].upper()}{message[1:]}.")
    if channels:
        d.wake(frozenset(channels))
    raise web.HTTPSeeOther(f"/admin/broadcasts/{broadcast_id}?ok={action}&n={n}")


# --- the report -----------------------------------------------------------------------------


def _csv_chunk(rows: Iterator[dict[str, Any]], d: Dashboard, limit: int = 500) -> str:
    """The next `limit` recipients as CSV text ("" when there are no more)."""
    buf = io.StringIO()
    out = csv.writer(buf)
    for i, r in enumerate(rows):
        out.writerow([safe_cell(v) for v in (
            r["contact_id"], r["channel"], r["outcome"], _wita(r["sent_at"], d),
            r["whatsapp_template"], _wita(r["opted_out_after"], d))])
        if i == limit - 1:
            break
    return buf.getvalue()


def _wita(value: str, d: Dashboard) -> str:
    return datetime.fromisoformat(value).astimezone(d.tz).strftime("%Y-%m-%d %H:%M") \
        if value else ""


async def _stream(d: Dashboard, broadcast_id: int) -> AsyncGenerator[str, None]:
    """The report in pages read on a connection of its own (one read transaction), so a
    100,000-recipient report is never whole in memory. The reads run off the event loop,
    except on SQLite where the dashboard's database work runs inline (bot/db.py)."""
    conn = d.db.engine.connect()

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args) if d.db.inline else await asyncio.to_thread(fn, *args)

    try:
        rows = broadcasts.report_rows(conn, broadcast_id)  # a generator: reads on next()
        while chunk := await call(_csv_chunk, rows, d):
            yield chunk
    finally:
        await call(conn.close)  # read only: closing rolls the transaction back


async def report_csv(d: Dashboard, request: web.Request, session: Session
                     ) -> web.StreamResponse:
    """Per-recipient outcomes (contact id and channel, never a phone number), audited."""
    broadcast_id = int(request.match_info["id"])

    def check(conn: Connection) -> bool:
        found = conn.execute(select(broadcast_t.c.id)
                             .where(broadcast_t.c.id == broadcast_id)).first()
        if found is not None:
            accounts.audit(conn, session.staff.id, "broadcast_report", str(broadcast_id),
                           request.remote)
        return found is not None

    if not await d.db.transaction(check):
        return d.render("error.html", 404, session=session, message=NOT_FOUND)
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="lontar-siaran-{broadcast_id}.csv"'})
    await response.prepare(request)
    await response.write(("\ufeff" + ",".join(CSV_HEAD) + "\r\n").encode())
    async with aclosing(_stream(d, broadcast_id)) as chunks:
        async for chunk in chunks:
            await response.write(chunk.encode())
    await response.write_eof()
    return response
