"""WhatsApp Business Cloud API: a signed webhook on Lontar's server and an aiohttp client.

Behaves like Telegram: same engine, same content. The webhook checks the signature over the
raw body, stores every message (unique wamid), applies statuses and preference changes,
answers 200, and only then marks messages read, fetches media and runs the turns. One bad
item never fails a batch (Meta would redeliver the whole batch for days).

Outside the 24-hour customer-service window a message goes out as an approved template
(utility for notifications, marketing for outreach), its text as the one body parameter; with
no template configured the row becomes unsendable with the reason, for staff to see.

A broadcast's picture goes out inside the window only (bot/channels/whatsapp_pictures.py): uploaded
once per process and reused by media id. The template path stays text-only, because a template
with an image header is a different template Meta must approve first.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import Connection, bindparam, select, update

from bot.attachments import ACCEPTED_TYPES, attachment_path
from bot.channels.text import split_text
from bot.channels.whatsapp_client import RETRY_AFTER, RETRYABLE, GraphError, WhatsAppClient
from bot.channels.whatsapp_pictures import MEDIA_FAILED, Pictures, with_picture
from bot.config import Settings
from bot.db import Database
from bot.inbox import Inbound, Inbox
from bot.lanes import ChatLanes
from bot.logs import request_scope
from bot.models import PRIORITY_BROADCAST, contact_t, inbound_t, outbox_t
from bot.outbox import Delivered, Meta, Recipient, SendError, mark_contact, platform_call
from bot.services import broadcast_images as images
from bot.services import consent
from flows.content import Content
from flows.types import Lang, Reply

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
WINDOW = timedelta(hours=24) - timedelta(minutes=15)  # a margin: contact times are to the minute
IMAGE_MAX = 5 * 1024 * 1024  # Meta's own limit for images
NEEDS_TEMPLATE = 131047
UNREACHABLE = 131026
OPTED_OUT = 131050
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 3}
MEDIA_KINDS = {"image": "photo", "document": "document"}
OTHER_KINDS = {"location": "location", "contacts": "contact", "sticker": "sticker",
               "audio": "audio", "voice": "voice", "video": "video"}




# --- rendering -------------------------------------------------------------------------------


def render(reply: Reply, content: Content, lang: Lang) -> list[dict[str, Any]]:
    """Messages for one reply: up to 3 options as buttons, up to 10 as a list, more numbered."""
    parts = split_text(reply.text)
    out = [_text(p) for p in parts[:-1]]
    last, options = parts[-1], reply.options
    if not options:
        out.append(_text(last))
    elif len(options) <= 3:
        out.append({"type": "interactive", "interactive": {
            "type": "button", "body": {"text": last},
            "action": {"buttons": [{"type": "reply", "reply": {"id": o.id, "title": o.label}}
                                   for o in options]}}})
    elif len(options) <= 10:
        out.append({"type": "interactive", "interactive": {
            "type": "list", "body": {"text": last},
            "action": {"button": content.msg(lang, "wa_list_button"), "sections": [{
                "title": content.msg(lang, "wa_list_section"),
                "rows": [{"id": o.id, "title": o.label,
                          **({"description": o.description} if o.description else {})}
                         for o in options]}]}}})
    else:  # the engine understands a typed number
        numbered = "\n".join(f"{i}. {o.label}" for i, o in enumerate(options, 1))
        hint = content.msg(lang, "wa_numbered_hint")
        out += [_text(p) for p in split_text(f"{last}\n\n{numbered}\n\n{hint}")]
    if reply.venue is not None:
        v = reply.venue
        out.append({"type": "location", "location": {
            "latitude": v.latitude, "longitude": v.longitude, "name": v.title,
            "address": v.address}})
    return out


def _text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body, "preview_url": False}}


def template(name: str, language: str, text: str) -> dict[str, Any]:
    # a template parameter may hold no newline, tab, or more than 4 spaces in a row
    flat = re.sub(r" {4,}", "   ", re.sub(r"[\n\t]+", " · ", text)).strip()[:1024]
    return {"type": "template", "template": {
        "name": name, "language": {"code": language},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": flat}]}]}}


# --- sending ---------------------------------------------------------------------------------


class WhatsAppSender:
    """Sends outbox rows; decides free-form or template by the contact's window."""

    channel = CHANNEL

    def __init__(self, settings: Settings, client: WhatsAppClient, content: Content,
                 db: Database):
        self.settings = settings
        self.client = client
        self.content = content
        self.db = db
        self.tz = ZoneInfo(settings.timezone)
        # contacts the budget admitted today, kept until the day ends: a send overlapping a
        # slow Graph API call is not yet a sent row, and must not leave room for another
        self._initiated: tuple[date, set[int]] = (date.min, set())
        self._budget_lock = asyncio.Lock()
        self.pictures = Pictures(client, images.folder(settings.data_dir))

    async def send(self, contact: Recipient, reply: Reply, meta: Meta) -> Delivered:
        lang: Lang = "en" if contact.language == "en" else "id"
        last = contact.last_inbound_at
        open_window = last is not None and datetime.now(UTC) - last < WINDOW
        if open_window and not meta.force_template:
            try:
                return Delivered(await self._free_form(contact.external_id, reply, meta, lang))
            except GraphError as exc:
                if exc.code != NEEDS_TEMPLATE:
                    raise self._error(exc) from exc
        return await self._send_template(contact, reply, meta)

    async def _free_form(self, to: str, reply: Reply, meta: Meta, lang: Lang) -> str:
        """The rendered reply, with the broadcast's picture if it has one.

        The picture rides on the first message, so a media error comes before anything else
        went out: then the id is re-uploaded and the whole reply sent once more, and if Meta
        refuses the fresh one too, the text goes alone.
        """
        messages = render(reply, self.content, lang)
        if not meta.image:
            return await self._send_all(to, messages)
        stale: str | None = None
        for _ in range(2):
            media_id = await self.pictures.get(meta.image, stale)
            if media_id is None:
                break
            try:
                return await self._send_all(to, with_picture(messages, media_id))
            except GraphError as exc:
                if not await self.pictures.gone(exc, media_id):
                    raise
                log.info("WhatsApp refused the media id of picture %r (%s)", meta.image, exc)
                stale = media_id
        else:
            self.pictures.drop(meta.image, "Meta refused a fresh upload too")
        return await self._send_all(to, messages)

    async def _send_all(self, to: str, messages: list[dict[str, Any]]) -> str:
        wamid = ""
        for message in messages:
            wamid = await self.client.send(to, message)
        return wamid

    async def _send_template(self, contact: Recipient, reply: Reply, meta: Meta) -> Delivered:
        marketing = meta.category == "marketing" or (
            meta.category is None and meta.priority >= PRIORITY_BROADCAST)
        name = (self.settings.whatsapp_template_marketing if marketing
                else self.settings.whatsapp_template_utility)
        kind = "marketing" if marketing else "utility"
        if not name:
            raise SendError("no template", retryable=False, unsendable=(
                f"outside WhatsApp's 24-hour window and no {kind} template is configured "
                f"(WHATSAPP_TEMPLATE_{kind.upper()})"))
        contact_id = contact.id or 0
        async with self._budget_lock:  # check and reserve as one step
            today = datetime.now(self.tz).date()
            if self._initiated[0] != today:
                self._initiated = (today, set())
            admitted = self._initiated[1]
            fresh = contact_id not in admitted
            if not await self.db.transaction(_budget_left, contact_id, self.settings, self.tz,
                                             admitted):
                tomorrow = (datetime.now(self.tz) + timedelta(days=1)).replace(
                    hour=7, minute=0, second=0, microsecond=0)
                raise SendError("daily budget spent", retryable=True,
                                defer_until=tomorrow.astimezone(UTC))
            admitted.add(contact_id)
        try:
            wamid = await self.client.send(contact.external_id, template(
                name, self.settings.whatsapp_template_language, reply.text))
        except GraphError as exc:
            if fresh:  # not sent: it takes no room in today's budget
                admitted.discard(contact_id)
            raise self._error(exc) from exc
        return Delivered(wamid, template=name)

    def _error(self, exc: GraphError) -> SendError:
        if exc.retryable:
            wait = (self.settings.whatsapp_pair_seconds if exc.code == 131056
                    else RETRY_AFTER.get(exc.code))
            return SendError(str(exc), retryable=True, retry_after=wait)
        if exc.code == 190:  # tried again with backoff: replies survive until staff fix it
            log.error("WhatsApp rejected the access token (190): replace WHATSAPP_ACCESS_TOKEN")
            return SendError(str(exc), retryable=True)
        return SendError(str(exc), retryable=False, blocked=exc.code == UNREACHABLE,
                         opted_out=exc.code == OPTED_OUT)


def _budget_left(conn: Connection, contact_id: int, settings: Settings, tz: ZoneInfo,
                 admitted: set[int]) -> bool:
    """Business-initiated conversations today (office time), recorded or `admitted` (sends
    still in flight), are within the budget."""
    start = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = set(conn.execute(
        select(outbox_t.c.contact_id).distinct()
        .where(outbox_t.c.channel == CHANNEL, outbox_t.c.template.is_not(None),
               outbox_t.c.sent_at >= start.astimezone(UTC))
    ).scalars()) | admitted
    return contact_id in rows or len(rows) < settings.whatsapp_daily_initiated


# --- receiving -------------------------------------------------------------------------------


class WhatsAppChannel:
    def __init__(self, settings: Settings, inbox: Inbox, content: Content):
        self.settings = settings
        self.inbox = inbox
        self.content = content
        self.client = WhatsAppClient(settings, before_send=platform_call)
        self.sender = WhatsAppSender(settings, self.client, content, inbox.db)
        # stored messages wait in their chat's lane for their turn; a crash leaves them
        # stored, and the leader processes them (Inbox.process_pending, the sweep job)
        self.lanes = ChatLanes("whatsapp")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/webhooks/whatsapp", self.verify)
        app.router.add_post("/webhooks/whatsapp", self.webhook)

    async def stop(self) -> None:
        """Let turns under way finish (briefly); what is left stays stored for the leader."""
        await self.lanes.close()
        await self.client.close()

    async def verify(self, request: web.Request) -> web.Response:
        q = request.query
        token = q.get("hub.verify_token", "")
        if q.get("hub.mode") != "subscribe" or not hmac.compare_digest(
                token.encode(), self.settings.whatsapp_verify_token.encode()):
            return web.Response(status=403, text="forbidden")
        return web.Response(text=q.get("hub.challenge", ""))

    async def webhook(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > self.settings.whatsapp_max_body:
            return web.json_response({"error": "too large"}, status=413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "too large"}, status=413)
        given = request.headers.get("X-Hub-Signature-256")
        if not given:
            return web.json_response({"error": "signature missing"}, status=401)
        digest = hmac.new(self.settings.whatsapp_app_secret.encode(), body,
                          hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.encode(), f"sha256={digest}".encode()):
            return web.json_response({"error": "bad signature"}, status=403)
        try:
            data = json.loads(body)
        except ValueError:
            return web.json_response({"error": "bad json"}, status=400)
        stored: list[tuple[int, str, str, dict[str, Any]]] = []
        for value, field in _changes(data):
            try:
                if field == "messages":
                    stored += await self._messages(value)
                    for status in _items(value, "statuses"):
                        stale = await self._apply(_apply_status, status)
                        if stale is not None:  # reaches this process's sender only: the
                            self.sender.pictures.forget(*stale)  # 2nd failure drops the picture
                elif field == "user_preferences":
                    for pref in _items(value, "user_preferences"):
                        await self._apply(_preference, pref)
                else:
                    log.info("WhatsApp change %r ignored", field)
            except Exception:  # one bad item must not fail the batch
                log.exception("WhatsApp webhook item skipped")
        for item in stored:  # after the 200: media, the turn, read; in order per chat
            self.lanes.submit(item[1], partial(self._after, *item))
        return web.json_response({"ok": True})

    async def _apply(self, apply: Any, item: dict[str, Any]) -> Any:
        """A status or a preference change; a malformed one is skipped with a warning."""
        try:
            return await self.inbox.db.transaction(apply, item)
        except MALFORMED as exc:
            log.warning("malformed WhatsApp %s skipped: %s", apply.__name__.strip("_"),
                        type(exc).__name__)
            return None

    async def _messages(self, value: dict[str, Any]) -> list[tuple[int, str, str, dict[str, Any]]]:
        names = {c["wa_id"]: _name(c) for c in _items(value, "contacts")
                 if isinstance(c.get("wa_id"), str)}
        out = []
        for msg in _items(value, "messages"):
            try:
                parsed = parse_message(msg)
            except MALFORMED as exc:
                log.warning("malformed WhatsApp message skipped: %s", type(exc).__name__)
                continue
            kind, payload, at = parsed
            received = await self.inbox.receive(Inbound(
                channel=CHANNEL, external_id=str(msg["from"]), platform_id=str(msg["id"]),
                kind=kind, payload=payload, at=at,  # type: ignore[arg-type]
                display_name=names.get(msg["from"])))
            if received.new:
                out.append((received.inbound_id, str(msg["from"]), str(msg["id"]), payload))
        return out

    async def _after(self, inbound_id: int, wa_id: str, wamid: str,
                     payload: dict[str, Any]) -> None:
        """Fetch media, run the turn, mark read; a failure leaves it stored for the leader.

        Read receipts come after the turn: the reply should not wait for a platform call.
        """
        with request_scope(f"in-{inbound_id}"):
            try:
                if "media_id" in payload:
                    result = await self._download(payload)
                    await self.inbox.db.transaction(_set_payload, inbound_id,
                                                    {**payload, **result})
                await self.inbox.process(inbound_id, (CHANNEL, wa_id))
            except Exception:
                log.exception("WhatsApp message %s not processed; it stays stored",
                              inbound_id)
            try:
                await self.client.mark_read(wamid)
            except (GraphError, aiohttp.ClientError, TimeoutError) as exc:
                log.info("mark read failed: %s", exc)

    async def _download(self, payload: dict[str, Any]) -> dict[str, Any]:
        mime = str(payload.get("mime", "")).split(";")[0].strip()
        if mime not in ACCEPTED_TYPES:
            return {"problem": "bad_type"}
        limit = IMAGE_MAX if payload["kind"] == "photo" else self.settings.attachment_max_bytes
        try:
            info = await self.client.media_info(str(payload["media_id"]))
            if int(info.get("file_size") or 0) > limit:
                return {"problem": "too_large"}
            path = attachment_path(self.settings.data_dir, CHANNEL,
                                   str(payload.get("from", "")), str(payload["media_id"]), mime)
            if await self.client.download(str(info["url"]), path, limit) < 0:
                return {"problem": "too_large"}
        # ValueError, TypeError: a media answer with a size or URL that is not one
        except (GraphError, aiohttp.ClientError, TimeoutError, KeyError, ValueError,
                TypeError) as exc:
            log.warning("WhatsApp media not fetched: %s", exc)
            return {}
        return {"ref": str(path.relative_to(self.settings.data_dir))}


def _changes(data: Any) -> list[tuple[dict[str, Any], str]]:
    out = []
    entries = data.get("entry") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, dict) and isinstance(change.get("value"), dict):
                out.append((change["value"], str(change.get("field", ""))))
    return out


# what a malformed item raises while it is read (a field missing, of the wrong type, a time
# out of range); anything else is Lontar's fault and logged as an error
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError)
ID_MAX = 128  # inbound_message.platform_id and contact.external_id


def _items(value: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The objects of a list field (Meta sends lists of objects; anything else is noise)."""
    items = value.get(key)
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _name(contact: dict[str, Any]) -> str | None:
    name = contact.get("profile", {}).get("name") if isinstance(contact.get("profile"),
                                                                dict) else None
    # contact.display_name: at most 256 characters, and no NUL (PostgreSQL refuses it)
    return name.replace("\x00", "")[:256] if isinstance(name, str) else None


def parse_message(msg: dict[str, Any]) -> tuple[str, dict[str, Any], datetime]:
    """One webhook message item -> (kind, payload, time). Raises one of `MALFORMED`."""
    kind_name, wamid, sender = msg["type"], msg["id"], msg["from"]
    if not (isinstance(wamid, str) and isinstance(sender, str)
            and 0 < len(wamid) <= ID_MAX and 0 < len(sender) <= ID_MAX
            and wamid.isprintable() and sender.isprintable()):  # no NUL for PostgreSQL
        raise ValueError("message id or sender missing or malformed")
    at = datetime.fromtimestamp(int(msg["timestamp"]), UTC)
    if kind_name == "text":
        return "text", {"text": str(msg["text"]["body"])}, at
    if kind_name == "interactive":
        inter = msg["interactive"]
        picked = inter.get("button_reply") or inter.get("list_reply")
        return "choice", {"payload": str(picked["id"])}, at
    if kind_name == "button":  # a template's quick reply
        payload = str(msg["button"].get("payload", ""))
        if payload.startswith("go:"):
            return "choice", {"payload": payload}, at
        return "text", {"text": str(msg["button"].get("text", ""))}, at
    if kind_name in MEDIA_KINDS:
        media = msg[kind_name]
        return "attachment", {"kind": MEDIA_KINDS[kind_name], "media_id": str(media["id"]),
                              "mime": str(media.get("mime_type", "")), "from": msg["from"]}, at
    return "attachment", {"kind": OTHER_KINDS.get(kind_name, "other")}, at


_FIND_SENT = select(outbox_t.c.id, outbox_t.c.delivery, outbox_t.c.status,
                    outbox_t.c.contact_id, outbox_t.c.payload, outbox_t.c.attempts,
                    outbox_t.c.sent_at).where(
    outbox_t.c.channel == CHANNEL, outbox_t.c.platform_message_id == bindparam("wamid"))


def _apply_status(conn: Connection,
                  status: dict[str, Any]) -> tuple[str, datetime | None] | None:
    """Keep the highest status seen; a failure is handled like a failed send.

    Returns (picture, sent at) when Meta failed a message over its picture, so the sender
    can drop the media id it used.
    """
    row = conn.execute(_FIND_SENT, {"wamid": str(status["id"])}).first()
    if row is None:
        return None
    name = str(status.get("status", ""))
    if name in STATUS_RANK:
        if STATUS_RANK[name] > STATUS_RANK.get(row.delivery or "", 0):
            conn.execute(update(outbox_t).where(outbox_t.c.id == row.id)
                         .values(delivery=name))
        return None
    if name != "failed" or row.delivery == "failed":
        return None
    errors = status.get("errors") or [{}]
    code = int(errors[0].get("code", 0) or 0)
    values: dict[str, Any] = {"delivery": "failed", "last_error": f"#{code} "
                              f"{errors[0].get('title', '')}"[:1000]}
    now = datetime.now(UTC)
    picture = row.payload.get("image")
    stale: tuple[str, datetime | None] | None = None
    if code == NEEDS_TEMPLATE:  # the window was closed: try again as a template
        values.update(status="pending", next_attempt_at=now, delivery=None,
                      payload={**row.payload, "force_template": True})
    elif code == MEDIA_FAILED and picture:
        # Meta accepted the message, then could not use its picture (an expired id, most
        # likely): once more with a fresh upload, and if that fails too, the text alone
        again = bool(row.payload.get("picture_retried"))
        if again:
            log.warning("broadcast picture %r failed twice at WhatsApp; sending the text alone",
                        picture)
        values.update(status="pending", next_attempt_at=now, delivery=None, payload={
            **row.payload, "picture_retried": True, **({"image": None} if again else {})})
        stale = (str(picture), row.sent_at)
    elif code in RETRYABLE and row.attempts < 8:
        values.update(status="pending", delivery=None,
                      next_attempt_at=now + timedelta(seconds=2 ** row.attempts))
    else:
        values["status"] = "failed"
        if code in (UNREACHABLE, OPTED_OUT):  # a reason the broadcast report counts
            values["unsendable_reason"] = "blocked" if code == UNREACHABLE else "opted_out"
        mark_contact(conn, row.contact_id, blocked=code == UNREACHABLE,
                     opted_out=code == OPTED_OUT)
    conn.execute(update(outbox_t).where(outbox_t.c.id == row.id).values(**values))
    return stale


def _preference(conn: Connection, pref: dict[str, Any]) -> None:
    """The marketing stop/resume button in WhatsApp: opt out or back in (as of Meta's
    timestamp when it sends one)."""
    value = pref.get("value")
    if pref.get("category") != "marketing_messages" or value not in ("stop", "resume"):
        return
    contact_id = conn.execute(select(contact_t.c.id).where(
        contact_t.c.channel == CHANNEL,
        contact_t.c.external_id == str(pref["wa_id"]))).scalar()
    if contact_id is None:  # a number Lontar never talked to: nothing to change
        return
    stamp = str(pref.get("timestamp") or "")
    at = datetime.fromtimestamp(int(stamp), UTC) if stamp.isdigit() else datetime.now(UTC)
    if value == "stop":
        consent.opt_out(conn, contact_id, at)
    else:
        consent.opt_in(conn, contact_id, at)


def _set_payload(conn: Connection, inbound_id: int, payload: dict[str, Any]) -> None:
    conn.execute(update(inbound_t).where(inbound_t.c.id == inbound_id)
                 .values(payload=payload))
