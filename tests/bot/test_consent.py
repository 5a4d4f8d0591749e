"""Consent, area and interests through the real inbox and database, and the platforms' own
opt-outs (a Telegram block, WhatsApp's marketing stop) through their adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, select, update

from bot.app import Lontar, build, recover, start_channels, stop_channels, web_app
from bot.config import load_settings
from bot.inbox import Inbound
from bot.models import broadcast_t, contact_t, conversation_t, delivery_t, outbox_t, topic_t
from bot.services import consent
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.whatsapp_api import FakeWhatsApp
from tests.waiting import until

T1 = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


class Citizen:
    """One Telegram chat driven through `Inbox.handle`; each call returns that turn's
    replies (outbox payloads)."""

    def __init__(self, lontar: Lontar, channel: str = "telegram", who: str = "777"):
        self.lontar, self.channel, self.who, self.n = lontar, channel, who, 0
        self.at = T1

    async def _send(self, kind: str, payload: dict[str, Any],
                    wait: timedelta = timedelta(seconds=30)) -> list[dict[str, Any]]:
        self.n += 1
        self.at += wait
        received = await self.lontar.inbox.handle(Inbound(
            self.channel, self.who, f"{self.who}-{self.n}", kind,  # type: ignore[arg-type]
            payload, at=self.at))
        with self.lontar.db.engine.connect() as conn:
            return list(conn.execute(select(outbox_t.c.payload).where(
                outbox_t.c.inbound_id == received.inbound_id).order_by(outbox_t.c.id))
                .scalars())

    async def say(self, text: str, **wait: float) -> list[dict[str, Any]]:
        return await self._send("text", {"text": text}, timedelta(**wait) if wait else
                                timedelta(seconds=30))

    async def command(self, name: str) -> list[dict[str, Any]]:
        return await self._send("command", {"name": name})

    async def press(self, payload: str) -> list[dict[str, Any]]:
        return await self._send("choice", {"payload": payload})

    def contact(self) -> Any:
        with self.lontar.db.engine.connect() as conn:
            return conn.execute(select(contact_t).where(
                contact_t.c.channel == self.channel, contact_t.c.external_id == self.who)).one()


def _asked(replies: list[dict[str, Any]], lontar: Lontar) -> bool:
    return any(r["text"] == lontar.content.msg("id", "consent_ask")
               and [o["id"] for o in r["options"]] == ["go:consent:yes", "go:consent:no"]
               for r in replies)


def _numbered(replies: list[dict[str, Any]], target: str) -> str:
    return next(o["id"] for r in replies for o in r["options"]
                if o["id"].partition("|")[2] == target)


async def test_yes_at_first_contact_opts_in(lontar: Lontar) -> None:
    c = Citizen(lontar)
    first = await c.command("start")
    assert _asked(first, lontar) and first[-1]["text"] == lontar.content.msg("id", "consent_ask")
    assert not c.contact().opted_in
    replies = await c.press("go:consent:yes")
    assert [r["text"] for r in replies] == [lontar.content.msg("id", "subscribed")]
    row = c.contact()
    assert row.opted_in and row.consent_at == c.at and row.opted_out_at is None
    assert not _asked(await c.say("menu"), lontar)


async def test_no_at_first_contact_is_remembered_and_not_asked_again(lontar: Lontar) -> None:
    c = Citizen(lontar)
    assert _asked(await c.say("syarat kk baru"), lontar)
    await c.say("tidak")  # typed instead of pressed
    row = c.contact()
    assert not row.opted_in and row.consent_at is None and row.opted_out_at == c.at
    assert not _asked(await c.say("jam buka", hours=5), lontar)  # after an idle reset too
    with lontar.db.engine.begin() as conn:  # the conversation forgot: the contact row knows
        conn.execute(update(conversation_t).values(state={}))
    assert not _asked(await c.say("menu"), lontar)


async def test_berhenti_and_langganan(lontar: Lontar) -> None:
    c = Citizen(lontar)
    await c.command("start")
    await c.press("go:consent:yes")
    replies = await c.command("berhenti")
    assert replies[0]["text"] == lontar.content.msg("id", "stop")
    row = c.contact()
    assert not row.opted_in and row.opted_out_at == c.at
    await c.command("langganan")
    assert c.contact().opted_in and c.contact().consent_at == c.at
    await c.say("berhenti")
    assert not c.contact().opted_in


async def test_a_first_no_is_not_counted_against_a_broadcast(lontar: Lontar) -> None:
    """Only an opt-out after outreach (not the answer to the first question) is counted
    against the broadcast that reached the contact shortly before."""
    c = Citizen(lontar)
    await c.command("start")
    with lontar.db.engine.begin() as conn:
        broadcast = conn.execute(insert(broadcast_t), {
            "title": "Jemput bola", "status": "sending", "text_id": "Jadwal", "buttons": [],
            "audience": {}, "cursor": 0, "queued": 1, "skipped_blocked": 0,
            "skipped_opted_out": 0, "created_at": c.at, "updated_at": c.at,
        }).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(insert(delivery_t), {"broadcast_id": broadcast, "contact_id": c.contact().id,
                                          "created_at": c.at})

    def counted() -> bool:
        with lontar.db.engine.connect() as conn:
            return conn.execute(select(delivery_t.c.opted_out_at)).scalar() is not None

    await c.press("go:consent:no")
    assert not counted()
    await c.command("langganan")
    await c.command("berhenti")
    assert counted()


async def test_the_web_chat_is_not_asked(lontar: Lontar) -> None:
    """Outreach never reaches a web chat session, so it is not offered there."""
    web = Citizen(lontar, channel="web", who="session-1")
    assert not _asked(await web.command("start"), lontar)
    assert not _asked(await web.say("syarat ktp"), lontar)


async def test_area_is_stored_on_the_contact(lontar: Lontar) -> None:
    c = Citizen(lontar)
    await c.press("go:consent:no")
    replies = await c.command("pengaturan")
    replies = await c.press(_numbered(replies, "set:area"))
    replies = await c.press(_numbered(replies, "set:kec:maulafa"))
    replies = await c.press(_numbered(replies, "set:kel:maulafa:1005"))
    row = c.contact()
    assert (row.kecamatan, row.kelurahan) == ("maulafa", "maulafa:1005")
    assert "Bello" in replies[-1]["text"]
    await c.press(_numbered(replies, "set:area"))
    await c.press("go:set:kel:maulafa:9999")  # forged: refused, nothing changes
    assert (c.contact().kecamatan, c.contact().kelurahan) == ("maulafa", "maulafa:1005")
    await c.press("go:set:skip:alak")
    assert (c.contact().kecamatan, c.contact().kelurahan) == ("alak", None)


async def test_settings_show_what_the_contact_row_says(lontar: Lontar) -> None:
    """A platform opt-out (or staff) changes the row between turns; settings read it."""
    c = Citizen(lontar)
    await c.command("start")
    await c.press("go:consent:yes")
    with lontar.db.engine.begin() as conn:
        consent.opt_out(conn, c.contact().id, c.at)
        conn.execute(update(contact_t).values(kecamatan="oebobo", kelurahan="oebobo:1010"))
    text = (await c.command("pengaturan"))[-1]["text"]
    assert lontar.content.msg("id", "settings_not_subscribed") in text and "Liliba" in text


async def test_topics_asked_are_recorded(lontar: Lontar) -> None:
    c = Citizen(lontar)
    await c.say("halo")  # a greeting is no interest
    await c.say("syarat kk baru")
    first = c.at
    await c.say("biaya")
    await c.say("kk baru", hours=2)
    last = c.at
    await c.press("go:set:kec:nowhere")  # no topic
    with lontar.db.engine.connect() as conn:
        rows = {r.topic: r for r in conn.execute(select(topic_t)).all()}
    assert set(rows) == {"kk-baru", "biaya"}
    assert rows["kk-baru"].first_at == first and rows["kk-baru"].last_at == last
    assert rows["biaya"].contact_id == c.contact().id


# -- the platforms' own opt-outs ------------------------------------------------------------


@pytest.fixture
async def telegram(tmp_path: Path) -> AsyncIterator[tuple[Lontar, FakeTelegram]]:
    async with FakeTelegram() as fake:
        app = build(load_settings(data_dir=tmp_path, telegram_bot_token="123456:TEST-token",
                                  telegram_api_base_url=fake.base_url, telegram_poll_timeout=1))
        await recover(app)
        await start_channels(app)
        yield app, fake
        await stop_channels(app)
        app.close()


async def test_telegram_block_and_unblock(telegram: tuple[Lontar, FakeTelegram]) -> None:
    app, fake = telegram
    fake.text(5001, "halo")
    await until(lambda: len(fake.messages_for(5001)) == 2)  # the menu, the question
    c = Citizen(app, who="5001")
    fake.my_chat_member(5001, "kicked")
    blocked = await until(lambda: c.contact().blocked_at)
    assert abs(blocked - datetime.now(UTC)) < timedelta(minutes=1)  # the update's own date
    fake.my_chat_member(5001, "member")
    await until(lambda: c.contact().blocked_at is None)
    fake.my_chat_member(5002, "kicked")  # a chat Lontar never talked to: nothing to do
    fake.text(5001, "menu")  # updates are taken in order: once this is answered, so was that
    await until(lambda: len(fake.messages_for(5001)) >= 3)
    with app.db.engine.connect() as conn:
        assert conn.execute(select(contact_t.c.external_id)).scalars().all() == ["5001"]


@pytest.fixture
async def whatsapp(tmp_path: Path) -> AsyncIterator[tuple[Lontar, FakeWhatsApp, str]]:
    async with FakeWhatsApp(token="T", phone_number_id="1234567890", app_secret="s") as fake:
        app = build(load_settings(
            data_dir=tmp_path, whatsapp_access_token="T", whatsapp_phone_number_id="1234567890",
            whatsapp_app_secret="s", whatsapp_verify_token="v",
            whatsapp_api_base_url=fake.base_url))
        await start_channels(app)
        async with TestClient(TestServer(web_app(app))) as client:
            yield app, fake, str(client.make_url("/webhooks/whatsapp"))
        await stop_channels(app)
        app.close()


async def test_whatsapp_marketing_stop_and_resume(
        whatsapp: tuple[Lontar, FakeWhatsApp, str]) -> None:
    app, fake, url = whatsapp
    user = "6281234567890"
    await fake.deliver(url, fake.text_message(user, "halo"))
    c = Citizen(app, channel="whatsapp", who=user)
    await until(lambda: fake.sent_to(user))
    ask = app.content.msg("id", "consent_ask")
    await until(lambda: any(s.body.get("interactive", {}).get("body", {}).get("text") == ask
                            for s in fake.sent_to(user)))
    await fake.deliver(url, fake.button_reply(user, "go:consent:yes", "Ya, mau"))
    await until(lambda: c.contact().opted_in)
    status, _ = await fake.deliver(url, fake.user_preferences(user, "stop"))
    assert status == 200
    row = c.contact()
    assert not row.opted_in and row.opted_out_at is not None
    status, _ = await fake.deliver(url, fake.user_preferences(user, "resume"))
    assert status == 200 and c.contact().opted_in
    assert c.contact().consent_at >= row.consent_at  # Meta's time of the resume
