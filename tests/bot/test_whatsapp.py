"""WhatsApp end to end: signed webhooks in, the aiohttp client out, against the fake Graph API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import func, select

from bot.app import Lontar, build, start_channels, stop_channels, web_app
from bot.channels.whatsapp import render
from bot.config import load_settings
from bot.models import (
    PRIORITY_BROADCAST,
    PRIORITY_NOTIFICATION,
    Contact,
    InboundMessage,
    Outbox,
)
from flows.engine import step
from flows.types import Command, Option, Reply, State
from tests.conftest import T0
from tests.fakes.whatsapp_api import FakeWhatsApp
from tests.waiting import until

USER = "6281234567890"
TOKEN, PHONE_ID, SECRET = "TEST-TOKEN", "1234567890", "app-secret"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWhatsApp]:
    async with FakeWhatsApp(token=TOKEN, phone_number_id=PHONE_ID, app_secret=SECRET) as f:
        yield f


def _settings(tmp_path: Path, fake: FakeWhatsApp, **extra: Any):  # type: ignore[no-untyped-def]
    return load_settings(data_dir=tmp_path, whatsapp_access_token=TOKEN,
                         whatsapp_phone_number_id=PHONE_ID, whatsapp_app_secret=SECRET,
                         whatsapp_verify_token="verify-me", whatsapp_api_base_url=fake.base_url,
                         **{"quiet_start": "00:00", "quiet_end": "00:00", **extra})
    # no quiet hours: outreach rows in these tests must go whatever the hour CI runs at


class WA:
    def __init__(self, app: Lontar, client: TestClient, fake: FakeWhatsApp):
        self.app, self.client, self.fake = app, client, fake
        self.url = str(client.make_url("/webhooks/whatsapp"))

    async def post(self, payload: dict[str, Any], **kw: Any) -> int:
        status, _ = await self.fake.deliver(self.url, payload, **kw)
        return int(status)

    def count(self, model: type) -> int:
        with self.app.db.session() as s:
            return int(s.exec(select(func.count()).select_from(model)).one())


@pytest.fixture
async def wa(tmp_path: Path, fake: FakeWhatsApp) -> AsyncIterator[WA]:
    app = build(_settings(tmp_path, fake, whatsapp_template_utility="status_update",
                          whatsapp_template_marketing="sosialisasi"))
    await start_channels(app)
    async with TestClient(TestServer(web_app(app))) as client:
        yield WA(app, client, fake)
    await stop_channels(app)
    app.close()


def _bodies(fake: FakeWhatsApp, to: str = USER) -> list[dict[str, Any]]:
    return [s.body for s in fake.sent_to(to)]


def _text_of(body: dict[str, Any]) -> str:
    if body["type"] == "text":
        return str(body["text"]["body"])
    if body["type"] == "interactive":
        return str(body["interactive"]["body"]["text"])
    return ""


def _ids(body: dict[str, Any]) -> list[tuple[str, str]]:
    inter = body["interactive"]
    if inter["type"] == "button":
        return [(b["reply"]["id"], b["reply"]["title"]) for b in inter["action"]["buttons"]]
    return [(r["id"], r["title"]) for sec in inter["action"]["sections"] for r in sec["rows"]]


async def test_verification(wa: WA) -> None:
    ok = await wa.client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "12345"})
    assert ok.status == 200 and await ok.text() == "12345"
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": "verify-me"}, {}):
        assert (await wa.client.get("/webhooks/whatsapp", params=params)).status == 403


async def test_signature_missing_or_wrong(wa: WA) -> None:
    payload = wa.fake.text_message(USER, "halo")
    assert await wa.post(payload, signature="") == 401
    assert await wa.post(payload, signature="sha256=" + "0" * 64) == 403
    assert wa.count(InboundMessage) == 0


async def test_guidance_by_list_buttons_and_text(wa: WA) -> None:
    """Menu as a list, choices by id, free text: the texts are the engine's."""
    c = wa.app.content
    assert await wa.post(wa.fake.text_message(USER, "halo")) == 200
    # the menu, then the consent question (two reply buttons of never-stale links)
    first = await until(lambda: len(_bodies(wa.fake)) == 2 and _bodies(wa.fake))
    expected = step(State(), Command("start", T0), c)
    assert [_text_of(b) for b in first] == [r.text for r in expected.replies]
    menu, question = first
    assert menu["interactive"]["type"] == "list"  # 10 options
    assert [i for i, _ in _ids(question)] == ["go:consent:yes", "go:consent:no"]
    docs_id = next(i for i, title in _ids(menu) if title == c.main_menu[0].label.id)
    await wa.post(wa.fake.list_reply(USER, docs_id, c.main_menu[0].label.id))
    await until(lambda: any(_text_of(b) == c.msg("id", "docs_intro") for b in _bodies(wa.fake)))
    await wa.post(wa.fake.text_message(USER, "bahasa"))
    lang = await until(lambda: [b for b in _bodies(wa.fake)
                                if _text_of(b) == c.msg("id", "lang_intro")])
    assert lang[-1]["interactive"]["type"] == "button"  # 3 options
    english = next(i for i, title in _ids(lang[-1]) if title == "English")
    await wa.post(wa.fake.button_reply(USER, english, "English"))
    await until(lambda: any(c.msg("en", "lang_set") in _text_of(b) for b in _bodies(wa.fake)))
    await wa.post(wa.fake.text_message(USER, "akte kelahiran anak sy"))
    await until(lambda: any(c.services["akta-kelahiran"].bring.en in _text_of(b)
                            for b in _bodies(wa.fake)))
    await until(lambda: len(wa.fake.read_marks) == 5)  # every incoming message


def test_more_than_ten_options_become_numbered_text(content: Any) -> None:
    reply = Reply("Pilih:", tuple(Option(f"1|t:{i}", f"Pilihan {i}") for i in range(12)))
    (message,) = render(reply, content, "id")
    assert message["type"] == "text"
    body = message["text"]["body"]
    assert "1. Pilihan 0" in body and "12. Pilihan 11" in body
    assert content.msg("id", "wa_numbered_hint") in body


async def test_same_message_twice_is_handled_once(wa: WA) -> None:
    payload = wa.fake.text_message(USER, "syarat kia")
    assert await wa.post(payload) == 200
    assert await wa.post(payload) == 200
    bring = wa.app.content.services["kia"].bring.id
    await until(lambda: any(bring in _text_of(b) for b in _bodies(wa.fake)))
    await asyncio.sleep(0.3)
    assert sum(bring in _text_of(b) for b in _bodies(wa.fake)) == 1
    assert wa.count(InboundMessage) == 1


async def test_mixed_batch_keeps_the_good_item(wa: WA) -> None:
    from tests.fakes.whatsapp_api import batch, malformed_message

    good = wa.fake.text_message(USER, "syarat akta kematian")
    body = batch(wa.fake.unknown_field(), malformed_message(USER), good)
    assert await wa.post(body) == 200
    bring = wa.app.content.services["akta-kematian"].bring.id
    await until(lambda: any(bring in _text_of(b) for b in _bodies(wa.fake)))
    assert wa.count(InboundMessage) == 1


async def test_statuses_keep_the_highest(wa: WA) -> None:
    await wa.post(wa.fake.text_message(USER, "halo"))
    sent = await until(lambda: wa.fake.sent_to(USER))
    wamid = sent[0].wamid
    for name in ("sent", "read", "delivered"):  # out of order
        assert await wa.post(wa.fake.status_update(wamid, name, recipient_id=USER)) == 200
    with wa.app.db.session() as s:
        row = s.exec(select(Outbox).where(Outbox.platform_message_id == wamid)).one()
    assert row.delivery == "read"


def _make_stale(app: Lontar) -> int:
    """The contact last wrote two days ago: the 24-hour window is closed."""
    with app.db.session() as s:
        contact = s.exec(select(Contact).where(Contact.external_id == USER)).one()
        contact.last_inbound_at = datetime.now(UTC) - timedelta(days=2)
        s.add(contact)
        s.commit()
        return contact.id or 0


def _notify(app: Lontar, contact_id: int, text: str, **payload: Any) -> None:
    with app.db.session() as s:
        s.add(Outbox(contact_id=contact_id, channel="whatsapp", priority=PRIORITY_NOTIFICATION,
                     payload={"text": text, "options": [], **payload}))
        s.commit()
    app.wake("whatsapp", contact_id)


async def test_outside_the_window_goes_as_a_template(wa: WA) -> None:
    await wa.post(wa.fake.text_message(USER, "halo"))
    await until(lambda: wa.fake.sent_to(USER))
    contact_id = _make_stale(wa.app)
    wa.fake.close_window(USER)
    _notify(wa.app, contact_id, "KTP Anda sudah siap diambil.\nBawa tanda terima.")
    tpl = await until(lambda: [b for b in _bodies(wa.fake) if b["type"] == "template"])
    assert tpl[0]["template"]["name"] == "status_update"
    param = tpl[0]["template"]["components"][0]["parameters"][0]["text"]
    assert "\n" not in param and "siap diambil" in param


async def test_window_closed_reported_later_switches_to_template(wa: WA) -> None:
    """A free-form message accepted, then failed with 131047: sent again as a template."""
    await wa.post(wa.fake.text_message(USER, "halo"))
    await until(lambda: wa.fake.sent_to(USER))
    with wa.app.db.session() as s:
        contact_id = s.exec(select(Contact.id)).one()
    wa.fake.close_window(USER)  # Meta thinks the window closed; our clock disagrees
    _notify(wa.app, contact_id, "Pengaduan Anda dijawab.")
    await until(lambda: wa.fake.pending_statuses)
    await wa.fake.flush_statuses(wa.url)
    tpl = await until(lambda: [b for b in _bodies(wa.fake) if b["type"] == "template"])
    assert tpl[0]["template"]["name"] == "status_update"


async def test_no_template_configured_is_unsendable_with_a_reason(tmp_path: Path,
                                                                  fake: FakeWhatsApp) -> None:
    app = build(_settings(tmp_path, fake))
    await start_channels(app)
    async with TestClient(TestServer(web_app(app))) as client:
        w = WA(app, client, fake)
        await w.post(fake.text_message(USER, "halo"))
        await until(lambda: fake.sent_to(USER))
        contact_id = _make_stale(app)
        _notify(app, contact_id, "Status berubah.")

        def unsendable() -> Outbox | None:
            with app.db.session() as s:
                return s.exec(select(Outbox).where(Outbox.status == "unsendable")).first()

        row = await until(unsendable)
        assert "24-hour window" in (row.unsendable_reason or "")
        assert "WHATSAPP_TEMPLATE_UTILITY" in (row.unsendable_reason or "")
    await stop_channels(app)
    app.close()


async def test_marketing_stop_opts_out_and_resume_opts_in(wa: WA) -> None:
    await wa.post(wa.fake.text_message(USER, "halo"))
    await until(lambda: wa.fake.sent_to(USER))

    def opted_in() -> bool:
        with wa.app.db.session() as s:
            return bool(s.exec(select(Contact.opted_in)).one())

    with wa.app.db.session() as s:
        c = s.exec(select(Contact)).one()
        c.opted_in = True
        s.add(c)
        s.commit()
    assert await wa.post(wa.fake.user_preferences(USER, "stop")) == 200
    assert not opted_in()
    with wa.app.db.session() as s:  # outreach after the stop is not sent
        contact_id = s.exec(select(Contact.id)).one()
        s.add(Outbox(contact_id=contact_id, channel="whatsapp", priority=PRIORITY_BROADCAST,
                     payload={"text": "Sosialisasi KK", "options": []}))
        s.commit()
    wa.app.wake("whatsapp", 0)

    def outreach_status() -> str | None:
        with wa.app.db.session() as s:
            return s.exec(select(Outbox.status).where(
                Outbox.priority == PRIORITY_BROADCAST)).one()

    assert await until(lambda: outreach_status() == "failed")
    assert not any("Sosialisasi" in _text_of(b) for b in _bodies(wa.fake))
    assert await wa.post(wa.fake.user_preferences(USER, "resume")) == 200
    assert opted_in()


async def test_media(wa: WA, tmp_path: Path) -> None:
    c = wa.app.content
    big = wa.fake.add_media("image/jpeg", 20 * 1024 * 1024)
    await wa.post(wa.fake.image_message(USER, big))
    await until(lambda: any(c.msg("id", "attachment_too_large") in _text_of(b)
                            for b in _bodies(wa.fake)))
    exe = wa.fake.add_media("application/x-msdownload", 1000)
    await wa.post(wa.fake.document_message(USER, exe, "application/x-msdownload", "a.exe"))
    await until(lambda: any(c.msg("id", "attachment_bad_type") in _text_of(b)
                            for b in _bodies(wa.fake)))
    small = wa.fake.add_media("image/jpeg", 300_000)
    await wa.post(wa.fake.image_message(USER, small))
    folder = tmp_path / "attachments" / "whatsapp" / USER
    files = await until(lambda: list(folder.glob("*.jpg")) if folder.exists() else [])
    assert files[0].stat().st_size == 300_000
    await wa.post(wa.fake.sticker_message(USER))
    await wa.post(wa.fake.unsupported_message(USER))
    await until(lambda: sum(c.msg("id", "attachment_unsupported") in _text_of(b)
                            for b in _bodies(wa.fake)) >= 3)


async def test_unreachable_user_is_marked(wa: WA) -> None:
    wa.fake.fail_next(status=400, code=131026, message="Message undeliverable")
    await wa.post(wa.fake.text_message(USER, "halo"))

    def blocked() -> bool:
        with wa.app.db.session() as s:
            return s.exec(select(Contact.blocked_at)).one() is not None

    await until(blocked)


async def test_throughput_error_is_retried(wa: WA) -> None:
    wa.fake.fail_next(status=400, code=130429, message="Rate limit hit", count=2)
    await wa.post(wa.fake.text_message(USER, "halo"))
    await until(lambda: wa.fake.sent_to(USER), timeout=15)

    def sent() -> list[Outbox]:  # marked once the answer is back: a moment after the fake
        with wa.app.db.session() as s:  # the answer and the consent question
            rows = s.exec(select(Outbox).where(Outbox.status == "sent")).all()
            return list(rows) if len(rows) == 2 else []

    rows = await until(sent)
    assert sum(r.attempts for r in rows) >= 4  # two throttled tries, then each once


async def test_oversized_body_is_refused(wa: WA) -> None:
    big = b'{"object":"whatsapp_business_account","entry":[],"pad":"' + b"x" * (
        wa.app.settings.whatsapp_max_body + 10) + b'"}'
    from tests.fakes.whatsapp_api import sign

    resp = await wa.client.post("/webhooks/whatsapp", data=big, headers={
        "X-Hub-Signature-256": sign(big, SECRET), "Content-Type": "application/json"})
    assert resp.status == 413
    assert wa.count(InboundMessage) == 0


async def test_typed_number_quick_reply_and_location(wa: WA) -> None:
    c = wa.app.content
    await wa.post(wa.fake.text_message(USER, "menu"))
    await until(lambda: [b for b in _bodies(wa.fake) if b["type"] == "interactive"])
    await wa.post(wa.fake.text_message(USER, "1"))  # the first entry of the list, typed
    await until(lambda: any(_text_of(b) == c.msg("id", "docs_intro") for b in _bodies(wa.fake)))
    await wa.post(wa.fake.quick_reply(USER, "go:s:kk-baru", "Lihat syarat KK"))
    await until(lambda: any(c.services["kk-baru"].bring.id in _text_of(b)
                            for b in _bodies(wa.fake)))
    await wa.post(wa.fake.location_message(USER, -10.17, 123.6))
    await until(lambda: any(c.msg("id", "location_received") in _text_of(b)
                            for b in _bodies(wa.fake)))


async def test_daily_budget_defers_to_the_next_day(tmp_path: Path, fake: FakeWhatsApp) -> None:
    app = build(_settings(tmp_path, fake, whatsapp_template_utility="status_update",
                          whatsapp_daily_initiated=1))
    await start_channels(app)
    async with TestClient(TestServer(web_app(app))) as client:
        w = WA(app, client, fake)
        other = "6289999999999"
        for user in (USER, other):
            await w.post(fake.text_message(user, "halo"))
        await until(lambda: fake.sent_to(USER) and fake.sent_to(other))
        with app.db.session() as s:
            contacts = s.exec(select(Contact)).all()
            for contact in contacts:
                contact.last_inbound_at = datetime.now(UTC) - timedelta(days=2)
                s.add(contact)
            s.commit()
            ids = [c.id or 0 for c in contacts]
        for contact_id in ids:
            _notify(app, contact_id, "Dokumen Anda siap.")
        await until(lambda: [s for s in fake.sent if s.type == "template"])
        await asyncio.sleep(0.5)
        assert len([s for s in fake.sent if s.type == "template"]) == 1

        def deferred() -> Outbox | None:
            with app.db.session() as s:
                return s.exec(select(Outbox).where(Outbox.status == "pending")).first()

        row = await until(deferred)
        assert row.next_attempt_at > datetime.now(UTC) + timedelta(hours=1)
    await stop_channels(app)
    app.close()


async def test_staff_answer_outside_the_window_goes_as_the_utility_template(wa: WA) -> None:
    """A complaint filed on WhatsApp; staff answer two days later: the answer arrives as the
    utility template, flattened into its one parameter."""
    from bot.models import complaint_t
    from bot.services import tickets
    from bot.services.staff import Staff, create_user

    steps = ("mau komplain", "1", "7", "1", "Antrean lama sekali di loket", "1", "1", "1")
    for text in steps:
        before = len(wa.fake.sent_to(USER))
        await wa.post(wa.fake.text_message(USER, text))
        await until(lambda n=before: len(wa.fake.sent_to(USER)) > n)
    await until(lambda: any("ADU-" in _text_of(b) for b in _bodies(wa.fake)))
    _make_stale(wa.app)
    wa.fake.close_window(USER)
    with wa.app.db.engine.begin() as conn:
        ticket_id = conn.execute(select(complaint_t.c.id)).scalar_one()
        ana = create_user(conn, "ana", "kata-sandi-panjang", "staff")
        done = tickets.answer(conn, ticket_id, Staff(ana, "ana", "Ana", "staff"),
                              "Loket tambahan dibuka.\nTerima kasih.", wa.app.content)
    wa.app.wake_channels(done.channels)
    tpl = await until(lambda: [b for b in _bodies(wa.fake) if b["type"] == "template"])
    assert tpl[0]["template"]["name"] == "status_update"
    param = tpl[0]["template"]["components"][0]["parameters"][0]["text"]
    assert "Loket tambahan dibuka." in param and "\n" not in param


async def test_a_slow_chat_holds_up_only_itself(wa: WA, monkeypatch: pytest.MonkeyPatch) -> None:
    """Turns ran one at a time from one queue: a citizen whose photo downloaded slowly held
    up everyone who wrote after. Now each chat has its own lane: others go first, and that
    citizen's own messages still turn in the order they came."""
    other = "6281299990000"
    download = wa.app.whatsapp._download  # type: ignore[union-attr]
    released = asyncio.Event()

    async def slow_download(payload: dict[str, Any]) -> dict[str, Any]:
        await released.wait()  # a media download that takes its time
        return await download(payload)

    monkeypatch.setattr(wa.app.whatsapp, "_download", slow_download)
    photo = wa.fake.add_media("image/jpeg", 50_000)
    assert await wa.post(wa.fake.image_message(USER, photo)) == 200
    assert await wa.post(wa.fake.text_message(USER, "syarat kk")) == 200
    assert await wa.post(wa.fake.text_message(other, "syarat kia")) == 200
    bring = wa.app.content.services["kia"].bring.id
    await until(lambda: any(bring in _text_of(b) for b in _bodies(wa.fake, other)))
    assert _bodies(wa.fake, USER) == []  # still waiting for its photo
    released.set()
    await until(lambda: len(_bodies(wa.fake, USER)) >= 2)

    def turned() -> list[int]:  # inbound ids in the order their replies were queued
        with wa.app.db.session() as s:
            contact = s.exec(select(Contact).where(Contact.external_id == USER)).one()
            rows = s.exec(select(Outbox).where(Outbox.contact_id == contact.id)
                          .order_by(Outbox.id)).all()
        return [r.inbound_id for r in rows if r.inbound_id is not None]

    await until(lambda: len(set(turned())) == 2)
    ids = turned()
    assert ids == sorted(ids)  # the photo's turn, then the text's
    await until(lambda: len(wa.fake.read_marks) == 3)  # every message marked read, after


async def test_each_message_of_a_reply_counts_against_the_rate(tmp_path: Path,
                                                               fake: FakeWhatsApp) -> None:
    """A reply with a map pin is two messages (text, then location); Meta counts both. The
    sender took one token per row, so six such rows at a limit of 4/s drew 130429s."""
    from sqlalchemy import insert

    from bot.models import contact_t, outbox_t
    from bot.outbox import OutboxWorker, new_row
    from flows.types import Venue

    app = build(_settings(tmp_path, fake))
    assert app.whatsapp is not None
    try:
        fake.rate_limit_per_second = 4
        reply = Reply("Dinas", venue=Venue("Dinas Dukcapil", "Jl. Timor Raya", -10.16, 123.6))
        now = datetime.now(UTC)
        with app.db.engine.begin() as conn:
            for n in range(6):
                cid = conn.execute(insert(contact_t), {
                    "channel": "whatsapp", "external_id": f"62812000000{n:02d}",
                    "language": "id", "created_at": now,
                    "last_inbound_at": now}).inserted_primary_key[0]  # the window is open
                conn.execute(insert(outbox_t), new_row(cid, "whatsapp", reply.to_dict(), 0, now))
        worker = OutboxWorker(app.db, app.whatsapp.sender, rate=4, burst=1, limit=4)
        await worker.drain_once()
        assert [s.type for s in fake.sent].count("location") == 6
        assert len(fake.sent) == 12 and fake.rejected_rate == []
    finally:
        await app.whatsapp.sender.client.close()
        app.close()
