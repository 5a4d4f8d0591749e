"""Telegram end to end: python-telegram-bot over real HTTP against the fake Bot API server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlmodel import func, select

from bot.app import Lontar, build, recover, start_channels, stop_channels, web_app
from bot.channels.telegram import keyboard
from bot.channels.text import split_text
from bot.config import load_settings
from bot.db import make_engine
from bot.models import Contact, InboundMessage, Outbox
from flows.engine import step
from flows.types import Choice, Command, Option, State
from tests.conftest import T0
from tests.fakes.telegram_api import FakeTelegram
from tests.waiting import until

CHAT = 5001
SECRET = "s3cret-token_value"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as f:
        yield f


def _settings(tmp_path: Path, fake: FakeTelegram, **extra: Any):  # type: ignore[no-untyped-def]
    return load_settings(data_dir=tmp_path, telegram_bot_token="123456:TEST-token",
                         telegram_api_base_url=fake.base_url, telegram_poll_timeout=1,
                         telegram_rate_per_second=30, **extra)


@pytest.fixture
async def polling(tmp_path: Path, fake: FakeTelegram) -> AsyncIterator[Lontar]:
    app = build(_settings(tmp_path, fake))
    await recover(app)
    await start_channels(app)
    yield app
    await stop_channels(app)
    app.close()


def _chat_sent(fake: FakeTelegram, chat: int = CHAT) -> list[Any]:
    return [r for r in fake.sent if r.chat_id == chat]


def _buttons(record: Any) -> list[dict[str, Any]]:
    markup = record.reply_markup or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def _numbered(record: Any) -> bool:
    """Engine buttons (`seq|target`), not a reply of `go:` links such as the consent
    question that follows the first answer."""
    return any(not b.get("callback_data", "").startswith("go:") for b in _buttons(record))


async def test_commands_are_set_in_both_languages(polling: Lontar, fake: FakeTelegram) -> None:
    for lang in ("", "en"):
        names = [c for c, _ in fake.commands[lang]]
        assert names == ["start", "menu", "status", "pengaduan", "bahasa", "langganan",
                         "berhenti", "pengaturan", "bantuan", "hapus"]
    assert fake.commands[""][0][1] == polling.content.msg("id", "cmd_start")


async def test_guidance_by_buttons_matches_the_engine(polling: Lontar, fake: FakeTelegram) -> None:
    """The same presses through Telegram and through the pure engine give the same texts."""
    c = polling.content
    fake.text(CHAT, "/start")
    await until(lambda: len(_chat_sent(fake)) == 2)  # the menu, then the consent question
    expected = step(State(), Command("start", T0), c)
    assert [r.plain for r in _chat_sent(fake)] == [r.text for r in expected.replies]
    presses = 0
    state = expected.state
    for label in (c.main_menu[0].label.id, c.groups["kk"].label.id,
                  c.services["kk-baru"].label.id):
        current = [r for r in fake.messages_for(CHAT) if _numbered(r)][-1]
        button = next(b for b in _buttons(current) if b["text"] == label)
        fake.press(CHAT, button["callback_data"], message_id=current.message_id)
        presses += 1
        expected = step(state, Choice(button["callback_data"], T0), c)
        state = expected.state
        want = expected.replies[-1].text
        await until(lambda want=want: any(m.plain == want for m in fake.messages_for(CHAT)))
    await until(lambda: len(fake.answered) == presses)
    # the greeting (with the main menu) stays; the KK menu replaced the documents menu in
    # place; the guidance came as a new message
    assert fake.count("editMessageText") == 1
    texts = [m.plain for m in fake.messages_for(CHAT)]
    assert texts[-1].startswith(c.services["kk-baru"].title.id)
    assert c.services["kk-baru"].bring.id in texts[-1]


async def test_free_text_with_typos(polling: Lontar, fake: FakeTelegram) -> None:
    fake.text(CHAT, "ktp sy ilang bagemana")
    bring = polling.content.services["ktp-hilang-rusak"].bring.id
    record = await until(lambda: [r for r in _chat_sent(fake) if bring in r.plain])
    assert record[0].parse_mode == "HTML"


async def test_html_is_escaped(polling: Lontar, fake: FakeTelegram) -> None:
    """Content may contain <, > and &; Telegram must never see them as markup."""
    fake.text(CHAT, "<b>halo</b> & <script>")
    await until(lambda: _chat_sent(fake))
    assert fake.count("sendMessage", status=400) == 0


async def test_command_for_another_bot_and_with_our_name(polling: Lontar, fake: FakeTelegram,
                                                         ) -> None:
    fake.text(CHAT, "/menu@lontar_test_bot")
    await until(lambda: [r for r in _chat_sent(fake) if r.reply_markup])
    with polling.db.session() as s:
        kinds = s.exec(select(InboundMessage.kind)).all()
    assert kinds == ["command"]


async def test_stale_button_is_answered(polling: Lontar, fake: FakeTelegram) -> None:
    fake.text(CHAT, "/start")
    first = (await until(lambda: [r for r in _chat_sent(fake) if _numbered(r)]))[-1]
    old = _buttons(first)
    fake.press(CHAT, old[1]["callback_data"], message_id=first.message_id)
    await until(lambda: len(fake.answered) == 1)
    fake.text(CHAT, "menu")
    await until(lambda: len([r for r in _chat_sent(fake) if r.method == "sendMessage"]) >= 3)
    fake.press(CHAT, old[0]["callback_data"], message_id=first.message_id)
    stale = polling.content.msg("id", "stale_button")
    await until(lambda: any(stale in m.plain for m in fake.messages_for(CHAT)))
    assert len(fake.answered) == 2


async def test_crash_between_receiving_and_replying(tmp_path: Path, fake: FakeTelegram) -> None:
    """Stored but not processed when the process dies: handled once after restart."""
    fake.text(CHAT, "syarat kia")
    first = build(_settings(tmp_path, fake))
    assert first.telegram is not None
    await first.telegram.bot.initialize()
    updates = await first.telegram.bot.get_updates(timeout=0)
    for update in updates:  # stored, never processed, never acknowledged
        await first.telegram.store(update)
    await first.telegram.bot.shutdown()
    first.close()
    assert _chat_sent(fake) == []

    second = build(_settings(tmp_path, fake))
    await recover(second)
    await start_channels(second)
    try:
        bring = second.content.services["kia"].bring.id
        await until(lambda: [r for r in _chat_sent(fake) if bring in r.plain])
        await until(lambda: fake.confirmed_up_to > updates[-1].update_id)  # redelivered, acked
        await asyncio.sleep(0.3)
        assert len([r for r in _chat_sent(fake) if bring in r.plain]) == 1
        with second.db.session() as s:
            assert s.exec(select(func.count()).select_from(InboundMessage)).one() == 1
    finally:
        await stop_channels(second)
        second.close()


async def test_sent_rows_are_not_sent_again_after_restart(tmp_path: Path,
                                                          fake: FakeTelegram) -> None:
    app = build(_settings(tmp_path, fake))
    await start_channels(app)
    fake.text(CHAT, "/start")
    await until(lambda: _chat_sent(fake))
    await asyncio.sleep(0.2)
    await stop_channels(app)
    app.close()
    before = len(fake.sent)
    again = build(_settings(tmp_path, fake))
    await recover(again)
    await start_channels(again)
    await asyncio.sleep(1.5)  # a full poll cycle and sender pass
    await stop_channels(again)
    again.close()
    assert len(fake.sent) == before


@pytest.fixture
async def webhook(tmp_path: Path, fake: FakeTelegram) -> AsyncIterator[tuple[Lontar, TestClient]]:
    app = build(_settings(tmp_path, fake, telegram_webhook_url="https://lontar.example/webhooks/telegram",
                          telegram_webhook_secret=SECRET))
    await start_channels(app)
    async with TestClient(TestServer(web_app(app))) as client:
        yield app, client
    await stop_channels(app)
    app.close()


async def test_webhook_is_set_with_the_secret(webhook: tuple[Lontar, TestClient],
                                              fake: FakeTelegram) -> None:
    assert fake.webhook is not None
    assert fake.webhook["secret_token"] == SECRET


async def test_webhook_delivery_twice_is_handled_once(webhook: tuple[Lontar, TestClient],
                                                      fake: FakeTelegram) -> None:
    app, client = webhook
    update = fake.text(CHAT, "syarat akta kematian")
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    for _ in range(2):
        resp = await client.post("/webhooks/telegram", json=update, headers=headers)
        assert resp.status == 200
    bring = app.content.services["akta-kematian"].bring.id
    await until(lambda: [r for r in _chat_sent(fake) if bring in r.plain])
    await asyncio.sleep(0.3)
    assert len([r for r in _chat_sent(fake) if bring in r.plain]) == 1


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                                     {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}])
async def test_webhook_forged_secret_is_403_and_stores_nothing(
        webhook: tuple[Lontar, TestClient], fake: FakeTelegram, headers: dict[str, str]) -> None:
    app, client = webhook
    resp = await client.post("/webhooks/telegram", json=fake.text(CHAT, "halo"), headers=headers)
    assert resp.status == 403
    with app.db.session() as s:
        assert s.exec(select(func.count()).select_from(InboundMessage)).one() == 0


async def test_webhook_malformed_body_is_400(webhook: tuple[Lontar, TestClient]) -> None:
    _, client = webhook
    resp = await client.post("/webhooks/telegram", data=b"{nope",
                             headers={"X-Telegram-Bot-Api-Secret-Token": SECRET,
                                      "Content-Type": "application/json"})
    assert resp.status == 400


async def test_429_storm_slows_down_and_delivers_once(polling: Lontar, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 429, retry_after=1, count=4)
    started = time.monotonic()
    chats = [CHAT + i for i in range(5)]
    for chat in chats:
        fake.text(chat, "/start")
    # each: the menu and the consent question
    await until(lambda: all(len(_chat_sent(fake, c)) == 2 for c in chats), timeout=20)
    assert time.monotonic() - started >= 1.0
    await asyncio.sleep(0.3)
    per_chat = [len(_chat_sent(fake, c)) for c in chats]
    assert per_chat == [2] * 5  # exactly once each
    assert fake.count("sendMessage", status=429) == 4


async def test_a_turn_that_fails_does_not_stop_polling(polling: Lontar, fake: FakeTelegram,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """It did: the exception ended the polling task and nobody was answered any more."""
    process = polling.inbox.process
    failed: list[int] = []

    async def once_broken(inbound_id: int, *chat: Any) -> bool:
        if not failed:
            failed.append(inbound_id)
            raise RuntimeError("database went away")
        return await process(inbound_id, *chat)

    monkeypatch.setattr(polling.inbox, "process", once_broken)
    fake.text(CHAT, "syarat kia")
    await until(lambda: failed)
    fake.text(CHAT + 1, "syarat kia")
    bring = polling.content.services["kia"].bring.id
    await until(lambda: [r for r in _chat_sent(fake, CHAT + 1) if bring in r.plain])
    assert await polling.inbox.process_pending() == 1  # the failed one waited, stored
    await until(lambda: [r for r in _chat_sent(fake) if bring in r.plain])


async def test_a_malformed_polled_update_is_skipped_not_fatal(polling: Lontar,
                                                              fake: FakeTelegram) -> None:
    """PTB does not check types: a button press whose message has no chat failed in
    storing it, and that ended the polling task (the webhook already answered 400)."""
    fake._push({"callback_query": {
        "id": "9", "chat_instance": "x", "data": "go:kk",
        "from": {"id": CHAT, "is_bot": False, "first_name": "A"},
        "message": {"message_id": 1, "date": 0, "chat": None}}})
    fake.text(CHAT, "syarat kia")
    bring = polling.content.services["kia"].bring.id
    await until(lambda: [r for r in _chat_sent(fake) if bring in r.plain])


async def test_blocked_user_is_marked_and_skipped(polling: Lontar, fake: FakeTelegram) -> None:
    fake.block(CHAT)
    fake.text(CHAT, "/start")
    await until(lambda: fake.count("sendMessage", status=403) == 1)

    def blocked_contact() -> Contact | None:
        with polling.db.session() as s:  # a fresh session each time: a new snapshot
            return s.exec(select(Contact).where(
                Contact.blocked_at.is_not(None))).first()  # type: ignore[union-attr]

    contact = await until(blocked_contact)
    with polling.db.session() as s:
        s.add(Outbox(contact_id=contact.id, channel="telegram",
                     payload={"text": "later notice", "options": []}, priority=1))
        s.commit()
    polling.wake("telegram", 0)
    await asyncio.sleep(0.5)
    assert fake.count("sendMessage", status=403) == 1  # never tried again


async def test_my_chat_member_blocks_and_unblocks(polling: Lontar, fake: FakeTelegram) -> None:
    fake.text(CHAT, "halo")
    await until(lambda: _chat_sent(fake))

    def blocked() -> bool:
        with polling.db.session() as s:
            return s.exec(select(Contact.blocked_at)).one() is not None

    fake.my_chat_member(CHAT, "kicked")
    await until(blocked)
    fake.my_chat_member(CHAT, "member")
    await until(lambda: not blocked())


async def test_attachments(polling: Lontar, fake: FakeTelegram, tmp_path: Path) -> None:
    c = polling.content
    fake.photo(CHAT, 30 * 1024 * 1024)
    await until(lambda: any(c.msg("id", "attachment_too_large") in r.plain
                            for r in _chat_sent(fake)))
    fake.document(CHAT, 1000, mime_type="application/x-msdownload", file_name="setup.exe")
    await until(lambda: any(c.msg("id", "attachment_bad_type") in r.plain
                            for r in _chat_sent(fake)))
    fake.photo(CHAT, 5 * 1024 * 1024)
    await until(lambda: list((tmp_path / "attachments" / "telegram" / str(CHAT)).glob("*")))
    stored = list((tmp_path / "attachments" / "telegram" / str(CHAT)).glob("*"))
    assert len(stored) == 1 and stored[0].stat().st_size == 5 * 1024 * 1024
    for kind in ("sticker", "voice", "video", "animation"):
        getattr(fake, kind)(CHAT)
    unsupported = c.msg("id", "attachment_unsupported")
    await until(lambda: sum(unsupported in r.plain for r in _chat_sent(fake)) >= 5)


async def test_location_contact_and_edits(polling: Lontar, fake: FakeTelegram) -> None:
    fake.location(CHAT, -10.17, 123.6)
    await until(lambda: any(polling.content.msg("id", "location_received") in r.plain
                            for r in _chat_sent(fake)))
    fake.contact(CHAT, "+6281234567890", "Warga")
    await until(lambda: len(_chat_sent(fake)) >= 2)
    n = len(_chat_sent(fake))
    fake.edited_text(CHAT, 1, "syarat kk")
    fake.text(CHAT, "halo")  # a later message is answered, the edit is not
    await until(lambda: len(_chat_sent(fake)) == n + 1)
    await asyncio.sleep(0.3)
    assert len(_chat_sent(fake)) == n + 1


async def test_group_chat_gets_a_pointer_to_private_chat(polling: Lontar,
                                                         fake: FakeTelegram) -> None:
    group = -100123
    fake.text(group, "halo semua", chat_type="supergroup")
    fake.text(group, "/start@lontar_test_bot", chat_type="supergroup")
    text = polling.content.msg("id", "group_private_only", bot="lontar_test_bot")
    await until(lambda: _chat_sent(fake, group))
    await asyncio.sleep(0.3)
    assert [r.plain for r in _chat_sent(fake, group)] == [text]


def test_keyboard_layout_and_callback_size() -> None:
    options = [Option(f"{i}|s:kk-baru:steps", "Pendek") for i in range(5)] + [
        Option("9|t:jam-layanan", "Label yang cukup panjang")]
    markup = keyboard(options)
    assert markup is not None
    rows = markup.inline_keyboard
    assert all(len(row) <= 8 for row in rows)
    assert [len(r) for r in rows] == [2, 2, 1, 1]
    assert all(len((b.callback_data or "").encode()) <= 64 for r in rows for b in r)


def test_split_text_on_paragraphs() -> None:
    paras = ["a" * 3000, "b" * 3000, "c" * 100]
    parts = split_text("\n\n".join(paras))
    assert parts == ["a" * 3000, "b" * 3000 + "\n\n" + "c" * 100]
    assert all(len(p) <= 4096 for p in split_text("x" * 10_000))
    assert "".join(split_text("x" * 10_000)) == "x" * 10_000


async def test_real_command_with_a_token_serves_telegram_and_survives_kill(
        tmp_path: Path, fake: FakeTelegram) -> None:
    """`lontar` with a token in the environment: Telegram works; kill -9 before the reply
    is delivered, start again: the update is not handled twice and the reply arrives once."""
    import signal

    from flows.content import load_content
    from tests.procs import ROOT, env_for, free_port, lontar_cmd

    env = env_for(tmp_path, LONTAR_PORT=str(free_port()), TELEGRAM_BOT_TOKEN="123:REAL",
                  TELEGRAM_API_BASE_URL=fake.base_url, TELEGRAM_POLL_TIMEOUT="1")

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *lontar_cmd(), cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL)

    fake.fail_next("sendMessage", 500, count=10_000)  # Telegram is down: replies wait
    proc = await start()
    try:
        fake.text(CHAT, "syarat kia")
        await until(lambda: fake.count("sendMessage", status=500) >= 1, timeout=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    fake._faults.clear()  # Telegram is back
    bring = load_content().services["kia"].bring.id
    proc = await start()
    try:
        await until(lambda: [r for r in _chat_sent(fake) if bring in r.plain], timeout=30)
        await asyncio.sleep(1.5)
        assert len([r for r in _chat_sent(fake) if bring in r.plain]) == 1
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
    engine = make_engine(_settings(tmp_path, fake).database_url)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from inbound_message")).scalar() == 1
        # the answer and the consent question, each once
        assert conn.execute(
            text("select count(*) from outbox where status='sent'")).scalar() == 2
    engine.dispose()


async def test_cli_sets_and_deletes_the_webhook(tmp_path: Path, fake: FakeTelegram) -> None:
    from tests.procs import ROOT, env_for, lontar_cmd

    env = env_for(tmp_path, TELEGRAM_BOT_TOKEN="123:CLI", TELEGRAM_API_BASE_URL=fake.base_url,
                  TELEGRAM_WEBHOOK_URL="https://lontar.example/webhooks/telegram",
                  TELEGRAM_WEBHOOK_SECRET=SECRET)
    proc = await asyncio.create_subprocess_exec(*lontar_cmd("telegram", "set-webhook"),
                                                cwd=ROOT, env=env)
    assert await proc.wait() == 0
    assert fake.webhook is not None and fake.webhook.secret_token == SECRET
    proc = await asyncio.create_subprocess_exec(*lontar_cmd("telegram", "delete-webhook"),
                                                cwd=ROOT, env=env)
    assert await proc.wait() == 0
    assert fake.webhook is None


async def test_venue_is_sent_where_content_has_coordinates(polling: Lontar,
                                                           fake: FakeTelegram) -> None:
    from bot.outbox import Meta
    from flows.types import Reply, Venue

    assert polling.telegram is not None
    contact = Contact(id=1, channel="telegram", external_id=str(CHAT))
    await polling.telegram.sender.send(contact, Reply(
        "Dinas", venue=Venue("Dinas Dukcapil", "tanyakan di kantor", -10.16, 123.6)), Meta())
    kinds = [r.method for r in _chat_sent(fake)]
    assert kinds == ["sendMessage", "sendVenue"]


async def test_every_message_of_a_reply_takes_its_own_send_slot(
        tmp_path: Path, fake: FakeTelegram) -> None:
    """A reply with a map pin is two messages to Telegram: both count against its limit.
    (One slot per outbox row let 12 messages through where 6 slots were allowed.)"""
    from sqlalchemy import insert

    from bot.models import contact_t, outbox_t
    from bot.outbox import OutboxWorker, new_row
    from flows.types import Reply, Venue

    app = build(_settings(tmp_path, fake))
    assert app.telegram is not None
    try:
        fake.rate_limit_per_second = 4
        reply = Reply("Dinas", venue=Venue("Dinas Dukcapil", "Jl. Timor Raya", -10.16, 123.6))
        with app.db.engine.begin() as conn:
            for chat in range(6):
                cid = conn.execute(insert(contact_t), {
                    "channel": "telegram", "external_id": str(CHAT + chat), "language": "id",
                    "created_at": T0}).inserted_primary_key[0]
                conn.execute(insert(outbox_t), new_row(cid, "telegram", reply.to_dict(), 0, T0))
        worker = OutboxWorker(app.db, app.telegram.sender, rate=4, burst=1, limit=4)
        await app.telegram.bot.initialize()
        await worker.drain_once()
        assert [r.method for r in fake.sent].count("sendVenue") == 6
        assert len(fake.sent) == 12 and fake.rejected_429 == []
    finally:
        await app.telegram.bot.shutdown()
        app.close()


async def test_guidance_in_webhook_mode(webhook: tuple[Lontar, TestClient],
                                        fake: FakeTelegram) -> None:
    """Telegram posting to the webhook: the same conversation as by polling."""
    app, client = webhook
    url = str(client.make_url("/webhooks/telegram"))
    c = app.content
    fake.text(CHAT, "/start")
    assert await fake.push_webhook(url) == [200]
    menu = await until(lambda: [m for m in fake.messages_for(CHAT) if _numbered(m)])
    button = next(b for b in _buttons(menu[-1]) if b["text"] == c.main_menu[0].label.id)
    fake.press(CHAT, button["callback_data"], message_id=menu[-1].message_id)
    fake.text(CHAT, "akte kawin")
    assert await fake.push_webhook(url) == [200, 200]
    bring = c.services["akta-perkawinan"].bring.id
    await until(lambda: any(bring in m.plain for m in fake.messages_for(CHAT)))
    await until(lambda: len(fake.answered) == 1)
    assert any(m.plain == c.msg("id", "docs_intro") for m in fake.messages_for(CHAT))


async def test_slow_api_still_delivers_once(polling: Lontar, fake: FakeTelegram) -> None:
    fake.delay = 0.4
    fake.text(CHAT, "/start")
    fake.text(CHAT + 1, "/start")
    await until(lambda: len(_chat_sent(fake)) == len(_chat_sent(fake, CHAT + 1)) == 2,
                timeout=20)  # the menu and the consent question
    await asyncio.sleep(0.5)
    assert len(_chat_sent(fake)) == 2 and len(_chat_sent(fake, CHAT + 1)) == 2


def test_oversized_callback_data_is_dropped_not_sent() -> None:
    markup = keyboard([Option("1|" + "x" * 70, "Terlalu panjang"), Option("1|menu", "Menu")])
    assert markup is not None
    assert [b.text for row in markup.inline_keyboard for b in row] == ["Menu"]


async def test_webhook_turns_keep_each_chats_order(webhook: tuple[Lontar, TestClient],
                                                   fake: FakeTelegram,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each webhook's turn ran as a task of its own: when the first update of a chat waited
    longer before its turn (a database thread busy), the second overtook it."""
    app, client = webhook
    url = str(client.make_url("/webhooks/telegram"))
    process = app.inbox.process
    released = asyncio.Event()
    first: list[int] = []

    async def first_waits(inbound_id: int, *chat: Any) -> bool:
        if not first:
            first.append(inbound_id)
            await released.wait()
        return await process(inbound_id, *chat)

    monkeypatch.setattr(app.inbox, "process", first_waits)
    fake.text(CHAT, "/start")
    fake.text(CHAT, "syarat kia")
    fake.text(CHAT + 1, "syarat kia")
    assert await fake.push_webhook(url) == [200, 200, 200]
    bring = app.content.services["kia"].bring.id
    await until(lambda: [r for r in _chat_sent(fake, CHAT + 1) if bring in r.plain])
    await asyncio.sleep(0.1)
    assert _chat_sent(fake) == []  # the other chat went ahead; this one waits its turn
    released.set()
    await until(lambda: [r for r in _chat_sent(fake) if bring in r.plain])
    with app.db.session() as s:
        rows = s.exec(select(Outbox).join(Contact).where(Contact.external_id == str(CHAT))
                      .order_by(Outbox.id)).all()
    ids = [r.inbound_id for r in rows if r.inbound_id is not None]
    assert ids[0] == first[0] and ids == sorted(ids)
