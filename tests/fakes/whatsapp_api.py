"""A fake WhatsApp Cloud API (Graph API) server on loopback, plus webhook payload builders.

    fake = FakeWhatsApp()                  # token "TEST-TOKEN", phone number id "1234567890"
    base = await fake.start()              # "http://127.0.0.1:PORT/v23.0"
    # the adapter: WHATSAPP_API_BASE_URL=base, POST {base}/{phone_number_id}/messages
    env = fake.text_message("6281234567890", "halo")   # opens that user's 24-h window
    status, text = await fake.deliver(webhook_url, env)  # signed like Meta signs it
    ...
    await fake.stop()

What it imitates (platforms.md §3):
- Every request needs ``Authorization: Bearer <token>``; errors use the Graph body
  ``{"error": {"message", "type", "code", "error_subcode"?, "error_data", "fbtrace_id"}}``.
- ``POST /{version}/{phone_number_id}/messages``: sends (validated like Meta, 400 with code 100
  or 131009 and ``error_data.details`` naming the field) and mark-as-read.
- A 200 only means "accepted". A free-form message to a user whose 24-h window is closed is
  accepted and then fails later: a ``failed`` status webhook with 131047 is queued
  (``fake.pending_statuses``; deliver with ``fake.flush_statuses(url)``).
- ``GET /{version}/{media_id}`` gives a short-lived download url; ``GET /media-download/{id}``
  needs the Bearer header too.
- ``POST /{version}/{phone_number_id}/media`` (multipart ``file``, ``type``,
  ``messaging_product``) stores an upload for 30 days on the fake clock and answers ``{"id"}``:
  a missing field is 400 code 100, a type Meta does not take is 100, a file over its type's
  limit (image 5 MB) or not what its type says is 131053. ``expire_media`` ends one early.
- A send naming a media id the fake does not hold (never uploaded, deleted, expired) is
  accepted and then fails with a queued 131053 status, as Meta's partners describe it for media
  problems; ``fake.unknown_media = "reject"`` answers 400 131053 at once instead.
- Webhook bodies are serialised the way Meta does it: compact, non-ASCII as ``\\uXXXX`` and
  ``/`` as ``\\/``. So an adapter that re-serialises the JSON before checking
  ``X-Hub-Signature-256`` fails, as it would in production.

Error texts are plausible stand-ins modelled on Meta's. Branch on ``error.code``, never on text.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import random
import re
import string
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.loopback import LoopbackServer, SlidingWindow

TOKEN = "TEST-TOKEN"
PHONE_NUMBER_ID = "1234567890"
APP_SECRET = "app-secret"
VERSION = "v23.0"
WABA_ID = "102938475610293"
DISPLAY_PHONE_NUMBER = "62380800100"
WINDOW_SECONDS = 24 * 3600
ERROR_HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

MAX_TEXT = 4096
MAX_BODY = 1024
MAX_HEADER = 60
MAX_FOOTER = 60
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_LIST_BUTTON = 20
MAX_SECTIONS = 10
MAX_ROWS = 10
MAX_ROW_ID = 200
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_SECTION_TITLE = 24
MAX_CAPTION = 1024
MAX_OPAQUE = 512
MEDIA_TTL_SECONDS = 30 * 24 * 3600  # an uploaded media id lasts 30 days
_MB = 1024 * 1024
# what POST /media takes, and how big (Meta's table: image 5 MB, sticker 500 KB, audio and
# video 16 MB, document 100 MB)
UPLOAD_LIMITS: dict[str, int] = {
    "image/jpeg": 5 * _MB, "image/png": 5 * _MB, "image/webp": 500 * 1024,
    "audio/aac": 16 * _MB, "audio/mp4": 16 * _MB, "audio/mpeg": 16 * _MB,
    "audio/amr": 16 * _MB, "audio/ogg": 16 * _MB, "video/mp4": 16 * _MB,
    "video/3gpp": 16 * _MB, "text/plain": 100 * _MB, "application/pdf": 100 * _MB,
    "application/msword": 100 * _MB, "application/vnd.ms-excel": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": 100 * _MB,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": 100 * _MB,
}

# code -> (title, default details). Titles follow Meta's error-code table; details are stand-ins.
ERRORS: dict[int, tuple[str, str]] = {
    1: ("An unknown error occurred", "An unknown error occurred."),
    2: ("Service temporarily unavailable", "Service temporarily unavailable."),
    4: ("Application request limit reached", "Too many API calls from this app."),
    100: ("Invalid parameter", "Invalid parameter."),
    190: (
        "Error validating access token: The access token is invalid or has expired.",
        "Error validating access token.",
    ),
    368: ("Temporarily blocked for policies violations", "Temporarily blocked."),
    80007: ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131000: ("Something went wrong", "Message failed to send because of an unknown error."),
    131005: ("Access denied", "Permission is either not granted or has been removed."),
    131008: ("Required parameter is missing", "A required parameter is missing."),
    131009: ("Parameter value is not valid", "A parameter value is not valid."),
    131016: ("Service unavailable", "A service is temporarily unavailable."),
    131026: (
        "Message undeliverable",
        "Unable to deliver message. The recipient may not be a WhatsApp user, may not have "
        "accepted the latest terms, or may use an old WhatsApp version.",
    ),
    131030: ("Recipient phone number not in allowed list", "Add the number to the allow list."),
    131031: ("Account has been locked", "The business account is restricted or disabled."),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    131048: ("Spam rate limit hit", "Message failed to send because of quality restrictions."),
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "Marketing per-user limit; do not resend within 24 hours.",
    ),
    131050: (
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing "
        "messages on WhatsApp from your business.",
        "The user stopped marketing messages.",
    ),
    131051: ("Unsupported message type", "Message type is currently not supported."),
    131052: ("Media download error", "Unable to download the media sent by the user."),
    131053: ("Media upload error", "Unable to upload the media used in the message."),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from this phone number to the same phone number.",
    ),
    131057: ("Account in maintenance mode", "The business account is in maintenance mode."),
    131064: ("Messaging limit reached", "Business-initiated messaging limit reached."),
    132000: (
        "Number of parameters does not match the expected number of params",
        "The number of variable parameter values does not match the template.",
    ),
    132001: (
        "Template name does not exist in the translation",
        "The template does not exist in the specified language.",
    ),
    132007: ("Template Format Character Policy Violated", "Template content policy."),
    132015: ("Template is Paused", "The template is paused because of low quality."),
    132016: ("Template is Disabled", "The template has been disabled."),
}

PARAM_WHITESPACE = (
    "Param text cannot have new-line/tab characters or more than 4 consecutive spaces"
)
_BAD_PARAM_TEXT = re.compile(r"[\n\t]| {5,}")
_KNOWN_SEND_TYPES = frozenset(
    {"text", "interactive", "template", "location", "image", "document",
     "audio", "video", "sticker", "reaction", "contacts"}
)
_DELIVERABLE = ("sent", "delivered", "read")


# ---------------------------------------------------------------------------------------------
# records


@dataclass
class ApiRequest:
    """One request the fake answered."""

    method: str  # HTTP method
    path: str  # e.g. "/v23.0/1234567890/messages" (query string not included)
    status: int  # HTTP status answered
    at: float  # time.monotonic() on arrival
    json: Any = None  # the decoded JSON body, None when there was none (or it was not JSON)
    kind: str = "unknown"  # "send" | "read" | "media" | "upload" | "download" | "unknown"


@dataclass
class Sent:
    """One accepted send (HTTP 200 with a wamid)."""

    wamid: str
    to: str  # the wa_id (digits of the request's "to")
    type: str
    body: dict[str, Any]  # the whole request JSON
    at: float  # time.monotonic()
    failed_code: int | None = None  # set when a failed status was queued for this wamid

    @property
    def payload(self) -> dict[str, Any]:
        """The object under the type's key, e.g. ``body["interactive"]``."""
        value = self.body.get(self.type)
        return value if isinstance(value, dict) else {}

    @property
    def text(self) -> str:
        """Text body, interactive body text, media caption or template name ("" if none)."""
        p = self.payload
        if self.type == "text":
            return str(p.get("body", ""))
        if self.type == "interactive":
            return str((p.get("body") or {}).get("text", ""))
        if self.type == "template":
            return str(p.get("name", ""))
        return str(p.get("caption", ""))

    @property
    def interactive_type(self) -> str | None:
        return self.payload.get("type") if self.type == "interactive" else None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(id, title) of reply buttons, or of list rows in order; [] otherwise."""
        action = self.payload.get("action") or {}
        if self.interactive_type == "button":
            return [(b["reply"]["id"], b["reply"]["title"]) for b in action.get("buttons", [])]
        if self.interactive_type == "list":
            return [
                (r["id"], r["title"])
                for s in action.get("sections", [])
                for r in s.get("rows", [])
            ]
        return []

    @property
    def context_wamid(self) -> str | None:
        ctx = self.body.get("context")
        return ctx.get("message_id") if isinstance(ctx, dict) else None


@dataclass
class Media:
    id: str
    mime_type: str
    content: bytes
    sha256: str  # hex digest, as GET /{media_id} reports it
    filename: str | None = None
    expires_at: float | None = None  # fake-clock epoch seconds; None: never (user media)

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256_b64(self) -> str:
        """The digest as webhooks carry it (base64)."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()


@dataclass
class Template:
    name: str
    language: str
    body_params: int = 0
    category: str = "UTILITY"  # "UTILITY" | "MARKETING" | "AUTHENTICATION"


@dataclass
class Delivery:
    """One webhook POST made by ``deliver``/``flush_statuses``."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: int
    text: str
    at: float


class GraphError(Exception):
    def __init__(
        self,
        status: int,
        code: int,
        message: str | None = None,
        details: str | None = None,
        subcode: int | None = None,
    ):
        title, default_details = ERRORS.get(code, ("Unknown error", "Unknown error."))
        text = message or title
        if code != 190 and not text.startswith("("):
            text = f"(#{code}) {text}"
        super().__init__(text)
        self.status = status
        self.code = code
        self.message = text
        self.details = details or default_details
        self.subcode = subcode

    def body(self, fbtrace_id: str) -> dict[str, Any]:
        err: dict[str, Any] = {
            "message": self.message, "type": "OAuthException", "code": self.code
        }
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        err["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        err["fbtrace_id"] = fbtrace_id
        return {"error": err}


def invalid(details: str) -> GraphError:
    """400, code 100 "Invalid parameter"."""
    return GraphError(400, 100, details=details)


def not_valid(details: str) -> GraphError:
    """400, code 131009 "Parameter value is not valid"."""
    return GraphError(400, 131009, details=details)


# ---------------------------------------------------------------------------------------------
# module-level helpers


def sign(body: bytes, secret: str) -> str:
    """``X-Hub-Signature-256`` value: "sha256=" + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def meta_json(payload: Any) -> bytes:
    """Serialise like Meta: compact, ASCII-only (\\uXXXX escapes), and "/" written as "\\/"."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    return text.replace("/", "\\/").encode()


def _envelope(
    field_name: str, value: dict[str, Any], *, waba_id: str = WABA_ID, time_: int | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": waba_id}
    if time_ is not None:
        entry["time"] = time_
    entry["changes"] = [{"value": value, "field": field_name}]
    return {"object": "whatsapp_business_account", "entry": [entry]}


def _metadata(phone_number_id: str, display: str = DISPLAY_PHONE_NUMBER) -> dict[str, str]:
    return {"display_phone_number": display, "phone_number_id": phone_number_id}


def batch(*envelopes: dict[str, Any], mode: str = "entries") -> dict[str, Any]:
    """Merge envelopes into one POST body (inputs are not modified).

    mode "entries": one entry per input entry. "changes": a single entry (the first one's id)
    holding every change. "messages": a single ``messages`` change whose value concatenates
    the ``messages``/``statuses`` of all inputs (contacts merged by wa_id).
    """
    if not envelopes:
        raise ValueError("batch() needs at least one envelope")
    entries = [copy.deepcopy(e) for env in envelopes for e in env["entry"]]
    if mode == "entries":
        return {"object": "whatsapp_business_account", "entry": entries}
    changes = [c for e in entries for c in e["changes"]]
    if mode == "changes":
        first = {k: v for k, v in entries[0].items() if k != "changes"}
        return {"object": "whatsapp_business_account", "entry": [{**first, "changes": changes}]}
    if mode != "messages":
        raise ValueError(f"unknown batch mode {mode!r}")
    if any(c["field"] != "messages" for c in changes):
        raise ValueError('mode="messages" needs only "messages" changes')
    value = {k: v for k, v in changes[0]["value"].items()
             if k not in ("contacts", "messages", "statuses")}
    contacts: dict[str, dict[str, Any]] = {}
    for key in ("messages", "statuses"):
        items = [i for c in changes for i in c["value"].get(key, [])]
        if items:
            value[key] = items
    for c in changes:
        for contact in c["value"].get("contacts", []):
            contacts.setdefault(contact["wa_id"], contact)
    if contacts:
        value["contacts"] = list(contacts.values())
    ordered = {"messaging_product": "whatsapp", **value}
    return _envelope("messages", ordered, waba_id=entries[0]["id"])


def malformed_message(
    wa_id: str,
    *,
    missing: str = "type",
    phone_number_id: str = PHONE_NUMBER_ID,
    name: str = "Warga",
) -> dict[str, Any]:
    """A text message envelope whose message item lacks ``missing`` ("type", "id" or "from")."""
    if missing not in ("type", "id", "from"):
        raise ValueError("missing must be 'type', 'id' or 'from'")
    msg: dict[str, Any] = {
        "from": wa_id,
        "id": _wamid(wa_id, outbound=False, rng=random.Random()),
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": "pesan rusak"},
    }
    del msg[missing]
    value = {
        "messaging_product": "whatsapp",
        "metadata": _metadata(phone_number_id),
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [msg],
    }
    return _envelope("messages", value)


def _wamid(wa_id: str, *, outbound: bool, rng: random.Random) -> str:
    """A "wamid.HBg…" id shaped like Meta's: base64 of a small binary record with the number."""
    digits = wa_id.encode()[:40]
    tag = b"\x11" if outbound else b"\x12"
    token = "".join(rng.choices("0123456789ABCDEF", k=20)).encode()
    raw = b"\x1c\x18" + bytes([len(digits)]) + digits + b"\x15\x02\x00" + tag + b"\x18\x14"
    return "wamid." + base64.b64encode(raw + token + b"\x00").decode()


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


_MAGIC = {
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/webp": b"RIFF\x00\x00\x00\x00WEBP",
    "application/pdf": b"%PDF-1.4\n",
}


def _fake_bytes(seed: str, size: int, mime_type: str) -> bytes:
    block = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(16))
    data = _MAGIC.get(mime_type, b"") + block * (size // len(block) + 1)
    return data[:size]


# ---------------------------------------------------------------------------------------------
# validation of sends


def _path(*keys: str | int) -> str:
    head, *rest = keys
    return str(head) + "".join(f"[{k}]" if isinstance(k, int) else f"['{k}']" for k in rest)


def _obj(parent: dict[str, Any], *keys: str | int, required: bool = True) -> dict[str, Any]:
    value = parent.get(str(keys[-1])) if isinstance(parent, dict) else None
    if value is None:
        if required:
            raise invalid(f"Param {_path(*keys)} is required")
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Param {_path(*keys)} must be a JSON object")
    return value


def _str(
    parent: dict[str, Any],
    *keys: str | int,
    hi: int | None = None,
    lo: int = 1,
    required: bool = True,
    code: int = 131009,
) -> str | None:
    value = parent.get(str(keys[-1]))
    name = _path(*keys)
    if value is None:
        if required:
            raise invalid(f"Param {name} is required")
        return None
    if not isinstance(value, str):
        raise invalid(f"Param {name} must be a string")
    if len(value) < lo or (hi is not None and len(value) > hi):
        details = (
            f"Param {name} length invalid. Min length: {lo}, Max length: {hi} "
            f"(got {len(value)})"
        )
        raise GraphError(400, code, details=details)
    return value


def _list(parent: dict[str, Any], *keys: str | int, lo: int, hi: int) -> list[Any]:
    value = parent.get(str(keys[-1]))
    name = _path(*keys)
    if value is None:
        raise invalid(f"Param {name} is required")
    if not isinstance(value, list):
        raise invalid(f"Param {name} must be an array")
    if not lo <= len(value) <= hi:
        raise not_valid(
            f"Param {name} must have between {lo} and {hi} items (got {len(value)})"
        )
    return value


def _number(parent: dict[str, Any], *keys: str, lo: float, hi: float) -> None:
    value = parent.get(str(keys[-1]))
    name = _path(*keys)
    if value is None:
        raise invalid(f"Param {name} is required")
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise invalid(f"Param {name} must be a number") from None
    if isinstance(value, bool) or not lo <= num <= hi:
        raise invalid(f"Param {name} must be a number between {lo} and {hi}")


def _check_header_footer(inter: dict[str, Any], *, text_only: bool) -> None:
    header = _obj(inter, "interactive", "header", required=False)
    if header:
        htype = header.get("type")
        allowed = ("text",) if text_only else ("text", "image", "video", "document")
        if htype not in allowed:
            raise invalid(f"Param interactive['header']['type'] must be one of {list(allowed)}")
        if htype == "text":
            _str(header, "interactive", "header", "text", hi=MAX_HEADER)
        else:
            media = _obj(header, "interactive", "header", str(htype))
            if not media.get("id") and not media.get("link"):
                raise invalid(f"Param interactive['header']['{htype}'] needs 'id' or 'link'")
    footer = _obj(inter, "interactive", "footer", required=False)
    if footer:
        _str(footer, "interactive", "footer", "text", hi=MAX_FOOTER)


def _check_unique(values: Iterable[tuple[str, str]], what: str) -> None:
    seen: set[str] = set()
    for path, value in values:
        if value in seen:
            raise not_valid(f"Param {path} must be unique: duplicate {what} {value!r}")
        seen.add(value)


def _check_interactive(inter: dict[str, Any]) -> None:
    itype = inter.get("type")
    if itype not in ("button", "list", "cta_url"):
        raise invalid("Param interactive['type'] must be one of ['button', 'list', 'cta_url']")
    body = _obj(inter, "interactive", "body")
    _str(body, "interactive", "body", "text", hi=MAX_BODY)
    _check_header_footer(inter, text_only=itype == "list")
    action = _obj(inter, "interactive", "action")
    if itype == "button":
        buttons = _list(action, "interactive", "action", "buttons", lo=1, hi=MAX_BUTTONS)
        ids: list[tuple[str, str]] = []
        titles: list[tuple[str, str]] = []
        for i, b in enumerate(buttons):
            where = ("interactive", "action", "buttons", i)
            if not isinstance(b, dict):
                raise invalid(f"Param {_path(*where)} must be a JSON object")
            if b.get("type") != "reply":
                raise invalid(f"Param {_path(*where, 'type')} must be 'reply'")
            reply = _obj(b, *where, "reply")
            bid = _str(reply, *where, "reply", "id", hi=MAX_BUTTON_ID)
            title = _str(reply, *where, "reply", "title", hi=MAX_BUTTON_TITLE)
            ids.append((_path(*where, "reply", "id"), str(bid)))
            titles.append((_path(*where, "reply", "title"), str(title)))
        _check_unique(ids, "button id")
        _check_unique(titles, "button title")
    elif itype == "list":
        _str(action, "interactive", "action", "button", hi=MAX_LIST_BUTTON)
        sections = _list(action, "interactive", "action", "sections", lo=1, hi=MAX_SECTIONS)
        total = 0
        row_ids: list[tuple[str, str]] = []
        for si, sec in enumerate(sections):
            where = ("interactive", "action", "sections", si)
            if not isinstance(sec, dict):
                raise invalid(f"Param {_path(*where)} must be a JSON object")
            _str(sec, *where, "title", hi=MAX_SECTION_TITLE, required=len(sections) > 1)
            rows = _list(sec, *where, "rows", lo=1, hi=MAX_ROWS)
            total += len(rows)
            for ri, row in enumerate(rows):
                rw = (*where, "rows", ri)
                if not isinstance(row, dict):
                    raise invalid(f"Param {_path(*rw)} must be a JSON object")
                rid = _str(row, *rw, "id", hi=MAX_ROW_ID)
                _str(row, *rw, "title", hi=MAX_ROW_TITLE)
                _str(row, *rw, "description", hi=MAX_ROW_DESCRIPTION, lo=0, required=False)
                row_ids.append((_path(*rw, "id"), str(rid)))
        if total > MAX_ROWS:
            raise not_valid(
                "Param interactive['action']['sections'] total row count exceeds max allowed "
                f"count: {MAX_ROWS} (got {total})"
            )
        _check_unique(row_ids, "row id")
    else:  # cta_url
        if action.get("name") != "cta_url":
            raise invalid("Param interactive['action']['name'] must be 'cta_url'")
        params = _obj(action, "interactive", "action", "parameters")
        _str(params, "interactive", "action", "parameters", "display_text", hi=MAX_BUTTON_TITLE)
        _str(params, "interactive", "action", "parameters", "url", hi=2000)


def _check_template(tpl: dict[str, Any]) -> tuple[str, str, int | None]:
    """Returns (name, language code, number of body parameters or None without a body)."""
    name = _str(tpl, "template", "name", hi=512, code=100)
    lang = _obj(tpl, "template", "language")
    code = _str(lang, "template", "language", "code", hi=15, code=100)
    comps = tpl.get("components")
    body_params: int | None = None
    if comps is None:
        return str(name), str(code), None
    if not isinstance(comps, list):
        raise invalid("Param template['components'] must be an array")
    for ci, comp in enumerate(comps):
        where = ("template", "components", ci)
        if not isinstance(comp, dict):
            raise invalid(f"Param {_path(*where)} must be a JSON object")
        ctype = comp.get("type")
        if ctype not in ("header", "body", "footer", "button"):
            raise invalid(f"Param {_path(*where, 'type')} must be header, body, footer or button")
        params = comp.get("parameters", [])
        if not isinstance(params, list):
            raise invalid(f"Param {_path(*where, 'parameters')} must be an array")
        if ctype == "body":
            body_params = len(params)
        for pi, p in enumerate(params):
            pw = (*where, "parameters", pi)
            if not isinstance(p, dict) or not isinstance(p.get("type"), str):
                raise invalid(f"Param {_path(*pw, 'type')} is required")
            if p["type"] == "text":
                text = _str(p, *pw, "text", hi=32768, code=100)
                if _BAD_PARAM_TEXT.search(str(text)):
                    raise invalid(PARAM_WHITESPACE)
    return str(name), str(code), body_params


def _check_media(obj: dict[str, Any], kind: str) -> None:
    if not obj.get("id") and not obj.get("link"):
        raise invalid(f"Param {kind}['id'] or {kind}['link'] is required")
    _str(obj, kind, "caption", hi=MAX_CAPTION, lo=0, required=False)
    if kind == "document":
        _str(obj, kind, "filename", hi=240, required=False, code=100)


def _media_ids(body: dict[str, Any], mtype: str) -> list[str]:
    """Media ids a (validated) send names: a media message's, an interactive header's, or a
    template header parameter's. Links are not checked (the fake fetches nothing)."""
    obj = body.get(mtype)
    found: list[Any] = []
    if mtype in ("image", "document", "audio", "video", "sticker") and isinstance(obj, dict):
        found.append(obj.get("id"))
    elif mtype == "interactive" and isinstance(obj, dict):
        header = obj.get("header")
        if isinstance(header, dict) and isinstance(header.get(header.get("type")), dict):
            found.append(header[header["type"]].get("id"))
    elif mtype == "template" and isinstance(obj, dict):
        for comp in obj.get("components") or []:
            for p in comp.get("parameters") or [] if isinstance(comp, dict) else []:
                if isinstance(p, dict) and isinstance(p.get(p.get("type")), dict):
                    found.append(p[p["type"]].get("id"))
    return [str(m) for m in found if m]


def _check_send(body: dict[str, Any]) -> tuple[str, str]:
    """Validate a send request like Meta; returns (type, wa_id)."""
    to = body.get("to")
    if not isinstance(to, str) or not to.strip():
        raise invalid("Param to is required")
    wa_id = _digits(to)
    if not 5 <= len(wa_id) <= 20:
        raise invalid(f"Param to must be a phone number or wa_id (got {to!r})")
    rtype = body.get("recipient_type", "individual")
    if rtype not in ("individual", "group"):
        raise invalid("Param recipient_type must be 'individual'")
    mtype = body.get("type", "text")
    if not isinstance(mtype, str) or mtype not in _KNOWN_SEND_TYPES:
        raise invalid(f"Param type must be one of {sorted(_KNOWN_SEND_TYPES)} (got {mtype!r})")
    obj = _obj(body, mtype)
    if "context" in body:
        ctx = _obj(body, "context")
        _str(ctx, "context", "message_id", hi=512, code=100)
    _str(body, "biz_opaque_callback_data", hi=MAX_OPAQUE, lo=0, required=False)
    if mtype == "text":
        _str(obj, "text", "body", hi=MAX_TEXT, code=100)
        if "preview_url" in obj and not isinstance(obj["preview_url"], bool):
            raise invalid("Param text['preview_url'] must be a boolean")
    elif mtype == "interactive":
        _check_interactive(obj)
    elif mtype == "template":
        _check_template(obj)
    elif mtype == "location":
        _number(obj, "location", "latitude", lo=-90, hi=90)
        _number(obj, "location", "longitude", lo=-180, hi=180)
        _str(obj, "location", "name", hi=1000, required=False, code=100)
        _str(obj, "location", "address", hi=1000, required=False, code=100)
    elif mtype in ("image", "document", "audio", "video", "sticker"):
        _check_media(obj, mtype)
    return mtype, wa_id


# ---------------------------------------------------------------------------------------------
# the fake


class FakeWhatsApp(LoopbackServer):
    """Fake Graph API for one business phone number. Public state is plain attributes."""

    def __init__(
        self,
        token: str = TOKEN,
        phone_number_id: str = PHONE_NUMBER_ID,
        app_secret: str = APP_SECRET,
        version: str = VERSION,
        rate_limit_per_second: float | None = None,
        *,
        waba_id: str = WABA_ID,
        display_phone_number: str = DISPLAY_PHONE_NUMBER,
        seed: int | None = None,
    ) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.app_secret = app_secret
        self.version = version
        self.rate_limit_per_second = rate_limit_per_second
        self.waba_id = waba_id
        self.display_phone_number = display_phone_number
        self.delay: float = 0.0
        self.media_url_ttl: float = 300.0  # seconds a download url stays valid (monotonic)
        # statuses queued for every accepted message that does not fail, e.g. ("sent",
        # "delivered"); empty by default so pending_statuses only holds failures.
        self.auto_statuses: tuple[str, ...] = ()
        self.base_url: str | None = None  # "http://127.0.0.1:PORT/v23.0"
        self.root_url: str | None = None  # "http://127.0.0.1:PORT"

        self.requests: list[ApiRequest] = []
        self.errors: list[Exception] = []  # bugs inside the fake (answered 500)
        self.sent: list[Sent] = []
        self.read_marks: list[str] = []
        self.typing_indicators: list[str] = []  # wamids marked read with a typing indicator
        self.rejected_rate: list[float] = []  # monotonic times of 130429 rejections
        self.pending_statuses: list[dict[str, Any]] = []  # status envelopes not yet delivered
        self.deliveries: list[Delivery] = []
        self.inbound: list[dict[str, Any]] = []  # message items built by the builders
        self.last_inbound: dict[str, float] = {}  # wa_id -> epoch seconds (fake clock)
        self.marketing_stopped: set[str] = set()
        self.media: dict[str, Media] = {}
        # a send naming media the fake does not hold: "fail_later" (accepted, then a failed
        # status 131053) or "reject" (400 131053 at once)
        self.unknown_media = "fail_later"
        self.templates: dict[tuple[str, str], Template] = {}  # empty: any template accepted

        self._rng = random.Random(seed)
        self._time_offset = 0.0
        self._faults: dict[str, deque[GraphError]] = {}
        self._later: dict[str, deque[tuple[int, str | None, str | None]]] = {}
        self._names: dict[str, str] = {}
        self._media_urls: dict[str, tuple[str, float]] = {}  # url token -> (media id, issued)
        self._next_media = 0
        self._window: SlidingWindow | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.root_url = await self._serve(app)
        self.base_url = f"{self.root_url}/{self.version}"
        return self.base_url

    # -- clock and the 24-hour window ------------------------------------------------------------

    def now(self) -> float:
        """The fake's wall clock (epoch seconds): time.time() plus ``advance()`` offsets."""
        return time.time() + self._time_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (windows close, webhook timestamps move)."""
        self._time_offset += seconds

    def user_message(self, wa_id: str, at: float | None = None) -> None:
        """Record that the user wrote to the business now (or at epoch ``at``)."""
        self.last_inbound[_digits(wa_id)] = self.now() if at is None else at

    open_window = user_message

    def close_window(self, wa_id: str) -> None:
        self.last_inbound.pop(_digits(wa_id), None)

    def window_open(self, wa_id: str) -> bool:
        last = self.last_inbound.get(_digits(wa_id))
        return last is not None and self.now() - last < WINDOW_SECONDS

    # -- faults --------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 400,
        code: int = 131026,
        message: str | None = None,
        count: int = 1,
        details: str | None = None,
        *,
        subcode: int | None = None,
        on: str = "send",
    ) -> None:
        """The next ``count`` requests of kind ``on`` ("send", "read", "media", "upload",
        "download" or "any") answer ``status`` with a Graph error body for ``code``.
        ``message`` defaults to the code's title (e.g. 131026 "Message undeliverable", 130429
        "Rate limit hit")."""
        if on not in ("send", "read", "media", "upload", "download", "any"):
            raise ValueError(f"unknown request kind {on!r}")
        err = GraphError(status, code, message, details, subcode)
        self._faults.setdefault(on, deque()).extend([err] * count)

    def fail_later(
        self,
        wa_id: str,
        code: int = 131026,
        title: str | None = None,
        *,
        details: str | None = None,
        count: int = 1,
    ) -> None:
        """The next ``count`` messages to ``wa_id`` are accepted (200), then a ``failed``
        status with ``code`` is queued for each."""
        self._later.setdefault(_digits(wa_id), deque()).extend([(code, title, details)] * count)

    def register_template(
        self, name: str, language: str = "id", *, body_params: int = 0, category: str = "UTILITY"
    ) -> Template:
        """Once any template is registered, unknown name/language pairs answer 132001 and a
        wrong number of body parameters answers 132000. MARKETING templates to a user who sent
        ``user_preferences(wa_id, "stop")`` are accepted, then fail with 131050."""
        tpl = Template(name, language, body_params, category.upper())
        self.templates[(name, language)] = tpl
        return tpl

    # -- media ---------------------------------------------------------------------------------

    def add_media(
        self,
        mime_type: str = "image/jpeg",
        size_bytes: int = 20_000,
        content: bytes | None = None,
        *,
        filename: str | None = None,
        media_id: str | None = None,
    ) -> str:
        """Register media a user "sent"; returns its id. Without ``content`` the bytes are
        deterministic, not constant, and start with the format's magic number."""
        self._next_media += 1
        mid = media_id or str(1_900_000_000_000_000 + self._next_media)
        data = content if content is not None else _fake_bytes(mid, size_bytes, mime_type)
        self.media[mid] = Media(mid, mime_type, data, hashlib.sha256(data).hexdigest(), filename)
        return mid

    def expire_media(self, media_id: str) -> None:
        """End an uploaded media id's life now, as Meta does after 30 days."""
        self.media[media_id].expires_at = self.now()

    def live_media(self, media_id: str) -> Media | None:
        """The media under ``media_id`` unless it is unknown or expired."""
        media = self.media.get(media_id)
        if media is None or (media.expires_at is not None and self.now() >= media.expires_at):
            return None
        return media

    # -- inspection ----------------------------------------------------------------------------

    def sent_to(self, wa_id: str) -> list[Sent]:
        return [s for s in self.sent if s.to == _digits(wa_id)]

    def count(self, kind: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (kind is None or r.kind == kind) and (status is None or r.status == status)
        )

    def last_sent(self, wa_id: str | None = None) -> Sent:
        items = self.sent if wa_id is None else self.sent_to(wa_id)
        if not items:
            raise LookupError(f"nothing sent{'' if wa_id is None else ' to ' + wa_id}")
        return items[-1]

    # -- webhook builders: user messages (each opens the user's 24-h window) --------------------

    def text_message(
        self,
        wa_id: str,
        body: str,
        name: str | None = "Warga",
        *,
        reply_to: str | None = None,
        forwarded: bool = False,
    ) -> dict[str, Any]:
        context: dict[str, Any] | None = None
        if reply_to is not None:
            context = {"from": self.display_phone_number, "id": reply_to}
        elif forwarded:
            context = {"forwarded": True}
        return self._inbound(wa_id, "text", {"body": body}, name=name, context=context)

    def button_reply(
        self, wa_id: str, id: str, title: str, context_wamid: str | None = None
    ) -> dict[str, Any]:
        """A tap on a reply button. The context defaults to the last button message sent."""
        ctx = context_wamid or self._last_wamid(wa_id, "interactive", "button")
        payload = {"type": "button_reply", "button_reply": {"id": id, "title": title}}
        return self._inbound(wa_id, "interactive", payload, context=self._ctx(ctx))

    def list_reply(
        self,
        wa_id: str,
        id: str,
        title: str,
        description: str | None = None,
        context_wamid: str | None = None,
    ) -> dict[str, Any]:
        """A row picked from a list. The context defaults to the last list message sent."""
        ctx = context_wamid or self._last_wamid(wa_id, "interactive", "list")
        row: dict[str, Any] = {"id": id, "title": title}
        if description is not None:
            row["description"] = description
        payload = {"type": "list_reply", "list_reply": row}
        return self._inbound(wa_id, "interactive", payload, context=self._ctx(ctx))

    def quick_reply(
        self, wa_id: str, payload: str, text: str, context_wamid: str | None = None
    ) -> dict[str, Any]:
        """A template quick-reply button (type "button"); context: the last template sent."""
        ctx = context_wamid or self._last_wamid(wa_id, "template", None)
        return self._inbound(
            wa_id, "button", {"payload": payload, "text": text}, context=self._ctx(ctx)
        )

    def image_message(
        self,
        wa_id: str,
        media_id: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> dict[str, Any]:
        """Registers a 50 kB JPEG when ``media_id`` is None. Unknown ids are used as given
        (GET /{media_id} then answers 400 code 100, like expired media)."""
        obj = self._media_obj(media_id, mime_type, "image/jpeg", 50_000)
        if caption is not None:
            obj["caption"] = caption
        return self._inbound(wa_id, "image", obj)

    def document_message(
        self,
        wa_id: str,
        media_id: str | None = None,
        mime_type: str | None = None,
        filename: str = "dokumen.pdf",
        caption: str | None = None,
    ) -> dict[str, Any]:
        obj = self._media_obj(media_id, mime_type, "application/pdf", 80_000)
        obj["filename"] = filename
        if caption is not None:
            obj["caption"] = caption
        return self._inbound(wa_id, "document", obj)

    def location_message(
        self,
        wa_id: str,
        lat: float,
        lon: float,
        *,
        name: str | None = None,
        address: str | None = None,
    ) -> dict[str, Any]:
        loc: dict[str, Any] = {"latitude": lat, "longitude": lon}
        if name is not None:
            loc["name"] = name
        if address is not None:
            loc["address"] = address
        return self._inbound(wa_id, "location", loc)

    def sticker_message(
        self, wa_id: str, media_id: str | None = None, *, animated: bool = False
    ) -> dict[str, Any]:
        obj = self._media_obj(media_id, "image/webp", "image/webp", 20_000)
        obj["animated"] = animated
        return self._inbound(wa_id, "sticker", obj)

    def unsupported_message(self, wa_id: str) -> dict[str, Any]:
        """What arrives for message kinds the Cloud API cannot pass on (e.g. a poll)."""
        errors = [
            {
                "code": 131051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "error_data": {"details": "Message type is currently not supported."},
            }
        ]
        return self._inbound(wa_id, "unsupported", None, extra={"errors": errors})

    def malformed_message(self, wa_id: str, missing: str = "type") -> dict[str, Any]:
        """A message item without ``missing`` ("type", "id" or "from"); no window change."""
        return malformed_message(
            wa_id, missing=missing, phone_number_id=self.phone_number_id,
            name=self._names.get(wa_id, "Warga"),
        )

    # -- webhook builders: statuses and other fields --------------------------------------------

    def status_update(
        self,
        wamid: str,
        status: str,
        *,
        recipient_id: str,
        error_code: int | None = None,
        error_title: str | None = None,
        error_details: str | None = None,
        biz_opaque_callback_data: str | None = None,
        category: str = "service",
    ) -> dict[str, Any]:
        """A ``statuses[]`` webhook. "failed" carries ``errors`` (code defaults to 131026)."""
        item: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(self.now())),
            "recipient_id": recipient_id,
        }
        if biz_opaque_callback_data is not None:
            item["biz_opaque_callback_data"] = biz_opaque_callback_data
        if status == "failed" or error_code is not None:
            code = error_code if error_code is not None else 131026
            title, details = ERRORS.get(code, ("Unknown error", "Unknown error."))
            title = error_title or title
            item["errors"] = [
                {
                    "code": code,
                    "title": title,
                    "message": title,
                    "error_data": {"details": error_details or details},
                    "href": ERROR_HREF,
                }
            ]
        else:
            item["conversation"] = {
                "id": "".join(self._rng.choices("0123456789abcdef", k=32)),
                "origin": {"type": category},
            }
            if status == "sent":
                item["conversation"]["expiration_timestamp"] = str(int(self.now()) + 86400)
            item["pricing"] = {
                "billable": category != "service",
                "pricing_model": "PMP",
                "category": category,
            }
        value = {
            "messaging_product": "whatsapp",
            "metadata": self._metadata(),
            "statuses": [item],
        }
        return _envelope("messages", value, waba_id=self.waba_id)

    def user_preferences(self, wa_id: str, value: str = "stop") -> dict[str, Any]:
        """The user tapped stop/resume for marketing messages (also updates
        ``marketing_stopped``)."""
        if value not in ("stop", "resume"):
            raise ValueError("value must be 'stop' or 'resume'")
        if value == "stop":
            self.marketing_stopped.add(_digits(wa_id))
        else:
            self.marketing_stopped.discard(_digits(wa_id))
        detail = f"User requested to {value} marketing messages"
        body = {
            "messaging_product": "whatsapp",
            "metadata": self._metadata(),
            "contacts": [{"wa_id": wa_id}],
            "user_preferences": [
                {
                    "wa_id": wa_id,
                    "detail": detail,
                    "category": "marketing_messages",
                    "value": value,
                    "timestamp": int(self.now()),
                }
            ],
        }
        return _envelope("user_preferences", body, waba_id=self.waba_id)

    def unknown_field(self, field_name: str = "account_update") -> dict[str, Any]:
        """A change an adapter for messages should ignore. No ``metadata`` (as in the real
        account and template events)."""
        value: dict[str, Any]
        if field_name == "message_template_status_update":
            value = {
                "event": "APPROVED",
                "message_template_id": 123456789012345,
                "message_template_name": "dokumen_siap",
                "message_template_language": "id",
                "reason": "NONE",
            }
        elif field_name == "account_update":
            value = {"event": "ACCOUNT_RESTRICTION", "restriction_info": [
                {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
                 "expiration": int(self.now()) + 3600},
            ]}
        else:
            value = {"event": "UNKNOWN_EVENT"}
        return _envelope(field_name, value, waba_id=self.waba_id, time_=int(self.now()))

    # -- delivering webhooks -------------------------------------------------------------------

    async def deliver(
        self,
        url: str,
        payload: dict[str, Any] | bytes,
        *,
        secret: str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """POST one webhook like Meta: raw body serialised once (``meta_json``), signed with
        ``secret`` (default: the app secret). ``signature`` replaces the header value (forgery);
        ``signature=""`` omits the signature headers. Returns (HTTP status, response text)."""
        raw = payload if isinstance(payload, bytes) else meta_json(payload)
        key = (secret if secret is not None else self.app_secret).encode()
        hdrs = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
        if signature is None:
            hdrs["X-Hub-Signature"] = "sha1=" + hmac.new(key, raw, hashlib.sha1).hexdigest()
            hdrs["X-Hub-Signature-256"] = sign(raw, key.decode())
        elif signature:
            hdrs["X-Hub-Signature-256"] = signature
        hdrs.update(headers or {})
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=raw, headers=hdrs) as resp,
        ):
            text = await resp.text()
            status = resp.status
        self.deliveries.append(Delivery(url, raw, hdrs, status, text, time.monotonic()))
        return status, text

    async def flush_statuses(self, url: str) -> list[int]:
        """Deliver every queued status webhook, oldest first, each in its own signed POST.
        Those answered 2xx leave the queue; the others stay (Meta retries). Returns the HTTP
        statuses."""
        statuses: list[int] = []
        keep: list[dict[str, Any]] = []
        queue, self.pending_statuses = self.pending_statuses, []
        for env in queue:
            status, _ = await self.deliver(url, env)
            statuses.append(status)
            if not 200 <= status < 300:
                keep.append(env)
        self.pending_statuses = keep + self.pending_statuses
        return statuses

    async def verify_challenge(
        self,
        url: str,
        verify_token: str,
        *,
        challenge: str | None = None,
        mode: str = "subscribe",
    ) -> tuple[int, str]:
        """The GET Meta makes when the webhook is configured. Returns (status, body text)."""
        params = {
            "hub.mode": mode,
            "hub.verify_token": verify_token,
            "hub.challenge": challenge or str(self._rng.randrange(10**9, 10**10)),
        }
        async with aiohttp.ClientSession() as session, session.get(url, params=params) as r:
            return r.status, await r.text()

    # -- internals: builders -------------------------------------------------------------------

    def _metadata(self) -> dict[str, str]:
        return _metadata(self.phone_number_id, self.display_phone_number)

    def _ctx(self, wamid: str) -> dict[str, Any]:
        return {"from": self.display_phone_number, "id": wamid}

    def _last_wamid(self, wa_id: str, mtype: str, itype: str | None) -> str:
        for s in reversed(self.sent_to(wa_id)):
            if s.type == mtype and (itype is None or s.interactive_type == itype):
                return s.wamid
        return _wamid(wa_id, outbound=True, rng=self._rng)

    def _media_obj(
        self, media_id: str | None, mime_type: str | None, default_mime: str, size: int
    ) -> dict[str, Any]:
        if media_id is None:
            media_id = self.add_media(mime_type or default_mime, size)
        media = self.media.get(media_id)
        if media is not None:
            sha = media.sha256_b64
            mime = mime_type or media.mime_type
        else:
            sha = base64.b64encode(hashlib.sha256(media_id.encode()).digest()).decode()
            mime = mime_type or default_mime
        return {"mime_type": mime, "sha256": sha, "id": media_id}

    def _inbound(
        self,
        wa_id: str,
        mtype: str,
        payload: dict[str, Any] | None,
        *,
        name: str | None = None,
        context: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if name is not None:
            self._names[wa_id] = name
        self.user_message(wa_id)
        msg: dict[str, Any] = {}
        if context is not None:
            msg["context"] = context
        msg.update(
            {
                "from": wa_id,
                "id": _wamid(wa_id, outbound=False, rng=self._rng),
                "timestamp": str(int(self.now())),
                "type": mtype,
            }
        )
        if payload is not None:
            msg[mtype] = payload
        msg.update(extra or {})
        self.inbound.append(msg)
        value = {
            "messaging_product": "whatsapp",
            "metadata": self._metadata(),
            "contacts": [{"profile": {"name": self._names.get(wa_id, "Warga")}, "wa_id": wa_id}],
            "messages": [msg],
        }
        return _envelope("messages", value, waba_id=self.waba_id)

    # -- internals: HTTP -----------------------------------------------------------------------

    def _trace(self) -> str:
        return "".join(self._rng.choices(string.ascii_letters + string.digits + "_-", k=23))

    def _error(self, err: GraphError) -> web.Response:
        return self._json(err.body(self._trace()), err.status)

    @staticmethod
    def _json(body: Any, status: int = 200) -> web.Response:
        return web.Response(
            body=meta_json(body), status=status, content_type="application/json"
        )

    @staticmethod
    def _kind(method: str, parts: list[str], body: Any) -> str:
        if method == "GET" and len(parts) == 2 and parts[0] == "media-download":
            return "download"
        if method == "POST" and len(parts) == 3 and parts[2] == "messages":
            return "read" if isinstance(body, dict) and body.get("status") == "read" else "send"
        if method == "POST" and len(parts) == 3 and parts[2] == "media":
            return "upload"
        if method in ("GET", "DELETE") and len(parts) == 2:
            return "media"
        return "unknown"

    def _check_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, tok = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(tok.strip(), self.token):
            raise GraphError(401, 190, details="Invalid or missing OAuth access token.")

    def _fault(self, kind: str) -> None:
        for key in ("any", kind):
            faults = self._faults.get(key)
            if faults:
                raise faults.popleft()

    def _rate_limit(self) -> None:
        rate = self.rate_limit_per_second
        if not rate:
            return
        if self._window is None:
            self._window = SlidingWindow(rate)
        if not self._window.admit():
            self.rejected_rate.append(time.monotonic())
            raise GraphError(400, 130429)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        parts = [p for p in request.path.split("/") if p]
        body: Any = None
        kind = "unknown"
        try:
            if self.delay > 0:
                await asyncio.sleep(self.delay)
            # an upload's multipart body is read by _upload (the stream is read only once)
            upload = self._kind(request.method, parts, None) == "upload"
            raw = b"" if upload else await request.read()
            bad_json = False
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    bad_json = True
            kind = self._kind(request.method, parts, body)
            self._check_auth(request)
            resp = await self._route(request, parts, kind, body, bad_json)
        except GraphError as err:
            resp = self._error(err)
        except Exception as exc:  # noqa: BLE001 - a bug in the fake: answer 500, keep it
            self.errors.append(exc)
            resp = self._error(GraphError(500, 1, details=f"fake failed: {exc!r}"))
        self.requests.append(ApiRequest(request.method, request.path, resp.status, at, body, kind))
        return resp

    async def _route(
        self, request: web.Request, parts: list[str], kind: str, body: Any, bad_json: bool
    ) -> web.StreamResponse:
        if kind == "download":
            self._fault(kind)
            return self._download(request, parts[1])
        if not parts or parts[0] != self.version:
            raise invalid(f"Unknown path components: /{'/'.join(parts)}")
        if kind in ("send", "read", "upload"):
            if parts[1] != self.phone_number_id:
                raise GraphError(
                    400, 100, details=f"Object with ID '{parts[1]}' does not exist, cannot be "
                    "loaded due to missing permissions, or does not support this operation",
                    message=f"Unsupported post request. Object with ID '{parts[1]}' does not "
                    "exist", subcode=33,
                )
            if kind == "upload":
                return await self._upload(request)
            if bad_json or not isinstance(body, dict):
                raise invalid("The request body must be a JSON object")
            if body.get("messaging_product") != "whatsapp":
                raise GraphError(
                    400, 100, message="The parameter messaging_product is required.",
                    details="Param messaging_product must be 'whatsapp'",
                )
            self._fault(kind)
            return self._mark_read(body) if kind == "read" else self._send(body)
        if kind == "media":
            self._fault(kind)
            return self._media_meta(request.method, parts[1])
        raise invalid(f"Unsupported {request.method.lower()} request: /{'/'.join(parts)}")

    async def _upload(self, request: web.Request) -> web.Response:
        """POST /{phone_number_id}/media: multipart ``file``, ``type``, ``messaging_product``."""
        form = await request.post()  # empty unless the body is a form
        if form.get("messaging_product") != "whatsapp":
            raise GraphError(
                400, 100, message="The parameter messaging_product is required.",
                details="Param messaging_product must be 'whatsapp'",
            )
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            raise GraphError(400, 100, message="The parameter file is required.",
                             details="Param file is required")
        declared = form.get("type")
        if not isinstance(declared, str) or not declared:
            raise GraphError(400, 100, message="The parameter type is required.",
                             details="Param type is required")
        self._fault("upload")
        part = (upload.content_type or "").split(";")[0].strip().lower()
        mime = part if part and part != "application/octet-stream" else declared.lower()
        if mime not in UPLOAD_LIMITS:
            raise invalid(
                "Param file must be a file with one of the following types: "
                f"{', '.join(sorted(UPLOAD_LIMITS))}. Received file of type '{mime}'."
            )
        data = upload.file.read()
        if not data:
            raise GraphError(400, 131053, details="The uploaded file is empty.")
        if len(data) > UPLOAD_LIMITS[mime]:
            raise GraphError(
                400, 131053,
                details=f"Media file of {len(data)} bytes exceeds the maximum of "
                f"{UPLOAD_LIMITS[mime]} bytes for {mime}.",
            )
        magic = _MAGIC.get(mime)
        if magic is not None and mime.startswith("image/") and not data.startswith(magic[:3]):
            raise GraphError(400, 131053, details=f"The file could not be processed as {mime}.")
        mid = self.add_media(mime, content=data, filename=upload.filename)
        self.media[mid].expires_at = self.now() + MEDIA_TTL_SECONDS
        return self._json({"id": mid})

    def _mark_read(self, body: dict[str, Any]) -> web.Response:
        wamid = body.get("message_id")
        if not isinstance(wamid, str) or not wamid:
            raise invalid("Param message_id is required")
        typing = body.get("typing_indicator")
        if typing is not None:
            if not isinstance(typing, dict) or typing.get("type") != "text":
                raise invalid("Param typing_indicator['type'] must be 'text'")
            self.typing_indicators.append(wamid)
        self.read_marks.append(wamid)
        return self._json({"success": True})

    def _send(self, body: dict[str, Any]) -> web.Response:
        self._rate_limit()
        mtype, wa_id = _check_send(body)
        gone = [m for m in _media_ids(body, mtype) if self.live_media(m) is None]
        media_failure: tuple[int, str | None, str | None] | None = None
        if gone:
            why = f"Media {gone[0]} was not found or has expired; upload it again."
            if self.unknown_media == "reject":
                raise GraphError(400, 131053, details=why)
            media_failure = (131053, None, why)
        failure: tuple[int, str | None, str | None] | None = None
        category = "service"
        if mtype == "template":
            name, lang, params = _check_template(body["template"])
            tpl = self._template(name, lang, params)
            category = tpl.category.lower() if tpl else "utility"
            if tpl and tpl.category == "MARKETING" and wa_id in self.marketing_stopped:
                failure = (131050, None, None)
        later = self._later.get(wa_id)
        if later:
            failure = later.popleft()
        elif mtype != "template" and not self.window_open(wa_id):
            failure = (131047, None, None)
        elif media_failure is not None and failure is None:
            failure = media_failure
        wamid = _wamid(wa_id, outbound=True, rng=self._rng)
        sent = Sent(wamid, wa_id, mtype, body, time.monotonic())
        self.sent.append(sent)
        opaque = body.get("biz_opaque_callback_data")
        if failure is not None:
            code, title, details = failure
            sent.failed_code = code
            self.pending_statuses.append(
                self.status_update(
                    wamid, "failed", recipient_id=wa_id, error_code=code, error_title=title,
                    error_details=details, biz_opaque_callback_data=opaque,
                )
            )
        else:
            for status in self.auto_statuses:
                if status not in _DELIVERABLE:
                    raise ValueError(f"auto_statuses holds {status!r}")
                self.pending_statuses.append(
                    self.status_update(
                        wamid, status, recipient_id=wa_id, biz_opaque_callback_data=opaque,
                        category=category,
                    )
                )
        message: dict[str, Any] = {"id": wamid}
        if mtype == "template":
            message["message_status"] = "accepted"
        return self._json(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": wa_id}],
                "messages": [message],
            }
        )

    def _template(self, name: str, lang: str, params: int | None) -> Template | None:
        if not self.templates:
            return None
        tpl = self.templates.get((name, lang))
        if tpl is None:
            raise GraphError(
                400, 132001, details=f"template name ({name}) does not exist in {lang}"
            )
        got = params or 0
        if got != tpl.body_params:
            raise GraphError(
                400, 132000,
                details=f"body: number of localizable_params ({got}) does not match the "
                f"expected number of params ({tpl.body_params})",
            )
        return tpl

    def _media_meta(self, method: str, media_id: str) -> web.Response:
        media = self.live_media(media_id)
        if media is None:
            raise GraphError(
                400, 100, subcode=33,
                message=f"Unsupported {method.lower()} request. Object with ID '{media_id}' "
                "does not exist, cannot be loaded due to missing permissions, or does not "
                "support this operation",
                details=f"Media {media_id} not found or expired",
            )
        if method == "DELETE":
            del self.media[media_id]
            return self._json({"success": True})
        tok = "".join(self._rng.choices(string.ascii_letters + string.digits, k=24))
        self._media_urls[tok] = (media_id, time.monotonic())
        return self._json(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.root_url}/media-download/{media_id}?token={tok}",
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "file_size": media.size,
                "id": media_id,
            }
        )

    def _download(self, request: web.Request, media_id: str) -> web.Response:
        tok = request.query.get("token", "")
        issued = self._media_urls.get(tok)
        media = self.live_media(media_id)
        if (
            media is None
            or issued is None
            or issued[0] != media_id
            or time.monotonic() - issued[1] > self.media_url_ttl
        ):
            raise GraphError(404, 100, details="URL signature expired or media not found")
        return web.Response(body=media.content, content_type=media.mime_type.split(";")[0])


__all__ = [
    "APP_SECRET", "DISPLAY_PHONE_NUMBER", "ERRORS", "MEDIA_TTL_SECONDS", "PHONE_NUMBER_ID",
    "TOKEN", "UPLOAD_LIMITS", "VERSION", "WABA_ID",
    "ApiRequest", "Delivery", "FakeWhatsApp", "GraphError", "Media", "Sent",
    "Template", "batch", "malformed_message", "meta_json", "sign",
]

