"""The local web chat: a page and a small JSON API over the same engine as every channel.

POST /api/chat runs one turn and returns every message newer than the client's cursor;
GET /api/chat returns later messages (staff answers, notifications) the same way. The page
retries a failed POST with the same message id, and the inbox's dedupe makes that safe.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from functools import partial
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection, bindparam, select

from bot.inbox import Inbound, Inbox
from bot.models import contact_t
from bot.outbox import fetch_after
from flows.content import Content

CHANNEL = "web"
SESSION_RE = r"^[A-Za-z0-9_-]{16,64}$"
MESSAGE_RE = r"^[A-Za-z0-9_-]{8,63}$"  # with the session, fits platform_id (128)
MAX_TEXT = 20_000  # longer texts are refused; the engine itself reads only the beginning

_here = resources.files("bot") / "web"


class PollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session: str = Field(pattern=SESSION_RE)
    after: int = Field(0, ge=0, le=2**31 - 1)  # an outbox id: INTEGER in both databases


class ChatRequest(PollRequest):
    message_id: str = Field(pattern=MESSAGE_RE)
    text: str | None = Field(None, max_length=MAX_TEXT)
    choice: str | None = Field(None, max_length=128)
    command: str | None = Field(None, pattern=r"^[a-z]{1,32}$")

    @model_validator(mode="after")
    def _exactly_one(self) -> ChatRequest:
        given = [x for x in (self.text, self.choice, self.command) if x is not None]
        if len(given) != 1:
            raise ValueError("send exactly one of text, choice, command")
        return self


class _RateLimit:
    """A sliding one-minute window per session; weak phones retry, abusers hammer."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        hits = self._hits[key]
        while hits and now - hits[0] > 60:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return False
        hits.append(now)
        if len(self._hits) > 100_000:  # forget idle sessions
            for k in [k for k, v in self._hits.items() if not v or now - v[-1] > 60]:
                del self._hits[k]
        return True


class WebChat:
    def __init__(self, inbox: Inbox, content: Content, rate_per_minute: int = 30,
                 max_body: int = 65_536):
        self.inbox = inbox
        self.max_body = max_body
        self.content = content
        self.limit = _RateLimit(rate_per_minute)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(_here / "templates")),
            autoescape=True,
        )
        self.page = env.get_template("chat.html")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_post("/api/chat", self.post)
        app.router.add_get("/api/chat", self.get)
        app.router.add_static("/static/", str(_here / "static"), show_index=False)

    def _error(self, status: int, code: str, key: str) -> web.Response:
        return web.json_response(
            {"error": code, "message": self.content.msg("id", key)}, status=status
        )

    async def index(self, request: web.Request) -> web.Response:
        strings = {k: v for k, v in self.content.messages["id"].items() if k.startswith("web_")}
        html = self.page.render(t=strings, lang="id")
        return web.Response(text=html, content_type="text/html")

    async def post(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > self.max_body:
            return self._error(413, "too_large", "web_too_large")
        # read with our own limit: a chunked body has no Content-Length to check above, and
        # the server-wide limit is sized for WhatsApp's webhooks (megabytes)
        raw = bytearray()
        async for chunk in request.content.iter_chunked(65_536):
            raw += chunk
            if len(raw) > self.max_body:
                return self._error(413, "too_large", "web_too_large")
        try:
            data = json.loads(raw)
            req = ChatRequest.model_validate(data)
        except (ValueError, ValidationError):
            return self._error(400, "bad_request", "web_bad_request")
        if not self.limit.allow(req.session):
            return self._error(429, "rate_limited", "web_rate_limited")
        if req.text is not None:
            kind, payload = "text", {"text": req.text}
        elif req.choice is not None:
            kind, payload = "choice", {"payload": req.choice}
        else:
            kind, payload = "command", {"name": req.command}
        received = await self.inbox.handle(
            # message ids are the client's own: unique per session, not across sessions
            Inbound(channel=CHANNEL, external_id=req.session,
                    platform_id=f"{req.session}:{req.message_id}",
                    kind=kind, payload=payload),  # type: ignore[arg-type]
            then=partial(_rows_after, after=req.after),
        )
        if received.new:
            return web.json_response(_response(received.extra, req.after))
        return web.json_response(await self._messages(req.session, req.after))

    async def get(self, request: web.Request) -> web.Response:
        try:
            req = PollRequest.model_validate(dict(request.query))
        except ValidationError:
            return self._error(400, "bad_request", "web_bad_request")
        return web.json_response(await self._messages(req.session, req.after))

    async def _messages(self, session_id: str, after: int) -> dict[str, Any]:
        return _response(await self.inbox.db.transaction(_fetch, session_id, after), after)


def _response(rows: list[dict[str, Any]], after: int) -> dict[str, Any]:
    return {"messages": rows, "cursor": max([after, *(r["id"] for r in rows)])}


_CONTACT = select(contact_t.c.id).where(contact_t.c.channel == CHANNEL,
                                        contact_t.c.external_id == bindparam("ext"))


def _fetch(conn: Connection, session_id: str, after: int) -> list[dict[str, Any]]:
    contact_id = conn.execute(_CONTACT, {"ext": session_id}).scalar()
    if contact_id is None:
        return []
    return _rows_after(conn, contact_id, after)


def _rows_after(conn: Connection, contact_id: int, after: int) -> list[dict[str, Any]]:
    return [
        {"id": row.id, "text": row.payload["text"],
         "options": [{"id": o["id"], "label": o["label"]} for o in row.payload["options"]]}
        for row in fetch_after(conn, contact_id, after)
    ]
