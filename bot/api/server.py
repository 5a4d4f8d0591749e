"""The staff API at /api/v1/: the office's own systems read and update applications.

Every route but the OpenAPI description needs `Authorization: Bearer <token>` (tokens come
from `lontar api-token`; a read token may only look, a write token may also change). Writes
go through the same service functions as the CSV import and the dashboard, in one
transaction per request: a request with any problem is answered with every problem named and
has written nothing. Subscribers are told through the outbox, and the senders are woken only
after the commit. Every write is in the audit log under the token's name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.exc import IntegrityError

from bot.api import payloads
from bot.api.openapi import document
from bot.api.payloads import ApiError, problem
from bot.db import Database
from bot.models import app_update_t, application_t
from bot.services import api_tokens, applications
from bot.services.api_tokens import Token
from bot.services.staff import audit
from flows.content import Content

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_BODY = 1_048_576  # 1,000 applications of ~300 bytes each, with room to spare
MAX_ITEMS = 1000
LIST_LIMIT, MAX_LIST_LIMIT = 100, 500
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
Handler = Callable[[web.Request, Token], Awaitable[web.Response]]
Wake = Callable[[frozenset[str]], None]


def _ip(request: web.Request) -> str:
    return request.remote or "-"


def _when(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _application(row: Any) -> dict[str, Any]:
    """An application as clients see it: never a NIK or verification hash."""
    return {"nomor_registrasi": row.reg_no, "layanan": row.service, "kantor": row.office,
            "status": row.status, "alasan": row.reason,
            "status_changed_at": _when(row.status_changed_at)}


class StaffApi:
    def __init__(self, db: Database, content: Content, *, secret: str, timezone: str,
                 wake: Wake | None = None, max_body: int = MAX_BODY,
                 max_items: int = MAX_ITEMS):
        assert content.applications is not None
        self.db = db
        self.content = content
        self.secret = secret
        self.tz = ZoneInfo(timezone)
        self.wake = wake or (lambda _channels: None)
        self.max_body = max_body
        self.max_items = max_items
        self.statuses = {s.id for s in content.applications.status}
        self.offices = {o.id for o in content.offices}
        self._openapi = json.dumps(document(content, max_items=max_items, max_body=max_body,
                                            max_limit=MAX_LIST_LIMIT), ensure_ascii=False)

    def today(self) -> date:
        """The office's date: a NIK born "today" in Kupang is not from the future in UTC."""
        return datetime.now(UTC).astimezone(self.tz).date()

    def routes(self, app: web.Application) -> None:
        r = app.router
        item = PREFIX + "/applications/{reg_no:.+}"
        r.add_get(PREFIX + "/openapi.json", self.openapi)
        r.add_route("*", PREFIX + "/openapi.json", self._not_allowed("GET"))
        r.add_get(PREFIX + "/applications", self._guard(self.list_applications))
        r.add_post(PREFIX + "/applications", self._guard(self.upsert, write=True))
        r.add_route("*", PREFIX + "/applications", self._not_allowed("GET, POST"))
        r.add_get(item, self._guard(self.get_application))
        r.add_patch(item, self._guard(self.change_status, write=True))
        r.add_route("*", item, self._not_allowed("GET, PATCH"))
        r.add_route("*", PREFIX + "/{tail:.*}", self.not_found)  # JSON, like every answer

    # -- plumbing --------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> Token | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            return None
        return await self.db.transaction(api_tokens.find, value)

    def _guard(self, handler: Handler, *, write: bool = False
               ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                token = await self._token(request)
                if token is None:
                    sent = "Authorization" in request.headers
                    log.info("api: refused %s %s from %s (%s token)", request.method,
                             payloads.masked(request.path[:80]), _ip(request),
                             "unknown" if sent else "no")
                    raise ApiError(401, "unauthorized",
                                   "send a live token: Authorization: Bearer <token>",
                                   headers={"WWW-Authenticate": 'Bearer realm="lontar"' + (
                                       ', error="invalid_token"' if sent else "")})
                if write and not token.can_write:
                    raise ApiError(403, "forbidden", "this token may only read; a write "
                                                     "token is needed")
                response = await handler(request, token)
            except ApiError as exc:
                response = exc.response()
            response.headers.update(HEADERS)
            return response

        return guarded

    def _not_allowed(self, allow: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def refuse(request: web.Request) -> web.Response:
            return ApiError(405, "method_not_allowed", f"{request.method} is not allowed here",
                            headers={"Allow": allow, **HEADERS}).response()

        return refuse

    async def not_found(self, request: web.Request) -> web.Response:
        return ApiError(404, "not_found", f"no such route; see {PREFIX}/openapi.json",
                        headers=HEADERS).response()

    async def openapi(self, _request: web.Request) -> web.Response:
        return web.Response(text=self._openapi, content_type="application/json",
                            headers={"Cache-Control": "no-cache"})

    # -- reading ---------------------------------------------------------------------------

    async def get_application(self, request: web.Request, _token: Token) -> web.Response:
        reg_no = request.match_info["reg_no"].strip().upper()
        missing = ApiError(404, "not_found", "no application with this registration number")
        if not applications.REG_NO.match(reg_no):
            raise missing
        a, u = application_t.c, app_update_t.c

        def read(conn: Connection) -> dict[str, Any] | None:
            row = conn.execute(select(a.id, a.reg_no, a.service, a.office, a.status, a.reason,
                                      a.status_changed_at).where(a.reg_no == reg_no)).first()
            if row is None:
                return None
            history = conn.execute(
                select(u.status_before, u.status_after, u.reason, u.source, u.created_at)
                .where(u.application_id == row.id).order_by(u.id))
            return _application(row) | {"history": [
                {"status_before": h.status_before, "status_after": h.status_after,
                 "alasan": h.reason, "source": h.source, "created_at": _when(h.created_at)}
                for h in history]}

        found = await self.db.transaction(read)
        if found is None:
            raise missing
        return web.json_response(found)

    async def list_applications(self, request: web.Request, _token: Token) -> web.Response:
        """Oldest change first, a page at a time: a system that keeps the last `next` (or
        asks with changed_since) sees every later change, even one made while it pages."""
        q = payloads.list_query(request.query, self.statuses, self.offices, self.tz,
                                MAX_LIST_LIMIT, LIST_LIMIT)
        a = application_t.c
        stmt = select(a.id, a.reg_no, a.service, a.office, a.status, a.reason,
                      a.status_changed_at)
        if q.status:
            stmt = stmt.where(a.status == q.status)
        if q.office:
            stmt = stmt.where(a.office == q.office)
        if q.since:
            stmt = stmt.where(a.status_changed_at >= q.since)
        if q.after:
            at, last_id = q.after
            stmt = stmt.where(or_(a.status_changed_at > at,
                                  and_(a.status_changed_at == at, a.id > last_id)))
        stmt = stmt.order_by(a.status_changed_at, a.id).limit(q.limit + 1)

        def read(conn: Connection) -> list[Any]:
            return list(conn.execute(stmt))

        rows = await self.db.transaction(read)
        page = rows[:q.limit]
        nxt = (payloads.encode_cursor(page[-1].status_changed_at, page[-1].id)
               if len(rows) > q.limit else None)
        return web.json_response({"applications": [_application(r) for r in page],
                                  "next": nxt})

    # -- writing ---------------------------------------------------------------------------

    async def upsert(self, request: web.Request, token: Token) -> web.Response:
        body = await payloads.json_body(request, self.max_body)
        rows, errors = payloads.upsert_rows(body, self.max_items)
        items, problems = applications.check_all(rows, self.content, self.secret, self.today())
        errors += [problem(field, text, index) for index, field, text in problems]
        if errors:
            errors.sort(key=lambda e: e.get("index", -1))
            raise payloads.invalid(errors)
        ip = _ip(request)

        def write(conn: Connection) -> applications.Applied:
            done = applications.apply(conn, items, self.content, source="api")
            audit(conn, None, "api:upsert", f"{len(items)} applications", ip,
                  token=token.name, created=done.created, updated=done.updated,
                  unchanged=done.unchanged, notified=done.notified)
            return done

        try:
            done = await self.db.transaction(write)
        except IntegrityError:  # another request created one of these numbers meanwhile
            raise ApiError(409, "conflict", "another request wrote these applications at the "
                                            "same time; nothing was written, send it again"
                           ) from None
        self.wake(frozenset(done.channels))
        log.info("api: token %s wrote %d applications (%d new, %d updated, %d notified)",
                 token.name, len(items), done.created, done.updated, done.notified)
        return web.json_response({"received": len(items), "created": done.created,
                                  "updated": done.updated, "unchanged": done.unchanged,
                                  "notified": done.notified})

    async def change_status(self, request: web.Request, token: Token) -> web.Response:
        reg_no = request.match_info["reg_no"].strip().upper()
        body = await payloads.json_body(request, self.max_body)
        errors = payloads.unknown_fields(body, payloads.CHANGE_FIELDS)
        errors += [problem(f, p) for f, p in applications.check_change(
            body.get("status"), body.get("alasan"), self.content)]
        if errors:
            raise payloads.invalid(errors)
        missing = ApiError(404, "not_found", "no application with this registration number")
        if not applications.REG_NO.match(reg_no):
            raise missing
        status, reason, ip = body["status"], body.get("alasan"), _ip(request)

        def write(conn: Connection) -> applications.Changed | None:
            done = applications.change_status(conn, reg_no, status, reason, self.content,
                                              source="api")
            if done is not None:
                audit(conn, None, "api:change_status", done.reg_no, ip, token=token.name,
                      status=done.status, changed=done.changed, notified=done.notified)
            return done

        done = await self.db.transaction(write)
        if done is None:
            raise missing
        self.wake(done.channels)
        if done.changed:
            log.info("api: token %s moved %s to %s (%d notified)", token.name, done.reg_no,
                     done.status, done.notified)
        return web.json_response({"nomor_registrasi": done.reg_no,
                                  "status_before": done.status_before, "status": done.status,
                                  "changed": done.changed, "notified": done.notified})
