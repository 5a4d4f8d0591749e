"""Issue 6 end to end: the office imports its applications; citizens on the web chat,
Telegram (fake Bot API) and WhatsApp (fake Graph API) check one and ask to be notified; the
office's own system changes the status through the staff API; each subscriber gets exactly
one notification. Then the real server is killed (SIGKILL) after a change and before its
notification could be sent, and the restarted server sends it, once."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from bot.app import Lontar, build, recover, start_channels, stop_channels, web_app
from bot.config import load_settings
from bot.models import contact_t
from bot.services import api_tokens
from bot.services.application_import import run
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.whatsapp_api import FakeWhatsApp
from tests.procs import free_port, healthy, start_with_telegram
from tests.waiting import until

TODAY = date(2026, 11, 21)
HEADER = "nomor_registrasi,layanan,kantor,status,alasan,nik,tanggal_lahir\n"
ROWS = ("KK-2026-0001,kk-baru,dinas,diproses,,5371011203900001,1990-03-12\n"
        "KTP-2026-0002,ktp-baru,dinas,diproses,,,1985-08-12\n")
CHAT, WA_USER = 5001, "6281234567890"
WA = {"token": "TEST-TOKEN", "phone_number_id": "1234567890", "app_secret": "app-secret"}
READY = "Permohonan KK-2026-0001: Siap diambil"


def _import(lontar: Lontar, tmp_path: Path, rows: str = ROWS) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.csv"
    path.write_text(HEADER + rows, encoding="utf-8")
    report = run(lontar.db.engine, path, lontar.content, lontar.settings.secret_key, TODAY)
    assert report.errors == []


def _token(lontar: Lontar) -> str:
    with lontar.db.engine.begin() as conn:
        return api_tokens.create(conn, f"simduk-{uuid.uuid4().hex[:6]}", "write")


class Web:
    """A web-chat citizen over HTTP."""

    def __init__(self, client: TestClient):
        self.client, self.session, self.cursor = client, "web" + "w" * 20, 0
        self.seen: list[dict[str, Any]] = []

    async def send(self, **body: Any) -> list[dict[str, Any]]:
        r = await self.client.post("/api/chat", json={
            "session": self.session, "message_id": uuid.uuid4().hex, "after": self.cursor,
            **body})
        assert r.status == 200, await r.text()
        return self._take(await r.json())

    async def poll(self) -> list[dict[str, Any]]:
        r = await self.client.get(f"/api/chat?session={self.session}&after={self.cursor}")
        return self._take(await r.json())

    def _take(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        self.cursor = data["cursor"]
        self.seen += data["messages"]
        return list(data["messages"])

    def option(self, target: str) -> str:
        last = [m for m in self.seen if m.get("options")][-1]
        return next(o["id"] for o in last["options"] if o["id"].endswith(target))


async def _web_subscribes(web: Web) -> None:
    await web.send(text="cek status")
    await web.send(text="KK-2026-0001")
    shown = await web.send(text="12-03-1990")
    assert "KK-2026-0001: Diproses" in shown[-1]["text"]
    done = await web.send(choice=web.option("p:sub:KK-2026-0001"))
    assert "memberi tahu" in done[-1]["text"]


async def _telegram_subscribes(tg: FakeTelegram) -> None:
    for text, expect in (("cek status", "nomor registrasi"), ("KK-2026-0001", "tanggal lahir"),
                         ("12.03.1990", "KK-2026-0001: Diproses")):
        tg.text(CHAT, text)
        await until(lambda expect=expect: [m for m in tg.messages_for(CHAT)
                                           if expect in m.plain])
    shown = [r for r in tg.sent if r.chat_id == CHAT and r.reply_markup][-1]
    button = next(b for row in shown.reply_markup["inline_keyboard"]  # type: ignore[index]
                  for b in row if b["callback_data"].endswith("p:sub:KK-2026-0001"))
    tg.press(CHAT, button["callback_data"], message_id=shown.message_id)
    await until(lambda: [m for m in tg.messages_for(CHAT) if "memberi tahu" in m.plain])


async def _whatsapp_subscribes(wa: FakeWhatsApp, url: str) -> None:
    for text, expect in (("cek status", "nomor registrasi"), ("kk-2026-0001", "tanggal lahir"),
                         ("12031990", "KK-2026-0001: Diproses")):
        status, _ = await wa.deliver(url, wa.text_message(WA_USER, text))
        assert status == 200
        await until(lambda expect=expect: [s for s in wa.sent_to(WA_USER) if expect in s.text])
    shown = [s for s in wa.sent_to(WA_USER) if s.type == "interactive"][-1]
    sub = next((i, t) for i, t in shown.buttons if i.endswith("p:sub:KK-2026-0001"))
    await wa.deliver(url, wa.button_reply(WA_USER, *sub))
    await until(lambda: [s for s in wa.sent_to(WA_USER) if "memberi tahu" in s.text])


def _count(items: list[Any], text_of: Callable[[Any], str]) -> int:
    return sum(READY in text_of(i) for i in items)


async def test_import_subscribe_on_three_channels_change_by_api(tmp_path: Path) -> None:
    async with FakeTelegram() as tg, FakeWhatsApp(**WA) as wa:
        app = build(load_settings(
            data_dir=tmp_path, telegram_bot_token="123456:TEST-token",
            telegram_api_base_url=tg.base_url, telegram_poll_timeout=1,
            whatsapp_access_token=WA["token"], whatsapp_phone_number_id=WA["phone_number_id"],
            whatsapp_app_secret=WA["app_secret"], whatsapp_verify_token="verify-me",
            whatsapp_api_base_url=wa.base_url, whatsapp_template_utility="status_update"))
        _import(app, tmp_path)
        await recover(app)
        await start_channels(app)
        try:
            async with TestClient(TestServer(web_app(app))) as client:
                web = Web(client)
                await _web_subscribes(web)
                await _telegram_subscribes(tg)
                await _whatsapp_subscribes(wa, str(client.make_url("/webhooks/whatsapp")))
                token = _token(app)
                r = await client.patch("/api/v1/applications/KK-2026-0001",
                                       json={"status": "siap-diambil"},
                                       headers={"Authorization": f"Bearer {token}"})
                assert r.status == 200, await r.text()
                await until(lambda: _count(tg.messages_for(CHAT), lambda m: m.plain)
                            and _count(wa.sent_to(WA_USER), lambda s: s.text))
                for _ in range(100):  # the web chat is polled, like the page does
                    if _count(web.seen, lambda m: m["text"]):
                        break
                    await web.poll()
                    await asyncio.sleep(0.05)
                # the same change again, and another application's change: nothing more
                await client.patch("/api/v1/applications/KK-2026-0001",
                                   json={"status": "siap-diambil"},
                                   headers={"Authorization": f"Bearer {token}"})
                await asyncio.sleep(1.0)
                await web.poll()
                assert _count(tg.messages_for(CHAT), lambda m: m.plain) == 1
                assert _count(wa.sent_to(WA_USER), lambda s: s.text) == 1
                assert _count(web.seen, lambda m: m["text"]) == 1
                # a day later WhatsApp's 24-hour window is closed: the utility template
                with app.db.engine.begin() as conn:
                    conn.execute(update(contact_t).where(contact_t.c.channel == "whatsapp")
                                 .values(last_inbound_at=datetime.now(UTC) - timedelta(days=2)))
                wa.close_window(WA_USER)
                r = await client.patch("/api/v1/applications/KK-2026-0001",
                                       json={"status": "diambil"},
                                       headers={"Authorization": f"Bearer {token}"})
                assert (await r.json())["notified"] == 3
                tpl = await until(lambda: [s for s in wa.sent_to(WA_USER)
                                           if s.type == "template"])
                assert tpl[0].body["template"]["name"] == "status_update"
                param = tpl[0].body["template"]["components"][0]["parameters"][0]["text"]
                assert "KK-2026-0001: Sudah diambil" in param
        finally:
            await stop_channels(app)
            app.close()


def _start(data_dir: Path, port: int, tg: FakeTelegram) -> subprocess.Popen[str]:
    return start_with_telegram(data_dir, port, str(tg.base_url))


async def _patch(port: int, token: str, status: str) -> int:
    def call() -> int:  # in a thread, so this loop keeps serving the fake meanwhile
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/applications/KK-2026-0001", method="PATCH",
            data=json.dumps({"status": status}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    return await asyncio.to_thread(call)


async def test_killed_between_change_and_send_loses_nothing(tmp_path: Path) -> None:
    async with FakeTelegram() as tg:
        # the office's data and the token are set up by the same commands staff use
        setup = build(load_settings(data_dir=tmp_path, secret_key_setting="k" * 40))
        _import(setup, tmp_path)
        token = _token(setup)
        setup.close()
        port = free_port()
        proc = _start(tmp_path, port, tg)
        try:
            await healthy(port, proc)
            await _telegram_subscribes(tg)
            # Telegram is down when the change comes: the notification stays queued
            tg.fail_next("sendMessage", 502, count=10_000)
            assert await _patch(port, token, "siap-diambil") == 200
            await until(lambda: tg.count("sendMessage", 502) >= 1)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert _count(tg.messages_for(CHAT), lambda m: m.plain) == 0
        tg.clear_faults()  # Telegram is back
        proc = _start(tmp_path, port, tg)
        try:
            await healthy(port, proc)
            await until(lambda: _count(tg.messages_for(CHAT), lambda m: m.plain), timeout=30)
            await asyncio.sleep(1.5)
            assert _count(tg.messages_for(CHAT), lambda m: m.plain) == 1
        finally:
            proc.terminate()
            proc.wait(timeout=10)
