"""The real Telegram and WhatsApp senders against a platform answering anything: a refusal,
a rate limit, a 5xx, a success missing its fields, HTML from a proxy, half a JSON body.

Each send ends as sent, retried later, or given up with a reason; nothing escapes the
outbox worker and nothing is logged at ERROR (a platform's bad answer is not a Lontar bug),
but for either platform refusing Lontar's token, which staff must fix (and the row waits).
The platform is a loopback aiohttp server that answers what hypothesis draws.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import event, given
from hypothesis import strategies as st
from sqlalchemy import insert, select

from bot.app import Lontar, build
from bot.config import load_settings
from bot.models import contact_t, outbox_t
from bot.outbox import OutboxWorker, new_row
from flows.types import Option, Reply
from tests.bot.conftest import Errors
from tests.fuzz import fuzz_settings

_ids = count(1)
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Lontar", "username": "lontar_bot"}


class Platform:
    """Answers every request with `answer` (status, body, content type); getMe stays true,
    so python-telegram-bot can start."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes, str] = (200, b"{}", "application/json")
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Platform:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        if request.path.endswith("/getMe"):
            return web.json_response({"ok": True, "result": BOT_USER})
        status, body, ctype = self.answer
        return web.Response(status=status, body=body, content_type=ctype)


def _tg_message(message_id: Any) -> dict[str, Any]:
    return {"message_id": message_id, "date": 1772413200, "text": "ok",
            "chat": {"id": 70000001, "type": "private"}, "from": BOT_USER}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=3),
    max_leaves=8)
_status = st.sampled_from([200, 200, 200, 201, 204, 400, 401, 403, 404, 409, 413, 429, 500,
                           502, 503, 504])
_raw = st.sampled_from([b"", b"{", b"<html><body>502 Bad Gateway</body></html>", b"null",
                        b"\xff\xfe\x00", b"[]", b'{"ok": true}', b"OK"])
_ctype = st.sampled_from(["application/json", "text/html", "text/plain"])
_tg_body = st.one_of(
    st.builds(lambda mid: {"ok": True, "result": _tg_message(mid)},
              st.integers(1, 2**31) | _json),
    st.builds(lambda code, text, extra: {"ok": False, "error_code": code, "description": text,
                                         **extra},
              st.sampled_from([400, 403, 429, 500]) | _json,
              st.sampled_from(["Bad Request: chat not found", "Forbidden: bot was blocked by "
                               "the user", "Too Many Requests: retry after 3"]) | st.text(),
              st.fixed_dictionaries({}, optional={"parameters": st.fixed_dictionaries(
                  {}, optional={"retry_after": st.integers(-5, 10**9) | _json})})),
    st.builds(lambda r: {"ok": True, "result": r}, _json),
    _json)
_wa_body = st.one_of(
    st.builds(lambda wamid: {"messaging_product": "whatsapp", "messages": [{"id": wamid}]},
              st.text(min_size=1, max_size=40) | _json),
    st.builds(lambda code, msg, extra: {"error": {"code": code, "message": msg, **extra}},
              st.sampled_from([1, 4, 100, 190, 131026, 131047, 131049, 131050, 131053,
                               130429, 131056, 368]) | _json,
              st.text(max_size=30) | _json,
              st.fixed_dictionaries({}, optional={"error_subcode": _json,
                                                  "error_data": _json})),
    st.builds(lambda m: {"messages": m}, _json),
    _json)


def _answer(body: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[int, bytes, str]]:
    encoded = body.map(lambda b: json.dumps(b, allow_nan=True).encode())
    return st.tuples(_status, encoded | _raw, _ctype)


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    async with Platform() as p:
        yield p


@pytest.fixture
async def senders(tmp_path: Path, platform: Platform) -> AsyncIterator[Lontar]:
    app = build(load_settings(
        data_dir=tmp_path, telegram_bot_token="123456:TEST-token",
        telegram_api_base_url=platform.url, whatsapp_access_token="TEST-TOKEN",
        whatsapp_phone_number_id="1234567890", whatsapp_app_secret="app-secret",
        whatsapp_verify_token="verify-me", whatsapp_api_base_url=platform.url + "/v23.0",
        quiet_start="00:00", quiet_end="00:00"))
    assert app.telegram is not None and app.whatsapp is not None
    await app.telegram.bot.initialize()
    yield app
    await app.telegram.bot.shutdown()
    await app.whatsapp.client.close()
    app.close()


REPLIES = [Reply("Syarat KK baru: KTP, buku nikah."),
           Reply("Pilih layanan", options=(Option("KK", "s:kk-baru"), Option("KTP", "s:ktp"))),
           Reply("panjang " * 900)]  # several messages on both platforms


async def _send_one(app: Lontar, channel: str, reply: Reply) -> tuple[str, str | None]:
    now = datetime.now(UTC)
    external = str(70_000_000 + next(_ids)) if channel == "telegram" else f"6281{next(_ids):09d}"
    with app.db.engine.begin() as conn:
        cid = conn.execute(insert(contact_t), {
            "channel": channel, "external_id": external, "language": "id", "created_at": now,
            "last_inbound_at": now}).inserted_primary_key[0]
        row_id = conn.execute(insert(outbox_t), new_row(
            cid, channel, reply.to_dict(), 0, now)).inserted_primary_key[0]
    sender = app.telegram.sender if channel == "telegram" else app.whatsapp.sender  # type: ignore[union-attr]
    worker = OutboxWorker(app.db, sender, rate=1000, burst=100)  # fresh: no hold carried over
    await worker.drain_once()
    with app.db.engine.connect() as conn:
        row = conn.execute(select(outbox_t.c.status, outbox_t.c.last_error)
                           .where(outbox_t.c.id == row_id)).one()
    return row.status, row.last_error


# each platform: its answers, whether an answer refuses Lontar's token (said at ERROR, for
# staff to fix, and the row waits for a new try), and what is then said
PLATFORMS: dict[str, tuple[st.SearchStrategy[Any], Callable[[tuple[int, bytes, str]], bool],
                           str]] = {
    "telegram": (_tg_body, lambda a: a[0] in (401, 404), "refused the bot token"),
    "whatsapp": (_wa_body, lambda a: b'"code": 190' in a[1], "rejected the access token"),
}


@pytest.mark.parametrize("channel", sorted(PLATFORMS))
@fuzz_settings(60)
@given(data=st.data(), reply=st.sampled_from(REPLIES))
async def test_each_sender_takes_any_answer(
        channel: str, senders: Lontar, platform: Platform, errors: Errors,
        data: st.DataObject, reply: Reply) -> None:
    body, refuses, said = PLATFORMS[channel]
    answer = data.draw(_answer(body), label="answer")
    errors.take()
    platform.answer = answer
    status, last_error = await _send_one(senders, channel, reply)
    event(f"{channel} {answer[0]} -> {status}")
    assert status in ("sent", "pending", "failed", "unsendable"), status
    assert status == "sent" or last_error, "a send that did not go says why"
    logged = errors.take()
    if refuses(answer):
        assert all(said in line for line in logged), logged
        assert status == "pending"
    else:
        assert logged == [], answer


async def test_a_good_answer_is_sent_on_both(senders: Lontar, platform: Platform) -> None:
    """The fuzz's success bodies are right: the same server with them does deliver."""
    platform.answer = (200, json.dumps({"ok": True, "result": _tg_message(7)}).encode(),
                       "application/json")
    assert (await _send_one(senders, "telegram", REPLIES[0]))[0] == "sent"
    platform.answer = (200, json.dumps({"messages": [{"id": "wamid.1"}]}).encode(),
                       "application/json")
    assert (await _send_one(senders, "whatsapp", REPLIES[0]))[0] == "sent"
