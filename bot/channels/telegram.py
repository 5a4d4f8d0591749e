"""Telegram through python-telegram-bot, used as a transport only.

Lontar's engine owns the conversation, so PTB's Application, ConversationHandler and
persistence are not used: a `telegram.Bot` makes the API calls, and this module turns updates
into `Inbound`s and outbox rows into messages. Updates are stored before they are
acknowledged (polling: before the next getUpdates; webhook: before the 200), so a crash
loses none; the unique (channel, platform id) makes a redelivery harmless.

Edited messages are ignored on purpose: a citizen fixing a typo has usually already been
answered, and answering again would repeat the menu; the edit is still stored.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
import mimetypes
import warnings
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import Connection, bindparam, select
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.attachments import ACCEPTED_TYPES, attachment_path
from bot.channels.aiohttp_request import AiohttpRequest
from bot.channels.text import split_text
from bot.config import Settings
from bot.inbox import Inbound, Inbox
from bot.lanes import ChatLanes
from bot.models import contact_t
from bot.outbox import Delivered, Meta, Recipient, SendError, platform_call
from bot.services import broadcast_images as images
from bot.services import consent
from flows.content import Content
from flows.types import Option, Reply

log = logging.getLogger(__name__)

CHANNEL = "telegram"
LIMIT_PER_SECOND = 30  # Telegram's limit for one bot, all chats together
BURST = 1  # the pacing bucket saves nothing up: the limiter's window absorbs late wake-ups
ROW_MAX = 8  # Telegram's limit of buttons in one keyboard row
CALLBACK_MAX = 64  # bytes of callback_data
SHORT_LABEL = 14  # two labels this short share a row on a phone
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
COMMANDS = ("start", "menu", "status", "pengaduan", "bahasa", "langganan", "berhenti",
            "pengaturan", "bantuan", "hapus")


def make_bot(settings: Settings) -> Bot:
    base = settings.telegram_api_base_url.rstrip("/")
    return Bot(
        settings.telegram_bot_token,
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        request=AiohttpRequest(connection_pool_size=64, read_timeout=15, write_timeout=15,
                               pool_timeout=5, before_send=platform_call),
        get_updates_request=AiohttpRequest(connection_pool_size=1,
                                           read_timeout=settings.telegram_poll_timeout + 15),
    )


async def set_webhook(bot: Bot, settings: Settings) -> None:
    await bot.set_webhook(settings.telegram_webhook_url,
                          secret_token=settings.telegram_webhook_secret,
                          allowed_updates=ALLOWED_UPDATES)


# --- rendering -------------------------------------------------------------------------------


def keyboard(options: Iterable[Option]) -> InlineKeyboardMarkup | None:
    """Buttons as rows: two short labels share a row, a long label gets its own."""
    rows: list[list[InlineKeyboardButton]] = []
    for option in options:
        if len(option.id.encode()) > CALLBACK_MAX:  # Telegram would refuse the whole message
            log.error("button %r dropped: callback data over %d bytes", option.label,
                      CALLBACK_MAX)
            continue
        button = InlineKeyboardButton(option.label, callback_data=option.id)
        last = rows[-1] if rows else None
        if (last is not None and len(last) < min(2, ROW_MAX)
                and len(option.label) <= SHORT_LABEL
                and all(len(b.text) <= SHORT_LABEL for b in last)):
            last.append(button)
        else:
            rows.append([button])
    return InlineKeyboardMarkup(rows) if rows else None


class TelegramSender:
    """Delivers outbox rows; maps Telegram's errors onto retry, back off, or give up."""

    channel = CHANNEL

    def __init__(self, bot: Bot, media_dir: Path | None = None):
        self.bot = bot
        self.media_dir = media_dir  # broadcast pictures
        self._file_ids: dict[str, str] = {}  # a picture is uploaded once, then reused by id
        self._uploading: dict[str, asyncio.Lock] = {}

    async def send(self, contact: Recipient, reply: Reply, meta: Meta) -> Delivered:
        chat_id = int(contact.external_id)
        try:
            if meta.image and self.media_dir is not None:
                return Delivered(await self._photo(chat_id, reply, meta.image))
            return Delivered(await self._send(chat_id, reply,
                                              int(meta.replace) if meta.replace else None))
        except RetryAfter as exc:
            raise SendError(str(exc), retryable=True, retry_after=_seconds(exc)) from exc
        except Forbidden as exc:  # blocked, deactivated, can't initiate: the chat is gone
            raise SendError(str(exc), retryable=False, blocked=True) from exc
        except BadRequest as exc:
            gone = "chat not found" in exc.message.lower()
            raise SendError(str(exc), retryable=False, blocked=gone) from exc
        except (TimedOut, NetworkError) as exc:  # includes 5xx answers
            raise SendError(str(exc), retryable=True) from exc
        except InvalidToken as exc:  # 401/404: the token was revoked; staff must act
            log.error("Telegram refused the bot token (%s); check TELEGRAM_BOT_TOKEN", exc)
            raise SendError(str(exc), retryable=True) from exc
        except TelegramError as exc:  # any other refusal, or a body it could not parse
            raise SendError(str(exc), retryable=True) from exc
        except (AttributeError, TypeError, KeyError, ValueError, OverflowError) as exc:
            # python-telegram-bot could not read a success answer (no result, a null or a
            # list for the message): the send may have gone, so as after a 5xx, try again
            log.warning("Telegram answered a send with something unreadable (%s)",
                        type(exc).__name__)
            raise SendError(f"unreadable answer from Telegram ({type(exc).__name__})",
                            retryable=True) from exc

    async def _send(self, chat_id: int, reply: Reply, edit: int | None) -> str | None:
        parts = split_text(reply.text)
        markup = keyboard(reply.options)
        sent: Message | bool | None = None
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            text = html.escape(part, quote=False)
            if i == 0 and edit is not None:
                sent = await self._edit(chat_id, edit, text, markup if last else None)
                if sent is not None:
                    continue
            sent = await self.bot.send_message(
                chat_id, text, parse_mode=ParseMode.HTML, reply_markup=markup if last else None)
        if reply.venue is not None:
            v = reply.venue
            await self.bot.send_venue(chat_id, latitude=v.latitude, longitude=v.longitude,
                                      title=v.title, address=v.address)
        return str(sent.message_id) if isinstance(sent, Message) else (
            str(edit) if edit is not None else None)

    async def _photo(self, chat_id: int, reply: Reply, image: str) -> str | None:
        """A broadcast picture with the text as its caption (the composer keeps it short).
        The first send uploads it, one at a time; the rest reuse Telegram's file id."""
        assert self.media_dir is not None
        if image not in self._file_ids:
            async with self._uploading.setdefault(image, asyncio.Lock()):
                if image not in self._file_ids:
                    path = images.path(self.media_dir, image)
                    if path is None:
                        log.warning("broadcast picture %r is missing; sending the text alone",
                                    image)
                        return await self._send(chat_id, reply, None)
                    sent = await self._send_photo(chat_id, reply, path.read_bytes())
                    if sent.photo:
                        self._file_ids[image] = sent.photo[-1].file_id
                    return str(sent.message_id)
        return str((await self._send_photo(chat_id, reply, self._file_ids[image])).message_id)

    async def _send_photo(self, chat_id: int, reply: Reply, photo: str | bytes) -> Message:
        return await self.bot.send_photo(
            chat_id, photo, caption=html.escape(reply.text, quote=False),
            parse_mode=ParseMode.HTML, reply_markup=keyboard(reply.options))

    async def _edit(self, chat_id: int, message_id: int, text: str,
                    markup: InlineKeyboardMarkup | None) -> Message | bool | None:
        """Replace a menu in place; None when it can't be (too old, deleted): send instead."""
        try:
            return await self.bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML,
                reply_markup=markup)
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return True
            return None


def _seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int will become a timedelta
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# --- receiving -------------------------------------------------------------------------------


class TelegramChannel:
    """Receives (polling or webhook), stores before acknowledging, and processes."""

    def __init__(self, settings: Settings, inbox: Inbox, content: Content, bot: Bot | None = None):
        self.settings = settings
        self.inbox = inbox
        self.content = content
        self.bot = bot or make_bot(settings)
        self.sender = TelegramSender(self.bot, images.folder(settings.data_dir))
        self.username = ""
        self.lanes = ChatLanes("telegram")  # turns after the update is acknowledged
        self._stopping = asyncio.Event()

    @property
    def webhook_mode(self) -> bool:
        return bool(self.settings.telegram_webhook_url)

    async def start(self) -> None:
        await self.bot.initialize()
        self.username = self.bot.username
        await self.set_commands()
        if self.webhook_mode:
            await set_webhook(self.bot, self.settings)

    async def stop(self) -> None:
        self._stopping.set()
        await self.lanes.close()
        await self.bot.shutdown()

    async def set_commands(self) -> None:
        for lang in ("id", "en"):
            commands = [BotCommand(c, self.content.msg(lang, f"cmd_{c}")) for c in COMMANDS]
            await self.bot.set_my_commands(commands, language_code=None if lang == "id" else lang)


    # -- long polling ------------------------------------------------------------------------

    async def poll(self) -> None:
        """getUpdates forever; a batch is stored before the next call acknowledges it."""
        offset: int | None = None
        backoff = 1.0
        webhook_deleted = False
        while not self._stopping.is_set():
            try:
                if not webhook_deleted:  # getUpdates is refused while a webhook is set
                    await self.bot.delete_webhook()
                    webhook_deleted = True
                updates = await self.bot.get_updates(
                    offset=offset, timeout=self.settings.telegram_poll_timeout,
                    allowed_updates=ALLOWED_UPDATES)
                backoff = 1.0
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc))
                continue
            except InvalidToken:
                log.error("Telegram rejected the bot token; polling stopped")
                return
            except (Conflict, TimedOut, NetworkError) as exc:
                log.warning("getUpdates failed (%s); retrying in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60)
                continue
            try:
                stored = [(u, await self._store_polled(u)) for u in updates]
            except RetryLater as exc:  # not acknowledged: the same batch comes again
                log.warning("could not store an update (%s); fetching it again", exc)
                await asyncio.sleep(backoff)
                continue
            if updates:
                offset = updates[-1].update_id + 1
            for update, inbound_id in stored:
                if inbound_id is not None:
                    self._turn_later(update, inbound_id)

    async def _store_polled(self, update: Update) -> int | None:
        try:
            return await self.store(update)
        except (AttributeError, TypeError, ValueError, OverflowError) as exc:
            # as in the webhook: PTB does not check types, a malformed update fails here
            log.warning("malformed Telegram update %r skipped: %s", update.update_id,
                        type(exc).__name__)
            return None

    # -- webhook -----------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/webhooks/telegram", self.webhook)

    async def webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        expected = self.settings.telegram_webhook_secret
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return web.json_response({"ok": False}, status=403)
        try:
            data = await request.json()
            # PTB trusts the shape: a body that is not an object, a field of the wrong type
            # or a date out of range raises whatever the conversion meets first
            update = Update.de_json(data, self.bot) if isinstance(data, dict) else None
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, OSError,
                TelegramError):
            return web.json_response({"ok": False, "error": "bad update"}, status=400)
        if update is None:
            return web.json_response({"ok": False, "error": "bad update"}, status=400)
        try:
            inbound_id = await self.store(update)
        except RetryLater:  # Telegram delivers it again later
            return web.json_response({"ok": False}, status=503)
        except (AttributeError, TypeError, ValueError, OverflowError) as exc:
            # PTB does not check types: a field Telegram always sends that is missing or of
            # the wrong kind (no chat, a number for a text) fails here, not in de_json
            log.warning("malformed Telegram update %r refused: %s", update.update_id,
                        type(exc).__name__)
            return web.json_response({"ok": False, "error": "bad update"}, status=400)
        if inbound_id is not None:  # answer Telegram now; the turn runs after
            self._turn_later(update, inbound_id)
        return web.json_response({"ok": True})

    def _turn_later(self, update: Update, inbound_id: int) -> None:
        """Process a stored update in its chat's lane: chats side by side, each in order."""
        # as `store` names the chat: a callback without a message is its user's private chat
        chat = update.effective_chat or update.effective_user
        if chat is None:  # not stored as a turn (store returns None for these)
            return
        self.lanes.submit(chat.id, partial(self._turn, inbound_id, str(chat.id)))

    async def _turn(self, inbound_id: int, chat_id: str) -> None:
        try:
            await self.inbox.process(inbound_id, (CHANNEL, chat_id))
        except Exception:  # the others go on; this one stays stored for the leader
            log.exception("Telegram update %s not processed; it stays stored", inbound_id)

    # -- turning an update into an Inbound ---------------------------------------------------

    async def store(self, update: Update) -> int | None:
        """Store one update; return the inbound id to process, or None if nothing to do."""
        if update.my_chat_member is not None:
            await self._membership(update)
            return None
        if update.callback_query is not None:
            return await self._callback(update)
        message = update.message
        if message is None:  # edited messages and kinds Lontar doesn't subscribe to
            return None
        chat = message.chat
        pid = str(update.update_id)
        if chat.type != ChatType.PRIVATE:
            return await self._group(update, message)
        inbound = await self._inbound(message)
        received = await self.inbox.receive(Inbound(
            channel=CHANNEL, external_id=str(chat.id), platform_id=pid,
            kind=inbound[0], payload=inbound[1], at=message.date,  # type: ignore[arg-type]
            display_name=message.from_user.full_name if message.from_user else None,
        ))
        return received.inbound_id if received.new else None

    async def _callback(self, update: Update) -> int | None:
        query = update.callback_query
        assert query is not None
        message = query.message
        chat_id = message.chat.id if message is not None else query.from_user.id
        payload: dict[str, Any] = {"payload": query.data or ""}
        if isinstance(message, Message):
            payload["message_id"] = message.message_id
        received = await self.inbox.receive(Inbound(
            channel=CHANNEL, external_id=str(chat_id), platform_id=str(update.update_id),
            kind="choice", payload=payload, display_name=query.from_user.full_name))
        try:  # every callback query is answered, or the button keeps spinning
            await query.answer()
        except TelegramError as exc:
            log.info("answerCallbackQuery failed: %s", exc)
        return received.inbound_id if received.new else None

    async def _inbound(self, message: Message) -> tuple[str, dict[str, Any]]:
        if message.text is not None:
            command = self._command(message.text)
            if command is not None:
                return "command", {"name": command[0], "args": command[1]}
            return "text", {"text": message.text}
        if message.photo:
            best = message.photo[-1]
            return "attachment", await self._download(
                "photo", best.file_id, best.file_unique_id, best.file_size, "image/jpeg",
                message.chat.id)
        if message.animation is not None:  # a GIF also carries a `document`
            return "attachment", {"kind": "animation"}
        if message.document is not None:
            doc = message.document
            mime = doc.mime_type or mimetypes.guess_type(doc.file_name or "")[0] or ""
            return "attachment", await self._download(
                "document", doc.file_id, doc.file_unique_id, doc.file_size, mime,
                message.chat.id)
        if message.location is not None:
            return "attachment", {"kind": "location"}
        if message.contact is not None:
            return "attachment", {"kind": "contact"}
        for kind in ("sticker", "voice", "video", "animation", "audio"):
            if getattr(message, kind, None) is not None:
                return "attachment", {"kind": kind}
        if message.video_note is not None:
            return "attachment", {"kind": "video"}
        return "attachment", {"kind": "other"}

    def _command(self, text: str) -> tuple[str, str] | None:
        """`/name args` or `/name@lontar_bot args`; a command for another bot is not ours."""
        if not text.startswith("/"):
            return None
        head, _, args = text[1:].partition(" ")
        name, _, bot = head.partition("@")
        if bot and bot.lower() != self.username.lower():
            return None
        return name.lower(), args.strip()

    async def _download(self, kind: str, file_id: str, unique_id: str, size: int | None,
                        mime: str, chat_id: int) -> dict[str, Any]:
        """Keep an attachment for complaints, within the size limit and accepted types."""
        limit = self.settings.attachment_max_bytes
        if mime not in ACCEPTED_TYPES:
            return {"kind": kind, "problem": "bad_type"}
        if size is not None and size > limit:
            return {"kind": kind, "problem": "too_large"}
        try:
            file = await self.bot.get_file(file_id)
            if file.file_size is not None and file.file_size > limit:
                return {"kind": kind, "problem": "too_large"}
            path = attachment_path(self.settings.data_dir, CHANNEL, str(chat_id), unique_id,
                                   mime)
            await file.download_to_drive(path)
        except BadRequest as exc:  # "file is too big" and friends
            log.info("attachment refused by Telegram: %s", exc)
            return {"kind": kind, "problem": "too_large"}
        except (TimedOut, NetworkError) as exc:
            raise RetryLater(str(exc)) from exc
        if path.stat().st_size > limit:
            path.unlink()
            return {"kind": kind, "problem": "too_large"}
        return {"kind": kind, "ref": str(path.relative_to(self.settings.data_dir))}

    async def _group(self, update: Update, message: Message) -> int | None:
        """In groups Lontar only answers commands addressed to it: go private."""
        text = message.text or ""
        head = text[1:].split(" ", 1)[0] if text.startswith("/") else ""
        if "@" not in head or head.split("@", 1)[1].lower() != self.username.lower():
            return None
        reply = Reply(self.content.msg("id", "group_private_only", bot=self.username))
        await self.inbox.notify(Inbound(
            channel=CHANNEL, external_id=str(message.chat.id),
            platform_id=str(update.update_id), kind="command", payload={"name": "group"},
            at=message.date), reply)
        return None

    async def _membership(self, update: Update) -> None:
        member = update.my_chat_member
        assert member is not None
        blocked = member.new_chat_member.status in (ChatMemberStatus.BANNED,
                                                    ChatMemberStatus.LEFT)
        await self.inbox.db.transaction(_set_blocked, str(member.chat.id), blocked,
                                        member.date)


class RetryLater(Exception):
    """A transient failure while storing an update: leave it unacknowledged."""


_CONTACT = select(contact_t.c.id).where(contact_t.c.channel == CHANNEL,
                                        contact_t.c.external_id == bindparam("ext"))


def _set_blocked(conn: Connection, external_id: str, blocked: bool, at: Any) -> None:
    """my_chat_member: the citizen blocked the bot (or left), or came back; a chat Lontar
    never talked to has nothing to change."""
    contact_id = conn.execute(_CONTACT, {"ext": external_id}).scalar()
    if contact_id is None:
        return
    if blocked:
        consent.blocked(conn, contact_id, at)
    else:
        consent.unblocked(conn, contact_id)
