"""Applications (permohonan) in the dashboard: the list with search and filters, one
application with its history, and a status change with a note (routes of the dashboard).

A NIK is searched with a POST form so it stays out of URLs, browser history and access
logs; it is turned into its HMAC at once and never logged, stored, audited or shown again
(the page shows it masked). A status change goes through the same service as the import and
the staff API, in one transaction with its audit row, and the senders are woken after.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import Connection

from bot.dashboard import application_queries as q
from bot.services import applications
from bot.services import staff as accounts
from bot.services.applications import Changed, Problem
from bot.services.staff import Session
from flows import nik as niks
from flows.content import Content

if TYPE_CHECKING:
    from bot.dashboard.server import Dashboard

REG_NO = r"{reg_no:[A-Za-z0-9][A-Za-z0-9/._-]{2,63}}"  # as bot.services.applications.REG_NO
NOT_FOUND = "Permohonan tidak ditemukan."


def labels(content: Content) -> dict[str, dict[str, str]]:
    """Indonesian labels for the application pages (merged into the dashboard's labels)."""
    ac = content.applications
    if ac is None:
        return {}
    return {
        "app_status": {s.id: s.label.get("id") for s in ac.status},
        "app_status_type": {s.id: s.type for s in ac.status},
        "verify": {"birth_date": "Tanggal lahir", "nik_last4": "4 digit terakhir NIK"},
        "source": {"import": "Impor berkas", "dashboard": "Dasbor", "api": "API"},
    }


def add_routes(d: Dashboard, app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/applications", d._guard(lambda req, s: list_page(d, req, s)))
    r.add_post("/admin/applications", d._guard(lambda req, s: nik_search(d, req, s)))
    r.add_get(f"/admin/applications/{REG_NO}", d._guard(lambda req, s: detail_page(d, req, s)))
    r.add_post(f"/admin/applications/{REG_NO}/status",
               d._guard(lambda req, s: change(d, req, s), act=True))


def _path(reg_no: str) -> str:
    return "/admin/applications/" + quote(reg_no, safe="/")


def _list(d: Dashboard, session: Session, f: q.AppFilters, page: q.AppPage, status: int = 200,
          nik_masked: str = "", nik_error: str = "") -> web.Response:
    return d.render("applications.html", status, session=session, f=f, page=page,
                    nik_masked=nik_masked, nik_error=nik_error,
                    nik_search=bool(d.secret))


async def list_page(d: Dashboard, request: web.Request, session: Session) -> web.Response:
    f = q.AppFilters.parse(request.query, d.content)
    page = await d.db.transaction(q.listing, f)
    return _list(d, session, f, page)


async def nik_search(d: Dashboard, request: web.Request, session: Session) -> web.Response:
    """The applications of one NIK. The typed NIK is validated, hashed and dropped; the
    answer is rendered directly (no redirect: a redirect would carry the NIK in its URL)."""
    form = await request.post()
    f = q.AppFilters.parse(form, d.content)
    checked = niks.validate(str(form.get("nik", ""))[:40], today=d.today())
    if not d.secret or checked.nik is None:
        message = ("Pencarian NIK tidak tersedia: kunci server belum diatur." if not d.secret
                   else "NIK tidak valid: periksa lagi 16 angkanya.")
        return _list(d, session, f, await d.db.transaction(q.listing, f), 422,
                     nik_error=message)
    nik_hmac = applications.keyed(d.secret, "nik", checked.nik)
    masked = niks.mask(checked.nik)
    ip = request.remote

    def read(conn: Connection) -> q.AppPage:
        page = q.listing(conn, f, nik_hmac)
        # who looked a person up, and how much they found; never the NIK or its HMAC
        accounts.audit(conn, session.staff.id, "application_nik_search", None, ip,
                       found=page.total)
        return page

    return _list(d, session, f, await d.db.transaction(read), nik_masked=masked)


def _context(conn: Connection, reg_no: str) -> dict[str, Any] | None:
    row = q.application(conn, reg_no)
    if row is None:
        return None
    return {"a": row, "history": q.history(conn, row.id),
            "subscribers": q.subscribers(conn, row.id)}


def _detail(d: Dashboard, session: Session, ctx: dict[str, Any], status: int = 200,
            error: str = "", done: str = "", notified: int = 0,
            form: dict[str, str] | None = None) -> web.Response:
    ac = d.content.applications
    assert ac is not None
    need_reason = [s.label.get("id") for s in ac.status if s.type in ("action", "closed")]
    return d.render("application.html", status, session=session, error=error, done=done,
                    notified=notified, need_reason=need_reason,
                    # a new note each time: the old reason stays in the facts and history,
                    # not silently carried over to the next status
                    form=form or {"status": ctx["a"].status, "alasan": ""},
                    **ctx)


async def detail_page(d: Dashboard, request: web.Request, session: Session) -> web.Response:
    ctx = await d.db.transaction(_context, request.match_info["reg_no"])
    if ctx is None:
        return d.render("error.html", 404, session=session, message=NOT_FOUND)
    done = request.query.get("ok", "")
    n = request.query.get("n", "0")
    return _detail(d, session, ctx, done=done if done in ("status", "same") else "",
                   notified=int(n) if n.isdigit() and len(n) < 7 else 0)


def _message(problems: list[Problem], content: Content, status: str) -> str:
    """check_change's problems in the staff's language."""
    ac = content.applications
    assert ac is not None
    st = ac.get(status)
    out = []
    for name, problem in problems:
        if name == "status":
            out.append("Pilih salah satu status yang tersedia.")
        elif "required" in problem:
            label = st.label.get("id") if st else status
            out.append(f"Alasan wajib diisi untuk status {label}: warga perlu tahu apa "
                       "yang harus dilakukan.")
        elif "longer" in problem:
            out.append("Alasan paling banyak 500 karakter.")
        else:
            out.append("Alasan tidak valid.")
    return " ".join(out)


async def change(d: Dashboard, request: web.Request, session: Session) -> web.Response:
    """Change the status (staff and admins; `_guard` has checked the role and CSRF)."""
    reg_no = request.match_info["reg_no"]
    form = await request.post()
    status, reason = str(form.get("status", ""))[:64], str(form.get("alasan", ""))[:2000]
    problems = applications.check_change(status, reason, d.content)
    if problems:
        ctx = await d.db.transaction(_context, reg_no)
        if ctx is None:
            return d.render("error.html", 404, session=session, message=NOT_FOUND)
        return _detail(d, session, ctx, 422, _message(problems, d.content, status.strip()),
                       form={"status": status.strip(), "alasan": reason})
    staff, ip = session.staff, request.remote

    def run(conn: Connection) -> Changed | None:
        done = applications.change_status(conn, reg_no, status, reason, d.content,
                                          source="dashboard", staff_id=staff.id)
        if done is not None and done.changed:
            accounts.audit(conn, staff.id, "application_status", done.reg_no, ip,
                           status=done.status, before=done.status_before,
                           notified=done.notified)
        return done

    done = await d.db.transaction(run)
    if done is None:
        return d.render("error.html", 404, session=session, message=NOT_FOUND)
    if not done.changed:
        raise web.HTTPSeeOther(_path(done.reg_no) + "?ok=same")
    d.wake(done.channels)
    raise web.HTTPSeeOther(f"{_path(done.reg_no)}?ok=status&n={done.notified}")
