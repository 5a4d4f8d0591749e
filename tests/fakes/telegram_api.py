"""A fake Telegram Bot API server on loopback, for driving python-telegram-bot over real HTTP.

    fake = FakeTelegram()
    base = await fake.start()          # "http://127.0.0.1:PORT"
    bot = telegram.Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")
    fake.text(42, "/start")            # a user writes; getUpdates will return it
    ...
    await fake.stop()

The fake answers the way the Bot API does: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": ..., "parameters": {...}}`` with HTTP status N,
so PTB raises the same exception types it raises against Telegram.

Error descriptions marked "observed" below are the texts Telegram is known to send; the others
are plausible stand-ins (match on the exception type, not on those texts).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.loopback import LoopbackServer, SlidingWindow

BOT_ID = 999
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_ANSWER = 200
MAX_DOWNLOAD = 20 * 1024 * 1024
FIRST_UPDATE_ID = 800_000_001

# Descriptions. Observed in the wild: empty/too long text, parse errors, BUTTON_DATA_INVALID,
# not modified, to-edit not found, query too old, invalid file_id, file is too big, blocked,
# deactivated, chat not found, webhook conflict, terminated by other getUpdates, 429.
E_TEXT_EMPTY = "Bad Request: message text is empty"
E_TEXT_LONG = "Bad Request: message is too long"
E_CAPTION_LONG = "Bad Request: message caption is too long"
E_PARSE = "Bad Request: can't parse entities: "
E_PARSE_MODE = "Bad Request: unsupported parse_mode"
E_BUTTON_DATA = "Bad Request: BUTTON_DATA_INVALID"
E_BUTTONS_TOO_MUCH = "Bad Request: BUTTONS_TOO_MUCH"  # not observed
E_BUTTON_TEXT = "Bad Request: BUTTON_TEXT_INVALID"  # not observed
E_TEXT_BUTTON = (
    "Bad Request: can't parse inline keyboard button: "
    "Text buttons are unallowed in the inline keyboard"
)
E_MARKUP = "Bad Request: can't parse reply keyboard markup JSON object"
E_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
E_EDIT_NOT_FOUND = "Bad Request: message to edit not found"
E_NO_TEXT_TO_EDIT = "Bad Request: there is no text in the message to edit"
E_REPLY_NOT_FOUND = "Bad Request: message to be replied not found"
E_DELETE_NOT_FOUND = "Bad Request: message to delete not found"
E_QUERY_OLD = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
E_ANSWER_LONG = "Bad Request: MESSAGE_TOO_LONG"  # not observed
E_FILE_ID = "Bad Request: invalid file_id"
E_FILE_BIG = "Bad Request: file is too big"
E_BLOCKED = "Forbidden: bot was blocked by the user"
E_DEACTIVATED = "Forbidden: user is deactivated"
E_CHAT_NOT_FOUND = "Bad Request: chat not found"
E_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
E_TERMINATED = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
E_SECRET = "Bad Request: secret token contains unallowed characters"  # not observed
E_WEBHOOK_URL = "Bad Request: bad webhook: HTTPS url must be provided for webhook"
E_COMMAND = "Bad Request: BOT_COMMAND_INVALID"
E_COMMAND_DESCRIPTION = "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID"  # not observed
E_COMMANDS_TOO_MUCH = "Bad Request: BOT_COMMANDS_TOO_MUCH"
E_CHAT_ACTION = "Bad Request: wrong parameter action in request"

# What Telegram delivers when allowed_updates is unset or []: everything but chat_member,
# message_reaction and message_reaction_count.
DEFAULT_ALLOWED = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post", "inline_query",
        "chosen_inline_result", "callback_query", "shipping_query", "pre_checkout_query",
        "poll", "poll_answer", "my_chat_member", "chat_join_request", "business_connection",
        "business_message", "edited_business_message", "deleted_business_messages",
        "chat_boost", "removed_chat_boost", "purchased_paid_media",
    }
)

_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_LANG_RE = re.compile(r"[a-z]{2}")
_CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice",
        "upload_voice", "upload_document", "choose_sticker", "find_location",
        "record_video_note", "upload_video_note",
    }
)
# Parameters that are strings on the wire and must never be JSON-decoded ("123" stays "123").
_STRING_PARAMS = frozenset(
    {
        "text", "caption", "parse_mode", "caption_parse_mode", "title", "address", "url",
        "secret_token", "callback_query_id", "file_id", "language_code", "ip_address",
        "foursquare_id", "foursquare_type", "google_place_id", "google_place_type", "action",
        "business_connection_id", "message_effect_id", "inline_message_id", "phone_number",
        "first_name", "last_name", "vcard", "emoji", "description", "short_description",
        "name", "photo", "document", "video", "audio", "voice", "animation", "sticker",
        "thumbnail", "filename",
    }
)


# ---------------------------------------------------------------------------------------------
# records


@dataclass
class ApiRequest:
    """One call the fake answered. ``status`` 499 = the client had gone before the answer."""

    method: str  # canonical Bot API spelling, e.g. "sendMessage" (as sent if unknown)
    params: dict[str, Any]  # decoded (ints, dicts, lists); uploaded files as UploadedFile
    at: float  # time.monotonic() when the request arrived
    status: int  # HTTP status answered
    http_method: str = "POST"
    token: str = ""


@dataclass
class UploadedFile:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Sent:
    """One successful send*/edit* call, with the message state after it."""

    method: str
    chat_id: int
    message_id: int
    text: str  # raw text/caption as sent (HTML included); "" for location/venue/no caption
    plain: str  # text as a user sees it: tags stripped, entities unescaped; "" if none
    parse_mode: str | None
    reply_markup: dict[str, Any] | None  # decoded, as sent (any keyboard kind)
    at: float  # time.monotonic()
    entities: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class BotMessage:
    """Current state of a message the bot sent (after edits)."""

    chat_id: int
    message_id: int
    kind: str  # "text" | "location" | "venue" | "photo" | "document"
    date: int
    text: str = ""  # raw text or caption ("" when there is none)
    plain: str = ""
    parse_mode: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None  # as sent; only inline ones appear in to_dict
    edit_date: int | None = None
    edits: int = 0
    reply_to_message_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)  # location/venue/photo/document

    @property
    def inline_markup(self) -> dict[str, Any] | None:
        m = self.reply_markup
        return m if isinstance(m, dict) and "inline_keyboard" in m else None


@dataclass
class FakeFile:
    file_id: str
    file_unique_id: str
    file_path: str
    size: int
    content: bytes | None = None  # None: deterministic bytes generated on demand

    def data(self) -> bytes:
        if self.content is not None:
            return self.content
        block = b"".join(
            hashlib.sha256(f"{self.file_unique_id}:{i}".encode()).digest() for i in range(8)
        )
        return (block * (self.size // len(block) + 1))[: self.size]


@dataclass
class Webhook:
    """Also readable as a mapping: ``fake.webhook["secret_token"]``."""

    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    max_connections: int

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            out["parameters"] = self.parameters
        return out


class _ClientGone(Exception):
    pass


def bad(description: str) -> ApiError:
    return ApiError(400, description)


# ---------------------------------------------------------------------------------------------
# Telegram HTML


def u16len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


_TAG_ENTITY = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
    "del": "strikethrough", "a": "text_link", "code": "code", "pre": "pre",
    "tg-spoiler": "spoiler", "span": "spoiler", "blockquote": "blockquote",
}
_CHAR_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|(lt|gt|amp|quot));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_ATTR_RE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?")
_SPECIAL_RE = re.compile(r"[<&]")


def _unescape_attr(value: str) -> str:
    if value[:1] in "\"'":
        value = value[1:-1]
    return _CHAR_ENTITY_RE.sub(lambda m: _decode_char_entity(m) or m.group(0), value)


def _decode_char_entity(m: re.Match[str]) -> str | None:
    dec, hexa, named = m.groups()
    if named:
        return _NAMED[named]
    code = int(dec) if dec else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def parse_html(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode: returns (plain text, entities with UTF-16 offsets).

    Raises ApiError 400 "can't parse entities: ..." for markup Telegram rejects. Stricter than
    Telegram in one respect: a bare "&" that starts no entity is rejected (Telegram's docs
    require escaping it; its parser tolerates it).
    """

    def fail(why: str, at: int) -> ApiError:
        return bad(f"{E_PARSE}{why} at byte offset {len(src[:at].encode())}")

    out: list[str] = []
    pos16 = 0
    stack: list[dict[str, Any]] = []
    entities: list[dict[str, Any]] = []
    i, n = 0, len(src)
    while i < n:
        m = _SPECIAL_RE.search(src, i)
        j = m.start() if m else n
        if j > i:
            chunk = src[i:j]
            out.append(chunk)
            pos16 += u16len(chunk)
            i = j
            continue
        if src[i] == "&":
            em = _CHAR_ENTITY_RE.match(src, i)
            ch = _decode_char_entity(em) if em else None
            if em is None or ch is None:
                raise fail("Character entity expected", i)
            out.append(ch)
            pos16 += u16len(ch)
            i = em.end()
            continue
        # "<": a start or an end tag
        close = src.find(">", i)
        if src.startswith("</", i):
            if close < 0:
                raise fail("Unclosed end tag", i)
            name = src[i + 2 : close].strip().lower()
            if not stack:
                raise fail("Unexpected end tag", i)
            top = stack.pop()
            if name != top["tag"]:
                raise bad(
                    f"{E_PARSE}Unmatched end tag at byte offset {len(src[:i].encode())}, "
                    f'expected "</{top["tag"]}>", found "</{name}>"'
                )
            length = pos16 - top["offset"]
            if top["entity"] is not None and length > 0:
                ent = {"type": top["entity"], "offset": top["offset"], "length": length}
                ent.update(top["extra"])
                entities.append(ent)
            i = close + 1
            continue
        tm = _TAG_NAME_RE.match(src, i + 1)
        if tm is None:
            raise fail('Unsupported start tag ""', i)
        tag = tm.group(0).lower()
        if tag not in _TAG_ENTITY:
            raise fail(f'Unsupported start tag "{tag}"', i)
        attrs: dict[str, str] = {}
        k = tm.end()
        while True:
            while k < n and src[k].isspace():
                k += 1
            if k >= n:
                raise fail("Unclosed start tag", i)
            if src[k] == ">":
                break
            am = _ATTR_RE.match(src, k)
            if am is None:
                raise fail(f'Empty attribute name in the tag "{tag}"', k)
            attrs[am.group(1).lower()] = _unescape_attr(am.group(2) or "")
            k = am.end()
        entity: str | None = _TAG_ENTITY[tag]
        extra: dict[str, Any] = {}
        if tag == "span" and attrs.get("class") != "tg-spoiler":
            raise fail('Tag "span" must have class "tg-spoiler"', i)
        if tag == "a":
            href = attrs.get("href", "")
            if href:
                extra["url"] = href
            else:
                entity = None
        if tag == "blockquote" and "expandable" in attrs:
            entity = "expandable_blockquote"
        if tag == "code" and stack and stack[-1]["tag"] == "pre":
            lang = attrs.get("class", "")
            if lang.startswith("language-") and len(lang) > 9:
                stack[-1]["extra"]["language"] = lang[9:]
            entity = None  # <pre><code> is one pre entity
        stack.append({"tag": tag, "entity": entity, "offset": pos16, "extra": extra})
        i = k + 1
    if stack:
        raise bad(f'{E_PARSE}Can\'t find end tag corresponding to start tag "{stack[-1]["tag"]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def render(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text)
    if mode in ("", "markdown", "markdownv2"):
        return text, []  # Markdown is not interpreted by the fake
    raise bad(E_PARSE_MODE)


# ---------------------------------------------------------------------------------------------
# request decoding


def _decode_value(name: str, value: Any) -> Any:
    if not isinstance(value, str) or name in _STRING_PARAMS:
        return value
    if name == "chat_id" or name == "from_chat_id":
        try:
            return int(value)
        except ValueError:
            return value
    s = value.strip()
    if s[:1] in '{["-0123456789' or s in ("true", "false", "null"):
        try:
            return json.loads(s)
        except ValueError:
            return value
    return value


def _int(value: Any, default: int = 0) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(str(value))
    except ValueError as exc:
        raise bad(f"Bad Request: invalid integer value {value!r}") from exc


def _float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise bad(f'Bad Request: parameter "{name}" is required') from exc


def _require(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise bad(f'Bad Request: parameter "{name}" is required')
    return value


def _update_kind(update: dict[str, Any]) -> str:
    return next(k for k in update if k != "update_id")


# ---------------------------------------------------------------------------------------------
# the fake


class FakeTelegram(LoopbackServer):
    """Fake Bot API. Public state is plain attributes; see the module docstring."""

    def __init__(
        self,
        *,
        rate_limit_per_second: float | None = None,
        bot_username: str = "lontar_test_bot",
    ) -> None:
        self.rate_limit_per_second = rate_limit_per_second
        self.bot_username = bot_username
        self.delay: float = 0.0
        self.token: str | None = None
        self.base_url: str | None = None

        self.requests: list[ApiRequest] = []
        self.errors: list[Exception] = []  # exceptions inside the fake (answered as 500)
        self.sent: list[Sent] = []
        self.rejected_429: list[float] = []  # monotonic times of rate-limit rejections
        self.answered: dict[str, str | None] = {}
        self.commands: dict[str, list[tuple[str, str]]] = {}
        self.scoped_commands: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.webhook: Webhook | None = None
        self.confirmed_up_to: int = 0  # every update with update_id < this is gone for good
        self.allowed_updates: frozenset[str] = DEFAULT_ALLOWED

        self._queue: list[dict[str, Any]] = []
        self._next_update_id = FIRST_UPDATE_ID
        self._new_update = asyncio.Event()
        self._poll_gen = 0
        self._closing = False
        self._messages: dict[tuple[int, int], BotMessage] = {}
        self._user_messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._next_mid: dict[int, int] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._chat_state: dict[int, str] = {}
        self._open_queries: set[str] = set()
        self._next_query = 0
        self._files: dict[str, FakeFile] = {}
        self._paths: dict[str, FakeFile] = {}
        self._next_file = 0
        self._faults: dict[str, deque[ApiError]] = {}
        self._window: SlidingWindow | None = None

        self._methods: dict[str, tuple[str, Any]] = {}
        for name in (
            "getMe", "getUpdates", "setWebhook", "deleteWebhook", "getWebhookInfo",
            "setMyCommands", "getMyCommands", "deleteMyCommands", "sendMessage",
            "editMessageText", "editMessageReplyMarkup", "editMessageCaption",
            "answerCallbackQuery", "sendLocation", "sendVenue", "sendPhoto", "sendDocument",
            "sendChatAction", "deleteMessage", "getFile", "close", "logOut",
        ):
            handler = getattr(self, "_m_" + re.sub(r"([A-Z])", r"_\1", name).lower())
            self._methods[name.lower()] = (name, handler)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        self._closing = False
        self.base_url = await self._serve(app)
        return self.base_url

    async def stop(self) -> None:
        self._closing = True
        self._wake()
        await super().stop()

    # -- faults --------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int,
        *,
        description: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
    ) -> None:
        """The next ``count`` calls of ``method`` (any spelling) answer with ``status``."""
        if status == 429:
            ra = retry_after or 1
            err = ApiError(
                429, description or f"Too Many Requests: retry after {ra}", {"retry_after": ra}
            )
        elif status >= 500:
            err = ApiError(status, description or "Internal Server Error")
        elif status == 400:
            err = ApiError(400, description or "Bad Request: simulated failure")
        elif status == 403:
            err = ApiError(403, description or E_BLOCKED)
        else:
            err = ApiError(status, description or HTTPStatus(status).phrase)
        self._faults.setdefault(method.lower(), deque()).extend([err] * count)

    def clear_faults(self) -> None:
        """Forget every failure still queued by `fail_next` (the API is back)."""
        self._faults.clear()

    def block(self, chat_id: int) -> None:
        self._chat_state[chat_id] = "blocked"

    def unblock(self, chat_id: int) -> None:
        self._chat_state.pop(chat_id, None)

    def deactivate(self, chat_id: int) -> None:
        self._chat_state[chat_id] = "deactivated"

    def unknown_chat(self, chat_id: int) -> None:
        self._chat_state[chat_id] = "unknown"

    # -- inspection ----------------------------------------------------------------------------

    def count(self, method: str, status: int | None = None) -> int:
        m = method.lower()
        return sum(
            1
            for r in self.requests
            if r.method.lower() == m and (status is None or r.status == status)
        )

    def messages_for(self, chat_id: int) -> list[BotMessage]:
        return sorted(
            (m for (c, _), m in self._messages.items() if c == chat_id),
            key=lambda m: m.message_id,
        )

    def message(self, chat_id: int, message_id: int) -> BotMessage | None:
        return self._messages.get((chat_id, message_id))

    def sent_to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed."""
        return list(self._queue)

    def file(self, file_id: str) -> FakeFile:
        return self._files[file_id]

    def file_bytes(self, file_id: str) -> bytes:
        return self._files[file_id].data()

    def message_dict(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """The bot's message as Telegram would serialise it (e.g. inside a callback_query)."""
        return self._message_json(self._messages[(chat_id, message_id)])

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Lontar",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    # -- user side: injecting updates ----------------------------------------------------------

    def text(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Warga",
        chat_type: str = "private",
        entities: list[dict[str, Any]] | None = None,
        language_code: str | None = "id",
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        self._remember_chat(chat_id, chat_type, first_name)
        user = self._remember_user(chat_id, user_id, first_name, language_code)
        msg = self._user_message(chat_id, user, text=text)
        ents = list(entities or [])
        if entities is None and text.startswith("/"):
            word = text.split(maxsplit=1)[0] if text.strip() else text
            ents.append({"type": "bot_command", "offset": 0, "length": u16len(word)})
        if ents:
            msg["entities"] = ents
        if reply_to_message_id is not None:
            replied = self._any_message_json(chat_id, reply_to_message_id)
            if replied is not None:
                msg["reply_to_message"] = replied
        return self._push({"message": msg})

    def press(
        self,
        chat_id: int,
        data: str,
        *,
        message_id: int,
        user_id: int | None = None,
        first_name: str | None = None,
    ) -> dict[str, Any]:
        bot_msg = self._messages.get((chat_id, message_id))
        if bot_msg is None:
            raise LookupError(f"the bot has no message {message_id} in chat {chat_id}")
        user = self._sender(chat_id, user_id, first_name)
        self._next_query += 1
        query_id = str(4_700_000_000_000_000_000 + self._next_query)
        self._open_queries.add(query_id)
        return self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "chat_instance": str(-(8_000_000_000_000_000_000 + abs(chat_id))),
                    "data": data,
                    "message": self._message_json(bot_msg),
                }
            }
        )

    def photo(
        self,
        chat_id: int,
        size_bytes: int | None = None,
        *,
        caption: str | None = None,
        content: bytes | None = None,
    ) -> dict[str, Any]:
        big = self._photo_sizes(size_bytes, content)
        msg = self._user_message(chat_id, self._sender(chat_id), photo=big)
        if caption is not None:
            msg["caption"] = caption
        return self._push({"message": msg})

    def document(
        self,
        chat_id: int,
        size_bytes: int | None = None,
        *,
        mime_type: str,
        file_name: str,
        caption: str | None = None,
        content: bytes | None = None,
    ) -> dict[str, Any]:
        ext = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        f = self._new_file("documents", ext, size_bytes, content)
        doc = {
            "file_id": f.file_id, "file_unique_id": f.file_unique_id, "file_name": file_name,
            "mime_type": mime_type, "file_size": f.size,
        }
        msg = self._user_message(chat_id, self._sender(chat_id), document=doc)
        if caption is not None:
            msg["caption"] = caption
        return self._push({"message": msg})

    def sticker(self, chat_id: int, *, emoji: str = "👍") -> dict[str, Any]:
        f = self._new_file("stickers", "webp", 12_000, None)
        st = {
            "file_id": f.file_id, "file_unique_id": f.file_unique_id, "type": "regular",
            "width": 512, "height": 512, "is_animated": False, "is_video": False,
            "emoji": emoji, "set_name": "LontarTest", "file_size": f.size,
        }
        return self._media(chat_id, sticker=st)

    def voice(self, chat_id: int, *, duration: int = 3, size_bytes: int = 9_000) -> dict[str, Any]:
        f = self._new_file("voice", "oga", size_bytes, None)
        v = {
            "file_id": f.file_id, "file_unique_id": f.file_unique_id, "duration": duration,
            "mime_type": "audio/ogg", "file_size": f.size,
        }
        return self._media(chat_id, voice=v)

    def video(self, chat_id: int, *, size_bytes: int = 300_000) -> dict[str, Any]:
        f = self._new_file("videos", "mp4", size_bytes, None)
        v = {
            "file_id": f.file_id, "file_unique_id": f.file_unique_id, "width": 640,
            "height": 360, "duration": 5, "mime_type": "video/mp4", "file_size": f.size,
        }
        return self._media(chat_id, video=v)

    def animation(self, chat_id: int) -> dict[str, Any]:
        f = self._new_file("animations", "mp4", 150_000, None)
        base = {
            "file_id": f.file_id, "file_unique_id": f.file_unique_id,
            "file_name": "animation.gif.mp4", "mime_type": "video/mp4", "file_size": f.size,
        }
        anim = base | {"width": 320, "height": 240, "duration": 2}
        # Telegram sends GIFs with both fields set.
        return self._media(chat_id, animation=anim, document=dict(base))

    def location(self, chat_id: int, lat: float, lon: float) -> dict[str, Any]:
        loc = {"latitude": lat, "longitude": lon}
        return self._media(chat_id, location=loc)

    def _media(self, chat_id: int, **fields: Any) -> dict[str, Any]:
        return self._push({"message": self._user_message(chat_id, self._sender(chat_id),
                                                          **fields)})

    def contact(
        self, chat_id: int, phone_number: str, first_name: str, *, own: bool = True
    ) -> dict[str, Any]:
        user = self._sender(chat_id)
        c: dict[str, Any] = {"phone_number": phone_number, "first_name": first_name}
        if own:
            c["user_id"] = user["id"]
        return self._push({"message": self._user_message(chat_id, user, contact=c)})

    def edited_text(self, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
        user = self._sender(chat_id)
        old = self._user_messages.get((chat_id, message_id))
        msg: dict[str, Any] = {
            "message_id": message_id,
            "from": user,
            "chat": self._chat(chat_id),
            "date": old["date"] if old else int(time.time()) - 5,
            "edit_date": int(time.time()),
            "text": text,
        }
        if old is not None:
            old.update(text=text, edit_date=msg["edit_date"])
        return self._push({"edited_message": msg})

    def my_chat_member(self, chat_id: int, new_status: str) -> dict[str, Any]:
        """"kicked" = the user blocked the bot (sends then get 403), "member" = unblocked."""
        old_status = "member" if new_status == "kicked" else "kicked"

        def member(status: str) -> dict[str, Any]:
            d: dict[str, Any] = {"user": self.bot_user, "status": status}
            if status == "kicked":
                d["until_date"] = 0
            return d

        if new_status == "kicked":
            self.block(chat_id)
        elif self._chat_state.get(chat_id) == "blocked":
            self.unblock(chat_id)
        return self._push(
            {
                "my_chat_member": {
                    "chat": self._chat(chat_id),
                    "from": self._sender(chat_id),
                    "date": int(time.time()),
                    "old_chat_member": member(old_status),
                    "new_chat_member": member(new_status),
                }
            }
        )

    async def push_webhook(self, url: str | None = None) -> list[int]:
        """POST queued updates, oldest first, to ``url`` or the registered webhook, with the
        secret-token header when one is set. A 2xx confirms the update; the first other status
        stops the run. Returns the HTTP statuses received."""
        target = url or (self.webhook.url if self.webhook else None)
        if not target:
            raise RuntimeError("no webhook set and no url given")
        headers = {"Content-Type": "application/json"}
        if self.webhook and self.webhook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook.secret_token
        statuses: list[int] = []
        async with aiohttp.ClientSession() as session:
            while self._queue:
                upd = self._queue[0]
                if _update_kind(upd) not in self.allowed_updates:
                    self._confirm(upd["update_id"] + 1)
                    continue
                async with session.post(target, data=json.dumps(upd), headers=headers) as r:
                    statuses.append(r.status)
                if not 200 <= r.status < 300:
                    break
                self._confirm(upd["update_id"] + 1)
        return statuses

    # -- update queue --------------------------------------------------------------------------

    def _push(self, body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self._next_update_id, **body}
        self._next_update_id += 1
        self._queue.append(update)
        self._wake()
        return update

    def _wake(self) -> None:
        self._new_update.set()
        self._new_update = asyncio.Event()

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            keep = self._queue[offset:]
            if len(keep) < len(self._queue):
                self.confirmed_up_to = max(self.confirmed_up_to, keep[0]["update_id"])
            self._queue = keep
            return
        if offset > self.confirmed_up_to:
            self.confirmed_up_to = offset
        self._queue = [u for u in self._queue if u["update_id"] >= self.confirmed_up_to]

    def _drop_pending(self) -> None:
        self._confirm(self._next_update_id)

    def _batch(self, limit: int) -> list[dict[str, Any]]:
        return [u for u in self._queue if _update_kind(u) in self.allowed_updates][:limit]

    # -- building objects ----------------------------------------------------------------------

    def _remember_chat(self, chat_id: int, chat_type: str, first_name: str) -> None:
        if chat_type == "private":
            self._chats[chat_id] = {"id": chat_id, "type": "private", "first_name": first_name}
        else:
            self._chats[chat_id] = {"id": chat_id, "type": chat_type, "title": "Grup Uji Lontar"}

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id not in self._chats:
            if chat_id > 0:
                self._remember_chat(chat_id, "private", "Warga")
            else:
                kind = "supergroup" if str(chat_id).startswith("-100") else "group"
                self._remember_chat(chat_id, kind, "")
        return dict(self._chats[chat_id])

    def _remember_user(
        self, chat_id: int, user_id: int | None, first_name: str, language_code: str | None
    ) -> dict[str, Any]:
        uid = user_id if user_id is not None else (chat_id if chat_id > 0 else 1001)
        user: dict[str, Any] = {"id": uid, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        self._users[chat_id] = user
        return user

    def _sender(
        self, chat_id: int, user_id: int | None = None, first_name: str | None = None
    ) -> dict[str, Any]:
        """The user acting in ``chat_id``: the last one seen there unless told otherwise."""
        known = self._users.get(chat_id)
        if known is not None and user_id in (None, known["id"]) and first_name is None:
            return dict(known)
        self._chat(chat_id)
        name = first_name or (known["first_name"] if known else "Warga")
        return self._remember_user(chat_id, user_id, name, "id")

    def _mid(self, chat_id: int) -> int:
        mid = self._next_mid.get(chat_id, 0) + 1
        self._next_mid[chat_id] = mid
        return mid

    def _user_message(self, chat_id: int, user: dict[str, Any], **fields: Any) -> dict[str, Any]:
        msg = {
            "message_id": self._mid(chat_id),
            "from": user,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            **fields,
        }
        self._user_messages[(chat_id, msg["message_id"])] = msg
        return msg

    def _any_message_json(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        if (chat_id, message_id) in self._messages:
            return self._message_json(self._messages[(chat_id, message_id)])
        um = self._user_messages.get((chat_id, message_id))
        return {k: v for k, v in um.items() if k != "reply_to_message"} if um else None

    def _new_file(
        self, folder: str, ext: str, size: int | None, content: bytes | None
    ) -> FakeFile:
        if content is None and size is None:
            raise ValueError("give size_bytes or content")
        self._next_file += 1
        n = self._next_file
        uid = f"AQAD{n:06d}Lx"
        f = FakeFile(
            file_id=f"AgACAgUAAxkBAAI{n:06d}{hashlib.sha1(uid.encode()).hexdigest()[:20]}",
            file_unique_id=uid,
            file_path=f"{folder}/file_{n}.{ext}",
            size=len(content) if content is not None else int(size or 0),
            content=content,
        )
        self._files[f.file_id] = f
        self._paths[f.file_path] = f
        return f

    def _photo_sizes(self, size: int | None, content: bytes | None) -> list[dict[str, Any]]:
        total = len(content) if content is not None else int(size or 0)
        out = []
        for w, h, cap in ((90, 68, 1_500), (320, 240, 20_000)):
            f = self._new_file("photos", "jpg", min(total, cap), None)
            out.append({"file_id": f.file_id, "file_unique_id": f.file_unique_id,
                        "width": w, "height": h, "file_size": f.size})
        f = self._new_file("photos", "jpg", total, content)
        out.append({"file_id": f.file_id, "file_unique_id": f.file_unique_id,
                    "width": 1280, "height": 960, "file_size": f.size})
        return out

    def _message_json(self, m: BotMessage) -> dict[str, Any]:
        d: dict[str, Any] = {
            "message_id": m.message_id,
            "from": self.bot_user,
            "chat": self._chat(m.chat_id),
            "date": m.date,
        }
        if m.edit_date is not None:
            d["edit_date"] = m.edit_date
        if m.reply_to_message_id is not None:
            replied = self._any_message_json(m.chat_id, m.reply_to_message_id)
            if replied is not None:
                d["reply_to_message"] = replied
        if m.kind == "text":
            d["text"] = m.plain
            if m.entities:
                d["entities"] = m.entities
        else:
            d.update(m.payload)
            if m.plain:
                d["caption"] = m.plain
                if m.entities:
                    d["caption_entities"] = m.entities
        if m.inline_markup is not None:
            d["reply_markup"] = m.inline_markup
        return d

    # -- HTTP ----------------------------------------------------------------------------------

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        ctype = request.content_type
        if request.can_read_body:
            if ctype == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    raw.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        raw[key] = UploadedFile(value.filename, value.content_type,
                                                value.file.read())
                    else:
                        raw[key] = value
        params = {k: _decode_value(k, v) for k, v in raw.items()}
        for key, value in list(params.items()):  # attach://name -> the uploaded part
            if isinstance(value, str) and value.startswith("attach://"):
                part = params.get(value[len("attach://"):])
                if isinstance(part, UploadedFile):
                    params[key] = part
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        self.token = request.match_info["token"]
        name = request.match_info["method"]
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        entry = self._methods.get(name.lower())
        canonical = entry[0] if entry else name
        params: dict[str, Any] = {}
        try:
            params = await self._read_params(request)
            if entry is None:
                raise ApiError(404, "Not Found")
            faults = self._faults.get(canonical.lower())
            if faults:
                raise faults.popleft()
            self._rate_limit(canonical)
            result = await entry[1](params, request)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as err:
            status, body = err.status, err.body()
        except _ClientGone:
            status, body = 499, {"ok": True, "result": []}
        except Exception as exc:  # noqa: BLE001 - a bug in the fake: answer 500, keep it
            self.errors.append(exc)
            status = 500
            body = ApiError(500, f"Internal Server Error: fake failed: {exc!r}").body()
        self.requests.append(
            ApiRequest(canonical, params, at, status, request.method, self.token or "")
        )
        return web.json_response(body, status=status if status != 499 else 200)

    async def _handle_file(self, request: web.Request) -> web.Response:
        self.token = request.match_info["token"]
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        f = self._paths.get(request.match_info["file_path"])
        status = 200 if f is not None else 404
        self.requests.append(
            ApiRequest("file", {"file_path": request.match_info["file_path"]},
                       time.monotonic(), status, "GET", self.token)
        )
        if f is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.Response(body=f.data(), content_type="application/octet-stream")

    def _rate_limit(self, method: str) -> None:
        rate = self.rate_limit_per_second
        if not rate or not (method.startswith("send") or method.startswith("edit")):
            return
        if self._window is None:
            self._window = SlidingWindow(rate)
        if not self._window.admit():
            self.rejected_429.append(time.monotonic())
            raise ApiError(
                429, "Too Many Requests: retry after 1", {"retry_after": 1}
            )

    def _target(self, params: dict[str, Any]) -> int:
        chat_id = _require(params, "chat_id")
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            raise bad(E_CHAT_NOT_FOUND)  # @usernames: the fake knows no public chats
        state = self._chat_state.get(chat_id)
        if state == "blocked":
            raise ApiError(403, E_BLOCKED)
        if state == "deactivated":
            raise ApiError(403, E_DEACTIVATED)
        if state == "unknown":
            raise bad(E_CHAT_NOT_FOUND)
        return chat_id

    def _check_markup(self, markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad(E_MARKUP)
        if "inline_keyboard" not in markup:
            return markup  # reply keyboards, ReplyKeyboardRemove, ForceReply: accepted as is
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad(E_MARKUP)
        total = 0
        for row in rows:
            if len(row) > 8:
                raise bad(E_BUTTONS_TOO_MUCH)
            total += len(row)
            for button in row:
                if not isinstance(button, dict):
                    raise bad(E_MARKUP)
                text = button.get("text")
                if not isinstance(text, str) or not text.strip():
                    raise bad(E_BUTTON_TEXT)
                actions = set(button) - {"text", "style", "icon_custom_emoji_id"}
                if not actions:
                    raise bad(E_TEXT_BUTTON)
                if "callback_data" in button:
                    data = button["callback_data"]
                    if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
                        raise bad(E_BUTTON_DATA)
        if total > 100:
            raise bad(E_BUTTONS_TOO_MUCH)
        return markup

    def _text(self, params: dict[str, Any], key: str = "text") -> tuple[str, str, list[Any]]:
        text = params.get(key)
        text = "" if text is None else str(text)
        plain, entities = render(text, params.get("parse_mode"))
        if not plain.strip():
            raise bad(E_TEXT_EMPTY)
        if len(plain) > MAX_TEXT:
            raise bad(E_TEXT_LONG)
        return text, plain, entities

    def _caption(self, params: dict[str, Any]) -> tuple[str, str, list[Any]]:
        caption = params.get("caption")
        if caption is None or caption == "":
            return "", "", []
        plain, entities = render(str(caption), params.get("parse_mode"))
        if len(plain) > MAX_CAPTION:
            raise bad(E_CAPTION_LONG)
        return str(caption), plain, entities

    def _reply_to(self, chat_id: int, params: dict[str, Any]) -> int | None:
        rp = params.get("reply_parameters")
        mid = rp.get("message_id") if isinstance(rp, dict) else params.get("reply_to_message_id")
        if mid is None:
            return None
        mid = _int(mid)
        known = (chat_id, mid) in self._messages or (chat_id, mid) in self._user_messages
        if not known:
            allow = isinstance(rp, dict) and rp.get("allow_sending_without_reply")
            if allow or params.get("allow_sending_without_reply"):
                return None
            raise bad(E_REPLY_NOT_FOUND)
        return mid

    def _store(
        self, method: str, chat_id: int, params: dict[str, Any], kind: str, **fields: Any
    ) -> dict[str, Any]:
        markup = self._check_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat_id, params)
        msg = BotMessage(
            chat_id=chat_id, message_id=self._mid(chat_id), kind=kind, date=int(time.time()),
            parse_mode=params.get("parse_mode"), reply_markup=markup,
            reply_to_message_id=reply_to, **fields,
        )
        self._messages[(chat_id, msg.message_id)] = msg
        self._record(method, msg, params)
        return self._message_json(msg)

    def _record(self, method: str, msg: BotMessage, params: dict[str, Any]) -> None:
        self.sent.append(
            Sent(
                method=method, chat_id=msg.chat_id, message_id=msg.message_id, text=msg.text,
                plain=msg.plain, parse_mode=msg.parse_mode, reply_markup=msg.reply_markup,
                at=time.monotonic(), entities=list(msg.entities), params=dict(params),
            )
        )

    def _edit_target(self, params: dict[str, Any]) -> BotMessage:
        if params.get("inline_message_id"):
            raise bad("Bad Request: inline messages are not supported by the fake")
        chat_id = self._target(params)
        mid = _int(_require(params, "message_id"))
        msg = self._messages.get((chat_id, mid))
        if msg is None:
            raise bad(E_EDIT_NOT_FOUND)
        return msg

    # -- methods (each takes decoded params, returns the "result") --------------------------

    async def _m_get_me(self, p: dict[str, Any], r: web.Request) -> Any:
        return self.bot_user

    async def _m_close(self, p: dict[str, Any], r: web.Request) -> Any:
        return True

    async def _m_log_out(self, p: dict[str, Any], r: web.Request) -> Any:
        return True

    async def _m_get_updates(self, p: dict[str, Any], r: web.Request) -> Any:
        if self.webhook is not None:
            raise ApiError(409, E_WEBHOOK_ACTIVE)
        offset = _int(p.get("offset"), 0)
        limit = min(100, max(1, _int(p.get("limit"), 100)))
        timeout = max(0.0, float(p.get("timeout") or 0))
        allowed = p.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
        if offset:
            self._confirm(offset)
        self._poll_gen += 1
        gen = self._poll_gen
        self._wake()  # an older long poll still waiting is terminated (409)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if gen != self._poll_gen:
                if r.transport is None or r.transport.is_closing():
                    raise _ClientGone
                raise ApiError(409, E_TERMINATED)
            batch = self._batch(limit)
            remaining = deadline - loop.time()
            if batch or self._closing or remaining <= 0:
                return batch
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):  # not wait_for: see bot.leader
                    await self._new_update.wait()

    async def _m_set_webhook(self, p: dict[str, Any], r: web.Request) -> Any:
        url = str(p.get("url") or "")
        secret = p.get("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(str(secret)):
            raise bad(E_SECRET)
        if url:
            loopback = re.match(r"http://(127\.0\.0\.1|localhost)(:\d+)?/", url + "/")
            if not url.startswith("https://") and not loopback:
                raise bad(E_WEBHOOK_URL)
        max_conn = _int(p.get("max_connections"), 40)
        if not 1 <= max_conn <= 100:
            raise bad("Bad Request: max_connections must be between 1 and 100")
        if p.get("drop_pending_updates") is True:
            self._drop_pending()
        allowed = p.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = frozenset(allowed) if allowed else DEFAULT_ALLOWED
        if not url:
            self.webhook = None
            return True
        self.webhook = Webhook(
            url=url, secret_token=str(secret) if secret is not None else None,
            allowed_updates=allowed if isinstance(allowed, list) else None,
            max_connections=max_conn,
        )
        self._wake()
        return True

    async def _m_delete_webhook(self, p: dict[str, Any], r: web.Request) -> Any:
        if p.get("drop_pending_updates") is True:
            self._drop_pending()
        self.webhook = None
        return True

    async def _m_get_webhook_info(self, p: dict[str, Any], r: web.Request) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if self.webhook:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
        return info

    def _commands_key(self, p: dict[str, Any]) -> tuple[str, str | None]:
        lang = str(p.get("language_code") or "")
        if lang and not _LANG_RE.fullmatch(lang):
            raise bad("Bad Request: invalid language code specified")
        scope = p.get("scope")
        if scope is None or (isinstance(scope, dict) and scope.get("type") == "default"):
            return lang, None
        return lang, json.dumps(scope, sort_keys=True)

    async def _m_set_my_commands(self, p: dict[str, Any], r: web.Request) -> Any:
        commands = _require(p, "commands")
        if not isinstance(commands, list):
            raise bad("Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise bad(E_COMMANDS_TOO_MUCH)
        out: list[tuple[str, str]] = []
        for c in commands:
            if not isinstance(c, dict):
                raise bad("Bad Request: can't parse BotCommand")
            command, description = str(c.get("command", "")), str(c.get("description", ""))
            if not _COMMAND_RE.fullmatch(command):
                raise bad(E_COMMAND)
            if not 1 <= len(description) <= 256:
                raise bad(E_COMMAND_DESCRIPTION)
            out.append((command, description))
        lang, scope = self._commands_key(p)
        if scope is None:
            self.commands[lang] = out
        else:
            self.scoped_commands[(scope, lang)] = out
        return True

    async def _m_delete_my_commands(self, p: dict[str, Any], r: web.Request) -> Any:
        lang, scope = self._commands_key(p)
        if scope is None:
            self.commands.pop(lang, None)
        else:
            self.scoped_commands.pop((scope, lang), None)
        return True

    async def _m_get_my_commands(self, p: dict[str, Any], r: web.Request) -> Any:
        lang, scope = self._commands_key(p)
        cmds = self.commands.get(lang, []) if scope is None else self.scoped_commands.get(
            (scope, lang), [])
        return [{"command": c, "description": d} for c, d in cmds]

    async def _m_send_message(self, p: dict[str, Any], r: web.Request) -> Any:
        chat_id = self._target(p)
        text, plain, entities = self._text(p)
        return self._store("sendMessage", chat_id, p, "text", text=text, plain=plain,
                           entities=entities)

    async def _m_send_location(self, p: dict[str, Any], r: web.Request) -> Any:
        chat_id = self._target(p)
        lat, lon = _float(p.get("latitude"), "latitude"), _float(p.get("longitude"), "longitude")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise bad("Bad Request: wrong latitude or longitude")
        loc = {"latitude": lat, "longitude": lon}
        return self._store("sendLocation", chat_id, p, "location", payload={"location": loc})

    async def _m_send_venue(self, p: dict[str, Any], r: web.Request) -> Any:
        chat_id = self._target(p)
        lat, lon = _float(p.get("latitude"), "latitude"), _float(p.get("longitude"), "longitude")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise bad("Bad Request: wrong latitude or longitude")
        title, address = str(_require(p, "title")), str(_require(p, "address"))
        loc = {"latitude": lat, "longitude": lon}
        venue = {"location": loc, "title": title, "address": address}
        for key in ("foursquare_id", "foursquare_type", "google_place_id", "google_place_type"):
            if p.get(key):
                venue[key] = p[key]
        return self._store("sendVenue", chat_id, p, "venue",
                           payload={"venue": venue, "location": loc})

    def _bot_file(self, value: Any, folder: str, ext: str) -> FakeFile:
        if isinstance(value, UploadedFile):
            return self._new_file(folder, ext, None, value.data)
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return self._new_file(folder, ext, 50_000, None)
        raise bad("Bad Request: wrong file identifier/HTTP URL specified")

    async def _m_send_photo(self, p: dict[str, Any], r: web.Request) -> Any:
        chat_id = self._target(p)
        caption, plain, entities = self._caption(p)
        value = _require(p, "photo")
        if isinstance(value, UploadedFile):
            sizes = self._photo_sizes(None, value.data)
        else:
            f = self._bot_file(value, "photos", "jpg")
            sizes = [{"file_id": f.file_id, "file_unique_id": f.file_unique_id,
                      "width": 1280, "height": 960, "file_size": f.size}]
        return self._store("sendPhoto", chat_id, p, "photo", text=caption, plain=plain,
                           entities=entities, payload={"photo": sizes})

    async def _m_send_document(self, p: dict[str, Any], r: web.Request) -> Any:
        chat_id = self._target(p)
        caption, plain, entities = self._caption(p)
        value = _require(p, "document")
        name = value.filename if isinstance(value, UploadedFile) else None
        ext = name.rsplit(".", 1)[-1] if name and "." in name else "bin"
        f = self._bot_file(value, "documents", ext)
        doc: dict[str, Any] = {"file_id": f.file_id, "file_unique_id": f.file_unique_id,
                               "file_size": f.size}
        if name:
            doc["file_name"] = name
        if isinstance(value, UploadedFile) and value.content_type:
            doc["mime_type"] = value.content_type
        return self._store("sendDocument", chat_id, p, "document", text=caption, plain=plain,
                           entities=entities, payload={"document": doc})

    async def _m_send_chat_action(self, p: dict[str, Any], r: web.Request) -> Any:
        self._target(p)
        if p.get("action") not in _CHAT_ACTIONS:
            raise bad(E_CHAT_ACTION)
        return True

    async def _m_delete_message(self, p: dict[str, Any], r: web.Request) -> Any:
        chat_id = self._target(p)
        mid = _int(_require(p, "message_id"))
        gone = self._messages.pop((chat_id, mid), None) or self._user_messages.pop(
            (chat_id, mid), None)
        if gone is None:
            raise bad(E_DELETE_NOT_FOUND)
        return True

    async def _m_edit_message_text(self, p: dict[str, Any], r: web.Request) -> Any:
        msg = self._edit_target(p)
        if msg.kind != "text":
            raise bad(E_NO_TEXT_TO_EDIT)
        text, plain, entities = self._text(p)
        # Like Telegram: no reply_markup in an edit removes the inline keyboard.
        markup = self._check_markup(p.get("reply_markup"))
        if plain == msg.plain and entities == msg.entities and markup == msg.inline_markup:
            raise bad(E_NOT_MODIFIED)
        msg.text, msg.plain, msg.entities = text, plain, entities
        msg.parse_mode = p.get("parse_mode")
        msg.reply_markup = markup
        return self._edited("editMessageText", msg, p)

    async def _m_edit_message_caption(self, p: dict[str, Any], r: web.Request) -> Any:
        msg = self._edit_target(p)
        if msg.kind not in ("photo", "document"):
            raise bad("Bad Request: there is no caption in the message to edit")
        caption, plain, entities = self._caption(p)
        markup = self._check_markup(p.get("reply_markup"))
        if plain == msg.plain and entities == msg.entities and markup == msg.inline_markup:
            raise bad(E_NOT_MODIFIED)
        msg.text, msg.plain, msg.entities = caption, plain, entities
        msg.parse_mode = p.get("parse_mode")
        msg.reply_markup = markup
        return self._edited("editMessageCaption", msg, p)

    async def _m_edit_message_reply_markup(self, p: dict[str, Any], r: web.Request) -> Any:
        msg = self._edit_target(p)
        markup = self._check_markup(p.get("reply_markup"))
        if markup is not None and "inline_keyboard" not in markup:
            raise bad("Bad Request: inline keyboard expected")
        if markup == msg.inline_markup:
            raise bad(E_NOT_MODIFIED)
        msg.reply_markup = markup
        return self._edited("editMessageReplyMarkup", msg, p)

    def _edited(self, method: str, msg: BotMessage, p: dict[str, Any]) -> Any:
        msg.edit_date = int(time.time())
        msg.edits += 1
        self._record(method, msg, p)
        return self._message_json(msg)

    async def _m_answer_callback_query(self, p: dict[str, Any], r: web.Request) -> Any:
        qid = str(_require(p, "callback_query_id"))
        if qid not in self._open_queries:
            raise bad(E_QUERY_OLD)
        text = p.get("text")
        if text is not None and len(str(text)) > MAX_CALLBACK_ANSWER:
            raise bad(E_ANSWER_LONG)
        self._open_queries.discard(qid)
        self.answered[qid] = None if text is None else str(text)
        return True

    async def _m_get_file(self, p: dict[str, Any], r: web.Request) -> Any:
        f = self._files.get(str(p.get("file_id") or ""))
        if f is None:
            raise bad(E_FILE_ID)
        if f.size > MAX_DOWNLOAD:
            raise bad(E_FILE_BIG)
        return {
            "file_id": f.file_id, "file_unique_id": f.file_unique_id, "file_size": f.size,
            "file_path": f.file_path,
        }
