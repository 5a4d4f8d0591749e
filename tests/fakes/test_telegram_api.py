"""The fake Bot API, driven by a real python-telegram-bot ``Bot`` over loopback HTTP."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter
from telegram.request import HTTPXRequest

from tests.fakes.telegram_api import FakeTelegram

# PTB 22 warns that RetryAfter.retry_after will become a timedelta; both forms are accepted here.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

TOKEN = "123456:TEST-token_lontar"
CHAT = 4242


# A Bot builds two httpx clients, each loading the CA bundle into a new SSL context (~40 ms
# apiece). Loopback needs no TLS, so every Bot here shares one context.
_TLS = ssl.create_default_context()


def make_bot(fake: FakeTelegram) -> Bot:
    base = fake.base_url
    return Bot(
        TOKEN, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot",
        request=HTTPXRequest(httpx_kwargs={"verify": _TLS}),
        get_updates_request=HTTPXRequest(httpx_kwargs={"verify": _TLS}),
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as f:
        yield f


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with make_bot(fake) as b:  # initialize() calls getMe
        yield b


def keyboard(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in rows]
    )


def retry_seconds(exc: RetryAfter) -> float:
    ra = exc.retry_after
    return ra.total_seconds() if isinstance(ra, timedelta) else float(ra)


# -- basics -----------------------------------------------------------------------------------


async def test_get_me_on_initialize_and_token_is_remembered(fake: FakeTelegram) -> None:
    async with make_bot(fake) as bot:
        assert bot.username == "lontar_test_bot"
        assert bot.id == 999
        me = await bot.get_me()
    assert me.is_bot and me.first_name == "Lontar"
    assert fake.token == TOKEN
    assert fake.count("getMe") == 2
    assert fake.count("getme", status=200) == 2


async def test_unknown_method_is_404_like_telegram(fake: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(Exception) as info:
        await bot.do_api_request("noSuchMethod")
    assert "not found" in str(info.value).lower()
    assert fake.count("noSuchMethod", status=404) == 1


async def test_method_names_are_case_insensitive(fake: FakeTelegram) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as s:
        async with s.get(f"{fake.base_url}/botX:Y/GETME") as r:
            body = await r.json()
        async with s.post(f"{fake.base_url}/botX:Y/sendmessage",
                          json={"chat_id": 7, "text": "hai"}) as r:
            sent = await r.json()
    assert body["ok"] is True and body["result"]["username"] == "lontar_test_bot"
    assert sent["result"]["text"] == "hai" and sent["result"]["chat"] == {
        "id": 7, "type": "private", "first_name": "Warga"}
    assert fake.count("sendMessage") == 1 and fake.token == "X:Y"


# -- sending ----------------------------------------------------------------------------------


async def test_send_html_with_inline_keyboard_and_read_it_back(
    fake: FakeTelegram, bot: Bot
) -> None:
    markup = keyboard([("Ya", "ya"), ("Tidak", "tidak")], [("Kembali", "menu:back")])
    msg = await bot.send_message(
        CHAT, "<b>KTP</b> &amp; KK 😀 <a href=\"https://x.id/?a=1&amp;b=2\">info</a>",
        parse_mode="HTML", reply_markup=markup,
    )
    assert msg.text == "KTP & KK 😀 info"
    assert msg.entities == (
        MessageEntity("bold", 0, 3),
        MessageEntity("text_link", 12, 4, url="https://x.id/?a=1&b=2"),  # 😀 is 2 UTF-16 units
    )
    assert msg.reply_markup == markup
    assert msg.message_id == 1 and msg.chat.id == CHAT

    rec = fake.sent[-1]
    assert (rec.method, rec.chat_id, rec.message_id) == ("sendMessage", CHAT, 1)
    assert rec.text.startswith("<b>KTP</b> &amp;")
    assert rec.plain == "KTP & KK 😀 info" and rec.parse_mode == "HTML"
    assert rec.reply_markup == markup.to_dict()
    # PTB sends form fields; the fake decoded the JSON-string ones.
    params = fake.requests[-1].params
    assert params["chat_id"] == CHAT and isinstance(params["reply_markup"], dict)

    second = await bot.send_message(CHAT, "2")
    assert second.message_id == 2
    assert [m.plain for m in fake.messages_for(CHAT)] == ["KTP & KK 😀 info", "2"]


@pytest.mark.parametrize(
    "text",
    [
        "<b>tebal",  # unclosed
        "tebal</b>",  # unexpected end tag
        "<b><i>x</b></i>",  # unbalanced
        "<blink>x</blink>",  # unsupported tag
        "umur < 17 tahun",  # raw "<"
        "KTP & KK",  # raw "&"
        "&nbsp;",  # named entities other than lt/gt/amp/quot
        '<span class="red">x</span>',
    ],
)
async def test_bad_html_is_rejected(fake: FakeTelegram, bot: Bot, text: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(CHAT, text, parse_mode="HTML")
    assert fake.sent == [] and fake.messages_for(CHAT) == []
    assert fake.count("sendMessage", status=400) == 1


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("&lt;17&gt; &quot;a&quot; &#128512; &#x41;", '<17> "a" 😀 A'),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st"),
        ("<pre><code class=\"language-python\">x = 1</code></pre>", "x = 1"),
        ("<blockquote>kutip</blockquote> <s>a</s><del>b</del><ins>c</ins>", "kutip abc"),
        ("umur > 17", "umur > 17"),
    ],
)
async def test_valid_html_is_accepted(bot: Bot, text: str, plain: str) -> None:
    msg = await bot.send_message(CHAT, text, parse_mode="HTML")
    assert msg.text == plain


async def test_text_length_and_emptiness(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(CHAT, "x" * 4096)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(CHAT, "<b></b>", parse_mode="HTML")
    # the limit counts what the user sees, not the markup
    await bot.send_message(CHAT, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    assert [len(s.plain or "") for s in fake.sent] == [4096, 4096]


async def test_callback_data_over_64_bytes_is_rejected(fake: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(CHAT, "pilih", reply_markup=keyboard([("A", "x" * 65)]))
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):  # 33 × 2 bytes
        await bot.send_message(CHAT, "pilih", reply_markup=keyboard([("A", "é" * 33)]))
    ok = await bot.send_message(CHAT, "pilih", reply_markup=keyboard([("A", "é" * 32)]))
    assert ok.reply_markup.inline_keyboard[0][0].callback_data == "é" * 32
    assert len(fake.sent) == 1


async def test_keyboard_shape_limits(bot: Bot) -> None:
    nine = [(str(i), str(i)) for i in range(9)]
    with pytest.raises(BadRequest):
        await bot.send_message(CHAT, "x", reply_markup=keyboard(nine))
    many = [[(str(r * 8 + i), str(r * 8 + i)) for i in range(8)] for r in range(13)]  # 104
    with pytest.raises(BadRequest):
        await bot.send_message(CHAT, "x", reply_markup=keyboard(*many))
    with pytest.raises(BadRequest, match=r"(?i)text buttons are unallowed"):
        await bot.send_message(
            CHAT, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("a")]])
        )
    await bot.send_message(CHAT, "x", reply_markup=keyboard(*many[:12], nine[:4]))  # 100


async def test_location_and_venue_are_recorded(fake: FakeTelegram, bot: Bot) -> None:
    loc = await bot.send_location(CHAT, latitude=-10.1772, longitude=123.6070)
    venue = await bot.send_venue(CHAT, latitude=-10.17, longitude=123.6, title="Dukcapil",
                                 address="Jl. Timor Raya")
    assert loc.location.latitude == pytest.approx(-10.1772)
    assert venue.venue.title == "Dukcapil" and venue.venue.location.longitude == 123.6
    assert [(s.method, s.message_id) for s in fake.sent] == [("sendLocation", 1),
                                                              ("sendVenue", 2)]
    assert fake.messages_for(CHAT)[1].payload["venue"]["address"] == "Jl. Timor Raya"
    assert [(s.text, s.plain) for s in fake.sent] == [("", ""), ("", "")]  # never None


async def test_document_upload_is_multipart_and_kept(fake: FakeTelegram, bot: Bot) -> None:
    msg = await bot.send_document(CHAT, document=b"%PDF-1.4 formulir", filename="f1.pdf",
                                  caption="<i>Formulir</i>", parse_mode="HTML")
    assert msg.document.file_name == "f1.pdf" and msg.caption == "Formulir"
    assert fake.file_bytes(msg.document.file_id) == b"%PDF-1.4 formulir"
    assert fake.requests[-1].params["chat_id"] == CHAT  # decoded from a multipart field
    assert fake.sent[-1].method == "sendDocument" and fake.sent[-1].plain == "Formulir"


# -- editing and callbacks --------------------------------------------------------------------


async def test_edit_message_text(fake: FakeTelegram, bot: Bot) -> None:
    markup = keyboard([("Lanjut", "next")])
    msg = await bot.send_message(CHAT, "<b>Langkah 1</b>", parse_mode="HTML",
                                 reply_markup=markup)
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text("<b>Langkah 1</b>", CHAT, msg.message_id,
                                    parse_mode="HTML", reply_markup=markup)
    with pytest.raises(BadRequest, match="not modified"):  # same rendering, other tag
        await bot.edit_message_text("<strong>Langkah 1</strong>", CHAT, msg.message_id,
                                    parse_mode="HTML", reply_markup=markup)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", CHAT, 99)

    edited = await bot.edit_message_text("Langkah 2", CHAT, msg.message_id)
    assert edited.text == "Langkah 2" and edited.edit_date is not None
    assert edited.reply_markup is None  # an edit without reply_markup drops the keyboard
    state = fake.messages_for(CHAT)
    assert [(m.message_id, m.plain, m.reply_markup, m.edits) for m in state] == [
        (1, "Langkah 2", None, 1)]
    assert [s.method for s in fake.sent] == ["sendMessage", "editMessageText"]

    again = await bot.edit_message_reply_markup(CHAT, msg.message_id, reply_markup=markup)
    assert again.reply_markup == markup and again.text == "Langkah 2"
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_reply_markup(CHAT, msg.message_id, reply_markup=markup)
    assert fake.sent[-1].method == "editMessageReplyMarkup"
    assert fake.sent[-1].reply_markup == markup.to_dict()


async def test_press_carries_the_message_and_answer_once(fake: FakeTelegram, bot: Bot) -> None:
    markup = keyboard([("KTP", "svc:ktp"), ("KK", "svc:kk")])
    msg = await bot.send_message(CHAT, "Pilih <b>layanan</b>", parse_mode="HTML",
                                 reply_markup=markup)
    raw = fake.press(CHAT, "svc:kk", message_id=msg.message_id)
    update = Update.de_json(raw, bot)
    q = update.callback_query
    assert q.data == "svc:kk" and q.from_user.id == CHAT
    assert q.message.message_id == msg.message_id and q.message.text == "Pilih layanan"
    assert q.message.reply_markup == markup

    assert await bot.answer_callback_query(q.id, text="Oke") is True
    assert fake.answered == {q.id: "Oke"}
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(q.id)
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query("no-such-query")
    q2 = Update.de_json(fake.press(CHAT, "svc:ktp", message_id=msg.message_id), bot)
    assert q2.callback_query.id != q.id
    with pytest.raises(BadRequest):
        await bot.answer_callback_query(q2.callback_query.id, text="x" * 201)
    with pytest.raises(LookupError):
        fake.press(CHAT, "svc:ktp", message_id=77)


# -- updates ----------------------------------------------------------------------------------


async def test_long_poll_returns_injected_update_then_offset_confirms(
    fake: FakeTelegram, bot: Bot
) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    assert not poll.done()
    injected = fake.text(CHAT, "halo")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 1.5
    assert [u.update_id for u in updates] == [injected["update_id"]]
    assert updates[0].message.text == "halo" and updates[0].effective_user.first_name == "Warga"

    # not confirmed yet: a call without offset sees it again
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [injected["update_id"]]
    # offset = last + 1 confirms it
    assert await bot.get_updates(offset=injected["update_id"] + 1, timeout=0) == ()
    assert fake.confirmed_up_to == injected["update_id"] + 1
    # ... for good: even without an offset it never comes back
    assert await bot.get_updates(timeout=0) == ()
    assert fake.pending == []


async def test_long_poll_times_out_empty_and_limit_applies(fake: FakeTelegram, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=timedelta(milliseconds=300)) == ()
    assert 0.25 < time.monotonic() - started < 1.5
    ids = [fake.text(CHAT, f"m{i}")["update_id"] for i in range(5)]
    got = await bot.get_updates(limit=2, timeout=0)
    assert [u.update_id for u in got] == ids[:2]
    got = await bot.get_updates(offset=ids[1] + 1, timeout=0)
    assert [u.update_id for u in got] == ids[2:]


async def test_a_second_poller_terminates_the_first(fake: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    async with make_bot(fake) as other:
        second = asyncio.create_task(other.get_updates(timeout=0))
        with pytest.raises(Conflict, match="terminated by other getUpdates"):
            await asyncio.wait_for(first, 2)
        assert await second == ()


async def test_get_updates_while_webhook_is_set_conflicts(fake: FakeTelegram, bot: Bot) -> None:
    assert await bot.set_webhook("https://lontar.example/tg/hook", secret_token="s3cr-et_X")
    assert fake.webhook is not None
    assert (fake.webhook.url, fake.webhook.secret_token) == (
        "https://lontar.example/tg/hook", "s3cr-et_X")
    assert fake.webhook["secret_token"] == "s3cr-et_X"  # mapping access works too
    fake.text(CHAT, "hai")
    info = await bot.get_webhook_info()
    assert info.url == "https://lontar.example/tg/hook" and info.pending_update_count == 1
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates(timeout=0)
    with pytest.raises(BadRequest):
        await bot.set_webhook("https://lontar.example/tg/hook", secret_token="spasi tidak boleh")
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert fake.webhook is None
    assert await bot.get_updates(timeout=0) == ()  # dropped with the webhook


async def test_push_webhook_sends_secret_header_and_confirms(fake: FakeTelegram, bot: Bot) -> None:
    seen: list[tuple[str | None, int]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), body["update_id"]))
        return web.Response(status=200 if len(seen) < 2 else 500)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="tok")
        a, b = fake.text(CHAT, "a"), fake.text(CHAT, "b")
        assert await fake.push_webhook() == [200, 500]
        assert seen == [("tok", a["update_id"]), ("tok", b["update_id"])]
        assert [u["update_id"] for u in fake.pending] == [b["update_id"]]
    finally:
        await runner.cleanup()


async def test_injected_updates_parse_with_ptb(fake: FakeTelegram, bot: Bot) -> None:
    fake.text(-100123, "/start@lontar_test_bot halo", chat_type="supergroup", user_id=77)
    fake.text(CHAT, "/start")
    fake.photo(CHAT, 50_000, caption="KTP saya")
    fake.document(CHAT, 1234, mime_type="application/pdf", file_name="akta.pdf")
    fake.sticker(CHAT)
    fake.voice(CHAT)
    fake.video(CHAT)
    fake.animation(CHAT)
    fake.location(CHAT, -10.17, 123.6)
    fake.contact(CHAT, "+6281234567890", "Maria")
    fake.edited_text(CHAT, 2, "/start lagi")
    fake.my_chat_member(CHAT, "kicked")
    u = await bot.get_updates(timeout=0)
    assert len(u) == 12
    group = u[0].message
    assert group.chat.type == "supergroup" and group.from_user.id == 77
    assert group.entities == (MessageEntity("bot_command", 0, len("/start@lontar_test_bot")),)
    assert u[1].message.entities[0].length == 6
    assert u[2].message.photo[-1].file_size == 50_000 and u[2].message.caption == "KTP saya"
    assert [p.width for p in u[2].message.photo] == sorted(p.width for p in u[2].message.photo)
    assert u[3].message.document.file_name == "akta.pdf"
    assert u[3].message.document.mime_type == "application/pdf"
    assert u[4].message.sticker is not None and u[5].message.voice is not None
    assert u[6].message.video is not None and u[7].message.animation is not None
    assert u[8].message.location.latitude == pytest.approx(-10.17)
    assert u[9].message.contact.phone_number == "+6281234567890"
    assert u[9].message.contact.user_id == CHAT
    assert u[10].edited_message.text == "/start lagi" and u[10].edited_message.message_id == 2
    member = u[11].my_chat_member
    assert (member.old_chat_member.status, member.new_chat_member.status) == ("member", "kicked")
    with pytest.raises(Forbidden):  # a user who blocked the bot can't be written to
        await bot.send_message(CHAT, "halo?")


# -- files ------------------------------------------------------------------------------------


async def test_get_file_and_download_5mb_photo(fake: FakeTelegram, bot: Bot) -> None:
    raw = fake.photo(CHAT, 5 * 1024 * 1024)
    largest = Update.de_json(raw, bot).message.photo[-1]
    f = await bot.get_file(largest.file_id)
    assert f.file_size == 5 * 1024 * 1024
    assert f.file_path.startswith(f"{fake.base_url}/file/bot{TOKEN}/")
    data = await f.download_as_bytearray()
    assert len(data) == 5 * 1024 * 1024
    assert bytes(data) == fake.file_bytes(largest.file_id)
    assert len(set(data[:4096])) > 100  # not a constant fill: offsets errors would show


async def test_get_file_refuses_big_and_unknown(fake: FakeTelegram, bot: Bot) -> None:
    raw = fake.document(CHAT, 25 * 1024 * 1024, mime_type="video/mp4", file_name="b.mp4")
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(raw["message"]["document"]["file_id"])
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await bot.get_file("nope")
    exact = fake.document(CHAT, 20 * 1024 * 1024, mime_type="video/mp4", file_name="c.mp4")
    f = await bot.get_file(exact["message"]["document"]["file_id"])
    assert f.file_size == 20 * 1024 * 1024


# -- commands ---------------------------------------------------------------------------------


async def test_set_my_commands_per_language(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "Mulai"), BotCommand("help", "Bantuan")])
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("help", "Help")],
                              language_code="en")
    assert fake.commands == {
        "": [("start", "Mulai"), ("help", "Bantuan")],
        "en": [("start", "Start"), ("help", "Help")],
    }
    got = await bot.get_my_commands(language_code="en")
    assert [(c.command, c.description) for c in got] == [("start", "Start"), ("help", "Help")]
    with pytest.raises(BadRequest):
        await bot.set_my_commands([BotCommand("Start", "x")])
    with pytest.raises(BadRequest):
        await bot.set_my_commands([BotCommand("start", "")])
    assert fake.commands["en"][0] == ("start", "Start")


# -- faults -----------------------------------------------------------------------------------


async def test_rate_limit_answers_429_retry_after(fake: FakeTelegram) -> None:
    async with FakeTelegram(rate_limit_per_second=3) as limited, make_bot(limited) as bot:
        for i in range(3):
            await bot.send_message(CHAT, f"m{i}")
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(CHAT, "m3")
        assert retry_seconds(info.value) == 1
        assert len(limited.rejected_429) == 1
        assert await bot.get_me()  # not a send*/edit* method: never limited
        await asyncio.sleep(1.05)
        await bot.send_message(CHAT, "m4")
        assert [s.plain for s in limited.sent] == ["m0", "m1", "m2", "m4"]
        assert limited.count("sendMessage", status=429) == 1


async def test_fail_next(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(CHAT, "a")
    assert retry_seconds(info.value) == 7
    fake.fail_next("sendmessage", 502, count=2)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(CHAT, "a")
    fake.fail_next("sendMessage", 403, description="Forbidden: bot can't initiate conversation")
    with pytest.raises(Forbidden, match="can't initiate"):
        await bot.send_message(CHAT, "a")
    assert (await bot.send_message(CHAT, "a")).message_id == 1
    assert [r.status for r in fake.requests if r.method == "sendMessage"] == [
        429, 502, 502, 403, 200]


async def test_blocked_deactivated_and_unknown_chats(fake: FakeTelegram, bot: Bot) -> None:
    msg = await bot.send_message(CHAT, "halo")
    fake.block(CHAT)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "halo")
    with pytest.raises(Forbidden):
        await bot.edit_message_text("x", CHAT, msg.message_id)
    with pytest.raises(Forbidden):
        await bot.send_venue(CHAT, latitude=1, longitude=1, title="t", address="a")
    fake.deactivate(5)
    with pytest.raises(Forbidden, match="user is deactivated"):
        await bot.send_message(5, "halo")
    fake.unknown_chat(6)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(6, "halo")
    fake.unblock(CHAT)
    await bot.send_message(CHAT, "lagi")
    assert [s.plain for s in fake.sent] == ["halo", "lagi"]


async def test_delay_slows_every_response(fake: FakeTelegram, bot: Bot) -> None:
    fake.delay = 0.2
    started = time.monotonic()
    await bot.get_me()
    assert time.monotonic() - started >= 0.2


async def test_stop_releases_a_waiting_long_poll_quickly() -> None:
    fake = FakeTelegram()
    await fake.start()
    async with make_bot(fake) as bot:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await fake.stop()
        assert time.monotonic() - started < 1.5
        result = await asyncio.wait_for(asyncio.gather(poll, return_exceptions=True), 2)
        assert result[0] == () or isinstance(result[0], NetworkError)
    assert fake.errors == []


async def test_a_polling_application_talks_to_the_fake(fake: FakeTelegram) -> None:
    """PTB's own Updater: start_polling, handle /start and a button press, stop cleanly."""
    from telegram.ext import Application, CallbackQueryHandler, CommandHandler

    async def start(update: Update, _: object) -> None:
        await update.message.reply_text(
            "Halo <b>warga</b>", parse_mode="HTML", reply_markup=keyboard([("KTP", "ktp")])
        )

    async def chosen(update: Update, _: object) -> None:
        await update.callback_query.answer("ok")
        await update.callback_query.edit_message_text("KTP dipilih")

    async def until(cond: Callable[[], bool]) -> None:
        for _ in range(200):
            if cond():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("timed out")

    app = Application.builder().bot(make_bot(fake)).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(chosen))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=10)
        fake.text(CHAT, "/start")
        await until(lambda: len(fake.sent) == 1)
        last = fake.press(CHAT, "ktp", message_id=fake.sent[0].message_id)
        await until(lambda: len(fake.sent) == 2)
        await app.updater.stop()
        await app.stop()
    assert [(s.method, s.plain) for s in fake.sent] == [
        ("sendMessage", "Halo warga"), ("editMessageText", "KTP dipilih")]
    assert list(fake.answered.values()) == ["ok"]
    assert fake.confirmed_up_to == last["update_id"] + 1  # the final poll on stop confirmed
    assert fake.count("getUpdates", status=409) == 0 and fake.errors == []
