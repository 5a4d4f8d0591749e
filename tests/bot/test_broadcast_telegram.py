"""A broadcast on Telegram through python-telegram-bot and the fake Bot API: the picture as a
photo with the text as caption (uploaded once, then reused), topic buttons as go: links."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from bot.app import Lontar, build
from bot.config import load_settings
from bot.models import contact_t
from bot.outbox import BROADCASTS, OutboxWorker
from bot.services import broadcast_images as images
from bot.services import broadcasts
from tests.fakes.telegram_api import FakeTelegram, UploadedFile


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[Lontar, FakeTelegram]]:
    async with FakeTelegram() as fake:
        lontar = build(load_settings(data_dir=tmp_path, telegram_bot_token="123456:TEST-token",
                                     telegram_api_base_url=fake.base_url))
        await lontar.telegram.bot.initialize()  # type: ignore[union-attr]
        yield lontar, fake
        await lontar.telegram.bot.shutdown()  # type: ignore[union-attr]
        lontar.close()


async def test_picture_caption_and_topic_buttons(app: tuple[Lontar, FakeTelegram]) -> None:
    lontar, fake = app
    now = datetime.now(UTC) - timedelta(minutes=1)
    name = images.save(images.folder(lontar.settings.data_dir), _png())
    with lontar.db.engine.begin() as conn:
        conn.execute(insert(contact_t), [
            {"channel": "telegram", "external_id": str(chat), "language": lang,
             "opted_in": True, "created_at": now}
            for chat, lang in ((7001, "id"), (7002, "en"), (7003, "id"))])
        bid = broadcasts.create(conn, lontar.content, title="KK", text_id="Urus KK <gratis>",
                                text_en="Get your KK", buttons=["kk-baru"], image=name,
                                now=now)
        broadcasts.approve(conn, bid, None, now)
        broadcasts.schedule(conn, lontar.content, bid, now)
        broadcasts.tick(conn, lontar.content, now)
    worker = OutboxWorker(lontar.db, lontar.telegram.sender, rate=100,  # type: ignore[union-attr]
                          burst=10)
    while await worker.drain_once(BROADCASTS):
        pass
    photos = [s for s in fake.sent if s.method == "sendPhoto"]
    assert sorted(s.chat_id for s in photos) == [7001, 7002, 7003]
    by_chat = {s.chat_id: s for s in photos}
    assert by_chat[7001].plain.startswith("Urus KK <gratis>")  # escaped, shown as typed
    assert "berhenti" in by_chat[7001].plain
    assert by_chat[7002].plain.startswith("Get your KK") and "stop" in by_chat[7002].plain
    buttons = [b for row in (by_chat[7001].reply_markup or {})["inline_keyboard"] for b in row]
    assert [b["callback_data"] for b in buttons] == ["go:s:kk-baru"]
    uploads = [s for s in photos if isinstance(s.params.get("photo"), UploadedFile)]
    assert len(uploads) == 1  # the first send uploads; the others reuse Telegram's file id


async def test_a_missing_picture_still_sends_the_text(app: tuple[Lontar, FakeTelegram]) -> None:
    lontar, fake = app
    now = datetime.now(UTC) - timedelta(minutes=1)
    name = images.save(images.folder(lontar.settings.data_dir), _png())
    (images.folder(lontar.settings.data_dir) / name).unlink()
    with lontar.db.engine.begin() as conn:
        conn.execute(insert(contact_t), {"channel": "telegram", "external_id": "7001",
                                         "language": "id", "opted_in": True,
                                         "created_at": now})
        bid = broadcasts.create(conn, lontar.content, title="KK", text_id="Urus KK",
                                image=name, now=now)
        broadcasts.approve(conn, bid, None, now)
        broadcasts.schedule(conn, lontar.content, bid, now)
        broadcasts.tick(conn, lontar.content, now)
    worker = OutboxWorker(lontar.db, lontar.telegram.sender, rate=100)  # type: ignore[union-attr]
    await worker.drain_once(BROADCASTS)
    assert [s.method for s in fake.sent] == ["sendMessage"]
    assert fake.sent[0].plain.startswith("Urus KK")
