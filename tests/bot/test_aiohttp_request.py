"""The aiohttp transport under python-telegram-bot: what reaches the server and how failures map.

The happy paths (text, buttons, photo uploads, getUpdates) run through it in every Telegram
test against the fake Bot API; these pin what those cannot: the request as the server sees
it, the long-poll read timeout, and the errors the channel code relies on.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError, TimedOut

from bot.channels.aiohttp_request import AiohttpRequest
from tests.fakes.loopback import LoopbackServer

PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Recorder(LoopbackServer):
    """A Bot API that records each request and answers after `delay` seconds."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.seen: list[dict[str, Any]] = []
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.handle)
        self.url = await self._serve(app)
        return self.url

    async def handle(self, request: web.Request) -> web.Response:
        entry: dict[str, Any] = {"method": request.match_info["method"],
                                 "type": request.content_type,
                                 "agent": request.headers.get("User-Agent", "")}
        if request.content_type == "application/json":
            entry["body"] = await request.json()
        else:
            form = await request.post()
            entry["body"] = {k: (v.file.read(), v.filename, v.content_type)
                             if isinstance(v, web.FileField) else v for k, v in form.items()}
        self.seen.append(entry)
        await asyncio.sleep(self.delay)
        if entry["method"] == "getMe":
            return web.json_response({"ok": True, "result": {
                "id": 1, "is_bot": True, "first_name": "Lontar", "username": "lontar_bot"}})
        if entry["method"] == "getUpdates":
            return web.json_response({"ok": True, "result": []})
        return web.json_response({"ok": True, "result": {
            "message_id": len(self.seen), "date": 0, "chat": {"id": 5, "type": "private"}}})


@pytest.fixture
async def server() -> AsyncIterator[Recorder]:
    async with Recorder() as recorder:
        yield recorder


def bot_for(url: str, **kwargs: Any) -> Bot:
    return Bot("1:T", base_url=f"{url}/bot", request=AiohttpRequest(**kwargs),
               get_updates_request=AiohttpRequest(**kwargs))


async def test_a_message_with_buttons_goes_as_form_fields(server: Recorder) -> None:
    async with bot_for(server.url) as bot:
        await bot.send_message(5, "Syarat KK", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Lihat", callback_data="go:kk")]]))
    sent = server.seen[-1]
    assert sent["method"] == "sendMessage"
    assert sent["type"] == "application/x-www-form-urlencoded"
    assert sent["body"]["chat_id"] == "5" and sent["body"]["text"] == "Syarat KK"
    markup = json.loads(sent["body"]["reply_markup"])
    assert markup["inline_keyboard"][0][0]["callback_data"] == "go:kk"
    assert "python-telegram-bot" in sent["agent"]


async def test_a_photo_goes_as_multipart_with_its_caption(server: Recorder) -> None:
    async with bot_for(server.url) as bot:
        await bot.send_photo(5, PHOTO, caption="Jemput bola", filename="kk.png")
    sent = server.seen[-1]
    assert sent["type"] == "multipart/form-data"
    assert sent["body"]["caption"] == "Jemput bola"
    assert json.loads(sent["body"]["chat_id"]) == 5  # form fields carry JSON values
    data, name, _ = sent["body"]["photo"]
    assert data == PHOTO and name == "kk.png"


async def test_a_slow_answer_is_timed_out(server: Recorder) -> None:
    async with bot_for(server.url, read_timeout=0.2) as bot:
        server.delay = 1.0
        with pytest.raises(TimedOut):
            await bot.send_message(5, "halo")


async def test_a_long_poll_waits_longer_than_the_read_timeout(server: Recorder) -> None:
    """python-telegram-bot adds getUpdates' `timeout` to the transport's read timeout."""
    async with bot_for(server.url, read_timeout=0.3) as bot:
        server.delay = 0.6
        assert await bot.get_updates(timeout=1) == ()


async def test_a_closed_port_is_a_network_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NetworkError) as caught:
        async with bot_for(f"http://127.0.0.1:{port}"):
            pass
    assert not isinstance(caught.value, TimedOut)


async def test_shutdown_closes_and_a_new_initialize_reopens(server: Recorder) -> None:
    request = AiohttpRequest()
    await request.initialize()
    await request.shutdown()
    bot = Bot("1:T", base_url=f"{server.url}/bot", request=request)
    async with bot:
        await bot.send_message(5, "lagi")
    assert server.seen[-1]["body"]["text"] == "lagi"
