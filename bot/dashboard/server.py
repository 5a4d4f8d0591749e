"""The admin dashboard at /admin: login, inbox, ticket page and staff actions.

Every page goes through `_guard`: it finds the session (a random cookie token; the
database holds its hash), enforces the role, checks the CSRF token of every POST, and adds
headers that keep the pages out of caches and frames and forbid inline scripts. Forms post
and redirect (no JavaScript needed), so the pages work on any phone browser.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from sqlalchemy import Connection, select

from bot.dashboard import (
    application_pages,
    broadcast_pages,
    notice_pages,
    queries,
    report_pages,
)
from bot.db import Database
from bot.models import alert_t, audit_t, complaint_t, staff_t
from bot.quiet import QuietHours
from bot.services import staff as accounts
from bot.services import tickets
from bot.services.staff import LoginLimiter, Session
from flows.complaint import IDENTITY, WHEN
from flows.content import Content

log = logging.getLogger(__name__)

COOKIE = "lontar_admin"
LOGIN_COOKIE = "lontar_login"  # double-submit CSRF token for the login form
_here = resources.files("bot") / "dashboard"
Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]
Wake = Callable[[frozenset[str]], None]
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
ACTIONS = ("answer", "note", "state", "assign", "tags")


def _ip(request: web.Request) -> str:
    return request.remote or "-"


class Dashboard:
    def __init__(self, db: Database, content: Content, *, data_dir: Path, timezone: str,
                 idle_minutes: int = 30, login_attempts: int = 5, secure: bool = False,
                 wake: Wake | None = None, secret: str = "",
                 quiet: QuietHours | None = None):
        self.db = db
        self.content = content
        self.data_dir = data_dir
        self.tz = ZoneInfo(timezone)
        self.idle = timedelta(minutes=idle_minutes)
        self.limiter = LoginLimiter(login_attempts)
        self.secure = secure
        self.wake = wake or (lambda _channels: None)
        self.secret = secret  # the server secret: a NIK typed by staff is searched as its HMAC
        # the nights without outreach, shown on the broadcast pages (settings.quiet_hours)
        self.quiet = quiet or QuietHours(time(21, 0), time(7, 0), self.tz)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(_here / "templates")),
            autoescape=True, undefined=jinja2.StrictUndefined)
        self.env.globals.update(labels=self._labels() | application_pages.labels(content),
                                urlencode=urlencode,
                                has_applications=content.applications is not None)
        self.env.filters["local"] = self._local

    def _labels(self) -> dict[str, dict[str, str]]:
        cc = self.content.complaints
        assert cc is not None
        msg = self.content.msg
        return {
            "state": {s.id: s.label.get("id") for s in cc.state},
            "state_type": {s.id: s.type for s in cc.state},
            "kind": {k.id: k.label.get("id") for k in cc.kind},
            "category": {c.id: c.label.get("id") for c in cc.category},
            "dimension": {d.id: d.label.get("id") for d in cc.dimension},
            "office": {o.id: o.label.get("id") for o in self.content.offices},
            "service": {"umum": msg("id", "complaint_general")} | {
                k: s.label.get("id") for k, s in self.content.services.items()},
            "identity": {i: msg("id", f"identity_{i}") for i in IDENTITY},
            "happened": {w: msg("id", f"when_{w}") for w in WHEN},
        }

    def _local(self, value: datetime | None, fmt: str = "%d-%m-%Y %H:%M") -> str:
        return value.astimezone(self.tz).strftime(fmt) if value else "-"

    def today(self) -> Any:
        return datetime.now(UTC).astimezone(self.tz).date()

    # -- plumbing --------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/admin", self.home)
        r.add_get("/admin/", self.home)
        r.add_get("/admin/login", self.login_form)
        r.add_post("/admin/login", self.login)
        r.add_post("/admin/logout", self._guard(self.logout))
        r.add_get("/admin/tickets", self._guard(self.inbox_page))
        r.add_get(r"/admin/tickets/{id:\d{1,12}}", self._guard(self.ticket_page))
        r.add_get(r"/admin/tickets/{id:\d{1,12}}/identity",
                  self._guard(self.identity_page, admin=True))
        r.add_get(r"/admin/tickets/{id:\d{1,12}}/files/{n:\d{1,2}}", self._guard(self.file))
        r.add_post(r"/admin/tickets/{id:\d{1,12}}/{action:[a-z]+}",
                   self._guard(self.act, act=True))
        r.add_get("/admin/alerts", self._guard(self.alerts_page))
        r.add_get("/admin/audit", self._guard(self.audit_page, admin=True))
        report_pages.add_routes(self, app)
        notice_pages.add_routes(self, app)
        broadcast_pages.add_routes(self, app)
        if self.content.applications is not None:
            application_pages.add_routes(self, app)
        r.add_static("/admin/static/", str(_here / "static"), show_index=False)

    def render(self, name: str, status: int = 200, **ctx: Any) -> web.Response:
        body = self.env.get_template(name).render(**ctx)
        return web.Response(text=body, status=status, content_type="text/html",
                            headers=HEADERS)

    def _guard(self, handler: Handler, *, admin: bool = False, act: bool = False
               ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            token = request.cookies.get(COOKIE, "")
            session = (await self.db.transaction(accounts.find_session, token, self.idle)
                       if 16 <= len(token) <= 128 else None)
            if session is None:
                if request.method == "GET":
                    raise web.HTTPSeeOther("/admin/login?" + urlencode(
                        {"next": request.path_qs}), headers=HEADERS)
                return self.render("error.html", 401, session=None,
                                   message="Sesi berakhir. Silakan masuk lagi.")
            if request.method == "POST":
                form = await request.post()
                if not accounts.csrf_ok(session, str(form.get("csrf", ""))):
                    await self.db.transaction(accounts.audit, session.staff.id, "csrf_refused",
                                              request.path[:64], _ip(request))
                    return self.render("error.html", 403, session=session,
                                       message="Formulir tidak sah atau kedaluwarsa. "
                                               "Muat ulang halaman lalu coba lagi.")
            if (admin and not session.staff.is_admin) or (act and not session.staff.can_act):
                return self.render("error.html", 403, session=session,
                                   message="Peran Anda tidak boleh membuka atau mengubah ini.")
            sent = [*request.query.values(),
                    *((await request.post()).values() if request.method == "POST" else ())]
            if any(isinstance(v, str) and "\x00" in v for v in sent):  # PostgreSQL refuses NUL
                return self.render("error.html", 400, session=session,
                                   message="Isian berisi karakter yang tidak sah.")
            response = await handler(request, session)
            response.headers.update(HEADERS)
            return response

        return guarded

    def _set_cookie(self, response: web.StreamResponse, name: str, value: str,
                    max_age: int | None = None) -> None:
        response.set_cookie(name, value, path="/admin", httponly=True, secure=self.secure,
                            samesite="Strict", max_age=max_age)

    # -- login -----------------------------------------------------------------------------

    async def home(self, _request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/admin/tickets")

    def _login_page(self, status: int = 200, error: str = "", nxt: str = "") -> web.Response:
        token = secrets.token_urlsafe(24)
        response = self.render("login.html", status, session=None, csrf=token, error=error,
                               next=nxt)
        self._set_cookie(response, LOGIN_COOKIE, token, max_age=3600)
        return response

    @staticmethod
    def _next(value: object) -> str:
        nxt = str(value or "")
        return nxt if nxt.startswith("/admin/") and "//" not in nxt and "\\" not in nxt else ""

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        return self._login_page(nxt=self._next(request.query.get("next")))

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        nxt = self._next(form.get("next"))
        sent = str(form.get("csrf", ""))
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        if not sent or not cookie or not secrets.compare_digest(sent, cookie):
            return self._login_page(403, "Formulir kedaluwarsa. Silakan coba lagi.", nxt)
        username = str(form.get("username", "")).replace("\x00", "")[:64].strip().lower()
        password = str(form.get("password", ""))[:1024]
        keys = (f"ip:{_ip(request)}", f"user:{username}")
        if self.limiter.blocked(*keys):
            await self.db.transaction(accounts.audit, None, "login_blocked", username[:64],
                                      _ip(request))
            return self._login_page(429, "Terlalu banyak percobaan. Coba lagi 15 menit lagi.",
                                    nxt)
        staff = await self.db.transaction(accounts.authenticate, username, password)
        if staff is None:
            self.limiter.failed(*keys)
            await self.db.transaction(accounts.audit, None, "login_failed", username[:64],
                                      _ip(request))
            return self._login_page(401, "Nama pengguna atau kata sandi salah.", nxt)
        self.limiter.succeeded(*keys)

        def start(conn: Connection) -> str:
            accounts.audit(conn, staff.id, "login", None, _ip(request))
            return accounts.open_session(conn, staff.id)

        token = await self.db.transaction(start)
        response = web.Response(status=303, headers={**HEADERS,
                                                      "Location": nxt or "/admin/tickets"})
        self._set_cookie(response, COOKIE, token)
        response.del_cookie(LOGIN_COOKIE, path="/admin")
        return response

    async def logout(self, request: web.Request, session: Session) -> web.StreamResponse:
        def end(conn: Connection) -> None:
            accounts.close_session(conn, session.token_hash)
            accounts.audit(conn, session.staff.id, "logout", None, _ip(request))

        await self.db.transaction(end)
        response = web.Response(status=303, headers={"Location": "/admin/login"})
        response.del_cookie(COOKIE, path="/admin")
        return response

    # -- pages -----------------------------------------------------------------------------

    async def inbox_page(self, request: web.Request, session: Session) -> web.StreamResponse:
        f = queries.Filters.parse(request.query, self.content)
        today = self.today()

        def read(conn: Connection) -> tuple[queries.Page, list[Any]]:
            return (queries.inbox(conn, f, self.content, self.tz, today),
                    queries.assignable(conn))

        page, staff = await self.db.transaction(read)
        return self.render("inbox.html", session=session, f=f, page=page, staff=staff,
                           names={s.id: s.display_name for s in staff}, today=today,
                           offices=self.content.offices)

    async def _ticket_context(self, ticket_id: int, session: Session, show_identity: bool,
                              ip: str) -> dict[str, Any] | None:
        def read(conn: Connection) -> dict[str, Any] | None:
            row = queries.ticket(conn, ticket_id)
            if row is None:
                return None
            who = None
            role = session.staff.role
            visible = (row.identity == "named" and role != "viewer") or (
                row.identity == "confidential" and show_identity and role == "admin")
            if visible:
                who = queries.identity(conn, row)
                if row.identity == "confidential":
                    accounts.audit(conn, session.staff.id, "view_identity", row.number, ip)
            return {"t": row, "history": queries.history(conn, ticket_id), "who": who,
                    "staff": queries.assignable(conn)}

        return await self.db.transaction(read)

    async def ticket_page(self, request: web.Request, session: Session,
                          show_identity: bool = False) -> web.StreamResponse:
        ctx = await self._ticket_context(int(request.match_info["id"]), session,
                                         show_identity, _ip(request))
        if ctx is None:
            return self.render("error.html", 404, session=session,
                               message="Tiket tidak ditemukan.")
        return self.render("ticket.html", session=session, today=self.today(),
                           done=request.query.get("ok", "")[:16],
                           error=request.query.get("error", "")[:200], **ctx)

    async def identity_page(self, request: web.Request, session: Session) -> web.StreamResponse:
        return await self.ticket_page(request, session, show_identity=True)

    async def file(self, request: web.Request, session: Session) -> web.StreamResponse:
        ticket_id, n = int(request.match_info["id"]), int(request.match_info["n"])
        row = await self.db.transaction(queries.ticket, ticket_id)
        missing = self.render("error.html", 404, session=session,
                              message="Berkas tidak ditemukan.")
        if row is None or n >= len(row.photos):
            return missing
        root = (self.data_dir / "attachments").resolve()
        path = (self.data_dir / str(row.photos[n])).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return missing
        await self.db.transaction(partial(accounts.audit, n=n), session.staff.id, "view_file",
                                  row.number, _ip(request))
        kind = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
                ".pdf": "application/pdf"}.get(path.suffix)
        if kind is None:
            return missing
        return web.FileResponse(path, headers={
            "Content-Type": kind, "Content-Disposition": f'inline; filename="{path.name}"'})

    async def act(self, request: web.Request, session: Session) -> web.StreamResponse:
        ticket_id, action = int(request.match_info["id"]), request.match_info["action"]
        if action not in ACTIONS:
            return self.render("error.html", 404, session=session, message="Aksi tidak dikenal.")
        form = await request.post()
        staff, ip = session.staff, _ip(request)
        text = str(form.get("text", ""))

        def run(conn: Connection) -> tickets.Done:
            if action == "answer":
                return tickets.answer(conn, ticket_id, staff, text, self.content, ip)
            if action == "note":
                return tickets.note(conn, ticket_id, staff, text, ip)
            if action == "state":
                return tickets.change_state(conn, ticket_id, staff, str(form.get("state", "")),
                                            self.content, self.tz, ip)
            if action == "assign":
                value = str(form.get("assignee", ""))
                return tickets.assign(conn, ticket_id, staff,
                                      int(value) if value.isdigit() else None, ip)
            return tickets.retag(conn, ticket_id, staff, str(form.get("category", "")),
                                 str(form.get("dimension", "")), self.content, ip)

        try:
            done = await self.db.transaction(run)
        except tickets.ActionError as exc:
            query = urlencode({"error": str(exc)})
            raise web.HTTPSeeOther(f"/admin/tickets/{ticket_id}?{query}") from None
        self.wake(done.channels)
        raise web.HTTPSeeOther(f"/admin/tickets/{ticket_id}?ok={action}")

    async def alerts_page(self, request: web.Request, session: Session) -> web.StreamResponse:
        def read(conn: Connection) -> list[Any]:
            mine = alert_t.c.staff_id == session.staff.id
            if session.staff.is_admin:
                mine = mine | alert_t.c.staff_id.is_(None)
            return list(conn.execute(
                select(alert_t, complaint_t.c.number, complaint_t.c.due_on,
                       complaint_t.c.state)
                .join(complaint_t, complaint_t.c.id == alert_t.c.complaint_id)
                .where(mine).order_by(alert_t.c.id.desc()).limit(100)))

        return self.render("alerts.html", session=session, alerts=await self.db.transaction(read))

    async def audit_page(self, request: web.Request, session: Session) -> web.StreamResponse:
        page = request.query.get("page", "1")
        n = min(max(int(page), 1), 10_000) if page.isdigit() else 1

        def read(conn: Connection) -> list[Any]:
            return list(conn.execute(
                select(audit_t, staff_t.c.username)
                .outerjoin(staff_t, staff_t.c.id == audit_t.c.staff_id)
                .order_by(audit_t.c.id.desc()).limit(100).offset((n - 1) * 100)))

        return self.render("audit.html", session=session, rows=await self.db.transaction(read),
                           page=n)
