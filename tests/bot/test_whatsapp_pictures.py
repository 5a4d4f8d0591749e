"""A broadcast's picture on WhatsApp, against the fake Graph API over loopback.

Inside the 24-hour window the picture is uploaded once per process and sent by media id: as an
image header over reply buttons, as an image with the text as caption, or on its own before a
list. An expired id is uploaded again (refused at once, or reported later by a failed status).
A picture that cannot be had leaves the text alone; outside the window the template carries no
picture at all.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, select

from bot.app import Lontar, build, start_channels, stop_channels, web_app
from bot.channels.whatsapp import WhatsAppSender
from bot.config import load_settings
from bot.models import PRIORITY_BROADCAST, contact_t, outbox_t
from bot.outbox import Meta, Recipient, SendError
from bot.services import broadcast_images as images
from flows.types import Option, Reply
from tests.fakes.whatsapp_api import FakeWhatsApp, Sent
from tests.waiting import until

TOKEN, PHONE_ID, SECRET = "TEST-TOKEN", "1234567890", "app-secret"
MARKETING = "sosialisasi_dukcapil"
USER = "6281100000001"
TEXT = "Jemput bola KTP-el di Kelurahan Oebobo, Sabtu 08.00-12.00.\nBawa KK asli."
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
BUTTON = Option("go:s:ktp-baru", "KTP baru")


@dataclass
class Office:
    app: Lontar
    fake: FakeWhatsApp

    @property
    def sender(self) -> WhatsAppSender:
        assert self.app.whatsapp is not None
        return self.app.whatsapp.sender

    def picture(self, data: bytes = PNG) -> str:
        """A stored broadcast picture, named the way Lontar names them."""
        name = secrets.token_hex(16) + ".png"
        folder = images.folder(self.app.settings.data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        return name

    async def send(self, reply: Reply, image: str | None, to: str = USER,
                   wrote: timedelta = timedelta(hours=1)) -> str | None:
        """One outreach message, as the outbox worker hands it to the sender."""
        self.fake.user_message(to)
        contact = Recipient(id=int(to[-4:]), channel="whatsapp", external_id=to,
                            display_name=None, language="id",
                            last_inbound_at=datetime.now(UTC) - wrote)
        meta = Meta(priority=PRIORITY_BROADCAST, category="marketing", image=image)
        return (await self.sender.send(contact, reply, meta)).platform_id

    def uploads(self) -> int:
        return self.fake.count("upload", 200)


def _settings(tmp_path: Path, fake: FakeWhatsApp) -> Any:
    return load_settings(
        data_dir=tmp_path, whatsapp_access_token=TOKEN, whatsapp_phone_number_id=PHONE_ID,
        whatsapp_app_secret=SECRET, whatsapp_verify_token="verify-me",
        whatsapp_api_base_url=fake.base_url, whatsapp_template_marketing=MARKETING,
        quiet_start="00:00", quiet_end="00:00")


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Office]:
    async with FakeWhatsApp(token=TOKEN, phone_number_id=PHONE_ID, app_secret=SECRET) as fake:
        fake.register_template(MARKETING, "id", body_params=1, category="MARKETING")
        app = build(_settings(tmp_path, fake))
        yield Office(app, fake)
        await stop_channels(app)
        app.close()


def _header_id(sent: Sent) -> str:
    header = sent.payload["header"]
    assert header["type"] == "image" and set(header["image"]) == {"id"}
    return str(header["image"]["id"])


async def test_picture_with_buttons_is_an_image_header(office: Office) -> None:
    fake = office.fake
    wamid = await office.send(Reply(TEXT, (BUTTON,)), office.picture())
    (sent,) = fake.sent_to(USER)
    assert (sent.type, sent.interactive_type, wamid) == ("interactive", "button", sent.wamid)
    assert sent.text == TEXT and sent.buttons == [(BUTTON.id, BUTTON.label)]
    media = fake.media[_header_id(sent)]
    assert media.content == PNG and media.mime_type == "image/png"
    assert office.uploads() == 1 and not fake.pending_statuses


async def test_picture_without_buttons_carries_the_text_as_caption(office: Office) -> None:
    fake = office.fake
    await office.send(Reply(TEXT), office.picture())
    (sent,) = fake.sent_to(USER)
    assert sent.type == "image" and sent.text == TEXT
    assert fake.media[sent.payload["id"]].content == PNG
    assert office.uploads() == 1


async def test_a_list_gets_the_picture_first_then_the_text(office: Office) -> None:
    """A list header must be text: the picture goes on its own, the list keeps the text."""
    options = tuple(Option(f"go:s:{i}", f"Layanan {i}") for i in range(4))
    await office.send(Reply(TEXT, options), office.picture())
    image, listed = office.fake.sent_to(USER)
    assert image.type == "image" and "caption" not in image.payload
    assert office.fake.media[image.payload["id"]].content == PNG
    assert listed.interactive_type == "list" and listed.text == TEXT
    assert "header" not in listed.payload


async def test_many_sends_at_once_upload_once(office: Office) -> None:
    fake = office.fake
    fake.delay = 0.2  # the upload is still under way when the other sends want the id
    name = office.picture()
    users = [f"628110000010{i}" for i in range(3)]
    await asyncio.gather(*(office.send(Reply(TEXT, (BUTTON,)), name, to=u) for u in users))
    ids = {_header_id(s) for s in fake.sent}
    assert len(fake.sent) == 3 and len(ids) == 1
    assert office.uploads() == 1 and fake.count("upload") == 1
    await office.send(Reply(TEXT), name)  # later sends reuse it as well
    assert office.uploads() == 1 and fake.last_sent(USER).payload["id"] in ids


async def test_missing_picture_sends_the_text_with_a_warning(
        office: Office, caplog: pytest.LogCaptureFixture) -> None:
    fake = office.fake
    gone = secrets.token_hex(16) + ".jpg"
    with caplog.at_level(logging.WARNING, logger="bot.channels.whatsapp"):
        await office.send(Reply(TEXT, (BUTTON,)), gone)
    (sent,) = fake.sent_to(USER)
    assert sent.interactive_type == "button" and sent.text == TEXT
    assert "header" not in sent.payload
    assert any(gone in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert fake.count("upload") == 0


async def test_refused_upload_sends_the_text_and_a_retryable_one_raises(
        office: Office, caplog: pytest.LogCaptureFixture) -> None:
    fake = office.fake
    name = office.picture()
    fake.fail_next(500, 131000, on="upload")  # Meta's hiccup: the row is tried again
    with pytest.raises(SendError) as raised:
        await office.send(Reply(TEXT), name)
    assert raised.value.retryable and not fake.sent
    # refused for good (Meta cannot process it): the citizen still gets the text
    fake.fail_next(400, 131053, on="upload")
    with caplog.at_level(logging.WARNING, logger="bot.channels.whatsapp"):
        await office.send(Reply(TEXT), name)
    (sent,) = fake.sent_to(USER)
    assert sent.type == "text" and sent.text == TEXT
    assert any(name in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    # and the next recipients do not each pay for another refused upload
    await office.send(Reply(TEXT), name, to="6281100000009")
    assert fake.count("upload") == 2 and fake.last_sent().type == "text"


async def test_expired_media_refused_at_once_is_uploaded_again_once(office: Office) -> None:
    fake = office.fake
    fake.unknown_media = "reject"
    name = office.picture()
    await office.send(Reply(TEXT, (BUTTON,)), name)
    first = _header_id(fake.last_sent())
    fake.expire_media(first)
    await office.send(Reply(TEXT, (BUTTON,)), name, to="6281100000002")
    fresh = _header_id(fake.last_sent())
    assert fresh != first and fake.media[fresh].content == PNG
    assert fake.count("send", 400) == 1 and office.uploads() == 2
    await office.send(Reply(TEXT, (BUTTON,)), name, to="6281100000003")
    assert _header_id(fake.last_sent()) == fresh and office.uploads() == 2


async def test_an_unrelated_parameter_error_costs_no_upload(office: Office) -> None:
    """131009 may be about the media id: looked up, found alive, so the error stands."""
    fake = office.fake
    name = office.picture()
    await office.send(Reply(TEXT), name)
    fake.fail_next(400, 131009, on="send")
    with pytest.raises(SendError) as raised:
        await office.send(Reply(TEXT), name, to="6281100000002")
    assert not raised.value.retryable
    assert fake.count("media", 200) == 1 and office.uploads() == 1


async def test_an_id_near_thirty_days_old_is_replaced(office: Office) -> None:
    name = office.picture()
    await office.send(Reply(TEXT), name)
    first = office.fake.last_sent().payload["id"]
    media_id, at = office.sender.pictures._media[name]
    office.sender.pictures._media[name] = (media_id, at - timedelta(days=29, minutes=1))
    await office.send(Reply(TEXT), name)
    assert office.uploads() == 2 and office.fake.last_sent().payload["id"] != first


async def test_outside_the_window_the_template_goes_without_the_picture(
        office: Office) -> None:
    fake = office.fake
    fake.close_window(USER)
    name = office.picture()
    contact = Recipient(id=7, channel="whatsapp", external_id=USER, display_name=None,
                        language="id", last_inbound_at=datetime.now(UTC) - timedelta(days=3))
    meta = Meta(priority=PRIORITY_BROADCAST, category="marketing", image=name)
    delivered = await office.sender.send(contact, Reply(TEXT, (BUTTON,)), meta)
    (sent,) = fake.sent_to(USER)
    assert sent.type == "template" and delivered.template == MARKETING
    assert [c["type"] for c in sent.payload["components"]] == ["body"]
    assert fake.count("upload") == 0


def _queue(office: Office, name: str) -> tuple[int, Any]:
    """A broadcast row with the picture for USER (window open); returns (contact, row())."""
    app = office.app
    now = datetime.now(UTC)
    with app.db.engine.begin() as conn:
        contact_key = conn.execute(insert(contact_t).values(
            channel="whatsapp", external_id=USER, language="id", opted_in=True,
            consent_at=now - timedelta(days=30), created_at=now - timedelta(days=30),
            last_inbound_at=now - timedelta(hours=1))).inserted_primary_key
        assert contact_key is not None
        contact_id = int(contact_key[0])
        row_key = conn.execute(insert(outbox_t).values(
            contact_id=contact_id, channel="whatsapp", priority=PRIORITY_BROADCAST,
            payload={**Reply(TEXT, (BUTTON,)).to_dict(), "category": "marketing",
                     "image": name})).inserted_primary_key
        assert row_key is not None
        row_id = int(row_key[0])
    office.fake.user_message(USER)

    def row() -> Any:
        with app.db.engine.begin() as conn:
            return conn.execute(select(outbox_t).where(outbox_t.c.id == row_id)).one()

    return contact_id, row


async def test_expired_media_reported_later_is_sent_again_with_a_fresh_upload(
        office: Office) -> None:
    """Meta accepts the message, then fails it with 131053: the webhook drops the id and the
    row goes out once more with a new upload."""
    app, fake = office.app, office.fake
    name = office.picture()
    await office.send(Reply(TEXT), name, to="6281100000002")  # uploads the picture
    first = fake.last_sent().payload["id"]
    fake.expire_media(first)
    contact_id, row = _queue(office, name)
    async with TestClient(TestServer(web_app(app))) as client:
        await start_channels(app)
        app.wake("whatsapp", contact_id)
        await until(lambda: row().status == "sent" and fake.pending_statuses)
        (failed,) = fake.sent_to(USER)
        assert _header_id(failed) == first and failed.failed_code == 131053
        url = str(client.make_url("/webhooks/whatsapp"))
        assert await fake.flush_statuses(url) == [200]
        await until(lambda: len(fake.sent_to(USER)) == 2 and row().status == "sent")
    again = fake.last_sent(USER)
    fresh = _header_id(again)
    assert fresh != first and fake.media[fresh].content == PNG
    assert again.failed_code is None and office.uploads() == 2
    assert row().platform_message_id == again.wamid


async def test_a_picture_failing_twice_later_leaves_the_text(office: Office) -> None:
    app, fake = office.app, office.fake
    fake.fail_later(USER, 131053, count=2)  # whatever the id, Meta cannot use it
    contact_id, row = _queue(office, office.picture())
    async with TestClient(TestServer(web_app(app))) as client:
        url = str(client.make_url("/webhooks/whatsapp"))
        await start_channels(app)
        app.wake("whatsapp", contact_id)
        for n in (1, 2):
            def failed(n: int = n) -> bool:
                return (len(fake.sent_to(USER)) == n and row().status == "sent"
                        and bool(fake.pending_statuses))

            await until(failed)
            assert await fake.flush_statuses(url) == [200]
        await until(lambda: len(fake.sent_to(USER)) == 3 and row().status == "sent")
    first, second, text = fake.sent_to(USER)
    assert _header_id(first) != _header_id(second)  # the second try uploaded afresh
    assert text.interactive_type == "button" and "header" not in text.payload
    assert text.text == TEXT and text.failed_code is None
    assert office.uploads() == 2 and row().payload["image"] is None
