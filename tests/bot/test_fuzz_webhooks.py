"""Fuzzing the webhooks and the web chat API of one running Lontar (Telegram in webhook mode,
WhatsApp, web chat) with bodies from valid-looking to hostile: missing fields, wrong types,
unknown kinds, huge numbers, malformed JSON. Bounded for CI by tests/fuzz.py.

Properties, per body: the answer is 200 or a clean 4xx (never a 500); no exception is logged
at ERROR by Lontar's code (while the request is handled or while the turn runs after it);
every stored update is processed; every stored conversation state loads and renders.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import Lontar, build, start_channels, stop_channels, web_app
from bot.config import load_settings
from bot.models import conversation_t, inbound_t
from flows.screens import render
from flows.types import State
from tests.bot.conftest import Errors
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.whatsapp_api import FakeWhatsApp, meta_json, sign
from tests.fuzz import fuzz_settings
from tests.waiting import until

TG_SECRET = "s3cret-token_value"
WA_TOKEN, WA_PHONE_ID, WA_SECRET = "TEST-TOKEN", "1234567890", "app-secret"
MISSING = object()  # a field left out
FRESH = object()  # a platform id not used before (else most updates would be redeliveries)
_fresh_ids = itertools.count(1)


def _fresh(value: Any, make: Callable[[int], Any]) -> Any:
    """`value` with every FRESH replaced by a new id."""
    if value is FRESH:
        return make(next(_fresh_ids))
    if isinstance(value, dict):
        return {k: _fresh(v, make) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v, make) for v in value]
    return value


class Server:
    def __init__(self, app: Lontar, client: TestClient[Any, Any], tg: FakeTelegram,
                 wa: FakeWhatsApp, errors: Errors):
        self.app, self.client, self.tg, self.wa, self.errors = app, client, tg, wa, errors

    def begin(self) -> None:
        self.errors.take()  # what an earlier, failed example logged is not this one's

    async def settle(self) -> None:
        """Wait for every turn the last request started, then check what was stored."""
        def pending() -> int:
            with self.app.db.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(inbound_t).where(
                    inbound_t.c.processed_at.is_(None))).scalar_one())
        await until(lambda: pending() == 0, timeout=5)
        with self.app.db.engine.connect() as conn:
            states = conn.execute(select(conversation_t.c.state)).scalars().all()
        for saved in states:
            state = State.model_validate(saved)
            if state.screen:
                render(state.screen, state.lang, self.app.content, state.data, state)
        assert self.errors.take() == []


@pytest.fixture
async def server(tmp_path: Path, errors: Errors) -> AsyncIterator[Server]:
    async with (FakeTelegram() as tg,
                FakeWhatsApp(token=WA_TOKEN, phone_number_id=WA_PHONE_ID,
                             app_secret=WA_SECRET) as wa):
        app = build(load_settings(
            data_dir=tmp_path, web_rate_per_minute=100_000,
            telegram_bot_token="123456:TEST-token", telegram_api_base_url=tg.base_url,
            telegram_webhook_url="https://lontar.example/webhooks/telegram",
            telegram_webhook_secret=TG_SECRET,
            whatsapp_access_token=WA_TOKEN, whatsapp_phone_number_id=WA_PHONE_ID,
            whatsapp_app_secret=WA_SECRET, whatsapp_verify_token="verify-me",
            whatsapp_api_base_url=wa.base_url, quiet_start="00:00", quiet_end="00:00"))
        await start_channels(app, senders=False)
        async with TestClient(TestServer(web_app(app))) as client:
            yield Server(app, client, tg, wa, errors)
        await stop_channels(app)
        app.close()


# --- values of every shape ------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=40)  # JSON cannot carry lone surrogates
_big = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([2**31, 2**53 + 1, 2**63,
                                                                  -(2**63) - 1, 10**30]))
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | _text
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8)


def _field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a good value; sometimes anything else, or nothing."""
    return st.one_of(good, good, good, good, good, good, _json, _big, st.just(MISSING))


def _obj(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object as the platform sends it, or (a third of the time) a damaged one."""
    clean = st.fixed_dictionaries(fields)
    messy = st.fixed_dictionaries({k: _field(v) for k, v in fields.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not MISSING})
    return st.one_of(clean, clean, messy)


def _often(good: st.SearchStrategy[Any], *bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly `good` (six branches of it), else one of `bad`."""
    return st.one_of(good, good, good, good, good, good, *bad)


def _one_of_keys(**kinds: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with one of these keys (an update's kind, a message's content)."""
    return st.one_of(*(st.fixed_dictionaries({k: s}) for k, s in kinds.items()))


# --- Telegram updates -----------------------------------------------------------------------

_words = st.sampled_from(["menu", "1", "2", "syarat kk", "ktp hilang", "pengaduan", "stop",
                          "/status KK-2026-0001", "cek ADU-2026-7K3QF9", "hapus data saya"])
_payloads = st.sampled_from(["1|menu", "2|docs", "go:menu", "go:s:kk-baru", "go:consent:yes",
                             "go:rate:ADU-2026-7K3QF9:5", "", "|"]) | _text
_ids = st.sampled_from([5001, 5002]) | st.integers(1, 2**40) | _big
_tg_user = _obj(id=_ids, is_bot=st.booleans(), first_name=_text, last_name=_text,
                username=_text, language_code=st.sampled_from(["id", "en", "xx"]))
_tg_chat = _obj(id=_ids, type=_often(st.just("private"), st.sampled_from(
    ["group", "supergroup", "channel", "sender", "???"])))
_dates = _often(st.integers(0, 2**32), _big)
_file = _obj(file_id=_text, file_unique_id=_text, file_size=st.integers(0, 2**31) | _big,
             width=st.integers(0, 5000), height=st.integers(0, 5000),
             mime_type=st.sampled_from(["image/jpeg", "application/pdf", "text/html", ""]),
             file_name=_text)
_commands = st.sampled_from(["/start", "/menu", "/status KK-1", "/bantuan@lontar_test_bot",
                             "/start@other_bot", "/", "/@", "/hapus", "/x" * 40])
_tg_content = _one_of_keys(
    text=_words | _text | _commands, photo=st.lists(_file, max_size=3), document=_file,
    sticker=_file, voice=_file, audio=_file, video=_file, video_note=_file, animation=_file,
    location=_obj(latitude=st.floats(-90, 90), longitude=st.floats(-180, 180)),
    contact=_obj(phone_number=_text, first_name=_text, user_id=_ids),
    poll=_json, dice=_obj(emoji=_text, value=st.integers(1, 6)), new_chat_title=_text,
)
_tg_message = st.builds(lambda base, extra: {**base, **extra},
                        _obj(message_id=_ids, date=_dates, chat=_tg_chat, **{"from": _tg_user}),
                        _tg_content)
_tg_callback = _obj(id=_text, chat_instance=_text, data=_payloads, message=_tg_message,
                    **{"from": _tg_user})
_tg_member = _obj(status=st.sampled_from(["member", "kicked", "left", "administrator", "x"]),
                  user=_tg_user, until_date=_dates)
_tg_update = st.builds(
    lambda uid, body, extra: {k: v for k, v in {"update_id": uid, **body, **extra}.items()
                              if v is not MISSING},
    st.just(FRESH) | _field(_ids),
    _often(_one_of_keys(message=_tg_message, callback_query=_tg_callback), _one_of_keys(
        message=_tg_message, edited_message=_tg_message, channel_post=_tg_message,
        callback_query=_tg_callback,
        my_chat_member=_obj(chat=_tg_chat, date=_dates, old_chat_member=_tg_member,
                            new_chat_member=_tg_member, **{"from": _tg_user}),
        inline_query=_json, poll_answer=_json, something_new=_json)),
    _often(st.just({}), st.dictionaries(_text, _json, max_size=2)),
)


@fuzz_settings(200)
@given(body=st.one_of(_tg_update, _tg_update, _tg_update, _json))
@example(body={"update_id": FRESH, "message": {  # NUL: PostgreSQL text refuses it
    "message_id": 1, "date": 1, "chat": {"id": 5003, "type": "private"},
    "from": {"id": 5003, "is_bot": False, "first_name": "A\x00"}, "text": "halo\x00"}})
@example(body=None)  # was a 500: PTB's de_json(None) fails on None.copy()
@example(body=[1])  # was a 500: not an object
@example(body={"update_id": 1, "callback_query": {  # was a 500: a message without its chat
    "id": "q", "chat_instance": "c", "data": "go:menu", "from": {"id": 1, "is_bot": False,
    "first_name": "A"}, "message": {"message_id": 1, "date": 0, "chat": None}}})
async def test_telegram_webhook_survives_any_update(server: Server, body: Any) -> None:
    server.begin()
    body = _fresh(body, lambda n: 10**6 + n)
    resp = await server.client.post("/webhooks/telegram", data=json.dumps(body),
                                    headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET,
                                             "Content-Type": "application/json"})
    assert resp.status == 200 or 400 <= resp.status < 500, (resp.status, await resp.text())
    await server.settle()


@fuzz_settings(50)
@given(raw=st.binary(max_size=200) | _text.map(str.encode))
async def test_telegram_webhook_survives_any_bytes(server: Server, raw: bytes) -> None:
    server.begin()
    resp = await server.client.post("/webhooks/telegram", data=raw,
                                    headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET,
                                             "Content-Type": "application/json"})
    assert resp.status == 200 or 400 <= resp.status < 500
    await server.settle()


# --- WhatsApp payloads ----------------------------------------------------------------------

_wa_ids = _often(st.sampled_from(["6281234567890", "6281111111111"]),
                 st.from_regex(r"\A[0-9]{8,15}\Z"), _text)
_timestamps = _often(st.integers(0, 2**32).map(str), _big.map(str), _big, _text)
_media = _obj(id=_text, mime_type=st.sampled_from(["image/jpeg", "application/pdf",
                                                   "image/jpeg; x=1", "text/html"]),
              sha256=_text, caption=_text)
_interactive = st.one_of(
    _obj(type=st.just("button_reply"), button_reply=_obj(id=_payloads, title=_text)),
    _obj(type=st.just("list_reply"), list_reply=_obj(id=_payloads, title=_text,
                                                     description=_text)),
    _obj(type=_text, nfm_reply=_json))
_wa_kinds = ["text", "interactive", "button", "image", "document", "location", "contacts",
             "sticker", "audio", "voice", "video", "reaction", "unsupported", "order", "???"]
_wa_message = st.builds(
    lambda base, extra: {**base, **extra},
    _obj(id=_often(st.just(FRESH), _text), timestamp=_timestamps,
         type=_often(st.sampled_from(_wa_kinds[:4]), st.sampled_from(_wa_kinds)),
         **{"from": _wa_ids}),
    _obj(text=_obj(body=_words | _text), interactive=_interactive,
         button=_obj(payload=_text | st.just("go:menu"), text=_text), image=_media,
         document=_media, sticker=_media, location=_obj(latitude=st.floats(),
                                                        longitude=st.floats()),
         context=_obj(id=_text, forwarded=st.booleans()), errors=_json))
_wa_status = _obj(id=_text, status=st.sampled_from(["sent", "delivered", "read", "played",
                                                    "failed", "deleted", "?"]),
                  timestamp=_timestamps, recipient_id=_wa_ids,
                  errors=st.lists(_obj(code=st.sampled_from([0, 131047, 131026, 131050,
                                                             130429, 1]) | _big,
                                       title=_text), max_size=2))
_wa_pref = _obj(wa_id=_wa_ids, category=st.sampled_from(["marketing_messages", "x"]),
                value=st.sampled_from(["stop", "resume", "x"]), timestamp=_timestamps,
                detail=_text)
_wa_value = _obj(messaging_product=st.just("whatsapp"),
                 metadata=_obj(display_phone_number=_text, phone_number_id=_text),
                 contacts=st.lists(_obj(wa_id=_wa_ids, profile=_obj(name=_text)), max_size=2),
                 messages=st.lists(_wa_message, min_size=1, max_size=3),
                 statuses=st.lists(_wa_status, max_size=2),
                 user_preferences=st.lists(_wa_pref, max_size=2))
_wa_body = _obj(object=st.just("whatsapp_business_account"), entry=st.lists(_obj(
    id=_text, time=_big, changes=st.lists(_obj(
        field=_often(st.just("messages"), st.sampled_from(["user_preferences",
                                                           "account_update", ""])),
        value=_wa_value), min_size=1, max_size=2)), min_size=1, max_size=2))


def _wa(field: str, **value: Any) -> dict[str, Any]:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": field, "value": value}]}]}


_HALO = {"from": "6281234567890", "id": "wamid.fuzz", "type": "text", "text": {"body": "halo"}}


@fuzz_settings(200)
@given(body=st.one_of(_wa_body, _wa_body, _wa_body, _json))
# each of these was logged as an exception ("WhatsApp webhook item skipped"), and a bad status
# or preference also cost the good items after it in the same change:
@example(body=_wa("messages", contacts=[{"wa_id": "62\x00", "profile": {"name": "\x00"}}],
                 messages=[{**_HALO, "id": FRESH, "timestamp": "1", "from": "62\x00",
                            "text": {"body": "\x00"}}]))  # NUL: PostgreSQL text refuses it
@example(body=_wa("messages", statuses=5))  # TypeError: not a list
@example(body=_wa("messages", statuses=[{"status": "read"}]))  # KeyError: no id
@example(body=_wa("user_preferences", user_preferences=[5]))  # AttributeError
@example(body=_wa("messages", messages=[{**_HALO, "timestamp": str(2**63)}]))  # OverflowError
@example(body=_wa("messages", contacts=[{"wa_id": {}}], messages=[]))  # unhashable dict
@example(body=_wa("messages", messages=[{**_HALO, "timestamp": "1", "from": "6" * 200}]))
async def test_whatsapp_webhook_survives_any_payload(server: Server, body: Any) -> None:
    server.begin()
    raw = meta_json(_fresh(body, lambda n: f"wamid.fuzz{n}"))
    status, text = await server.wa.deliver(server.client.make_url("/webhooks/whatsapp")
                                           .human_repr(), raw)
    assert status == 200 or 400 <= status < 500, (status, text)
    await server.settle()


@fuzz_settings(50)
@given(raw=st.binary(max_size=200) | _text.map(str.encode))
async def test_whatsapp_webhook_survives_any_bytes(server: Server, raw: bytes) -> None:
    server.begin()
    resp = await server.client.post("/webhooks/whatsapp", data=raw, headers={
        "X-Hub-Signature-256": sign(raw, WA_SECRET), "Content-Type": "application/json"})
    assert resp.status == 200 or 400 <= resp.status < 500
    await server.settle()


# --- the web chat API -----------------------------------------------------------------------

_sessions = _often(st.sampled_from(["s" + "a" * 31, "fuzz-session-0001"]),
                   st.from_regex(r"\A[A-Za-z0-9_-]{16,64}\Z"), _text)
_chat = st.builds(
    lambda base, turn, extra: {**base, **turn, **extra},
    _obj(session=_sessions,
         message_id=_often(st.just(FRESH), st.from_regex(r"\A[A-Za-z0-9_-]{8,63}\Z"), _text),
         after=st.integers(0, 100) | _big),
    _one_of_keys(text=_words | _text | st.builds(str.__mul__, st.sampled_from("a😀"),
                                                       st.integers(19_990, 20_010)),
                 choice=_payloads,
                 command=st.sampled_from(["start", "menu", "hapus", "status", "x"]) | _text),
    _often(st.just({}), st.dictionaries(st.sampled_from(["text", "choice", "command", "other"]),
                                        _json, max_size=2)))


@fuzz_settings(200)
@given(body=st.one_of(_chat, _chat, _chat, _json))
@example(body={"session": "s" + "a" * 31, "message_id": FRESH, "command": "menu",
               "after": 2**63})  # was a 500: a cursor no database integer can hold
@example(body={"session": "s" + "a" * 31, "message_id": FRESH, "command": "menu",
               "after": 2**31})  # was a 500 on PostgreSQL: outbox ids are INTEGER there
@example(body={"session": "s" + "a" * 31, "message_id": FRESH, "text": "halo\x00"})
async def test_web_chat_survives_any_request(server: Server, body: Any) -> None:
    server.begin()
    body = _fresh(body, lambda n: f"fuzz{n:08d}")
    resp = await server.client.post("/api/chat", data=json.dumps(body),
                                    headers={"Content-Type": "application/json"})
    assert resp.status == 200 or 400 <= resp.status < 500, (resp.status, await resp.text())
    if isinstance(body, dict) and isinstance(body.get("session"), str):
        query = {"session": body["session"], "after": str(body.get("after", 0))}
        resp = await server.client.get("/api/chat", params=query)
        assert resp.status == 200 or 400 <= resp.status < 500, (resp.status, query)
    await server.settle()
