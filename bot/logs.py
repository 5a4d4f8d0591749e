"""Logging: one setup for every command, a request id per turn, and redaction of personal data.

UU 27/2022 and design.md: NIK, phone numbers and what citizens write never reach the logs at
INFO or above. Code logs ids and lengths; for the rest there are three nets, all installed on
the root handlers by `setup_logging`:

- `RedactingFilter` masks NIK-like 16-digit numbers (`5371************`) and Indonesian phone
  numbers (`+**********890`) in the final message, its exception text and stack.
- `message_text(text)` wraps message content a log call wants to show: the filter prints it
  only at DEBUG (still masked) and as `<text: N chars>` above. Its own `str()` is the short
  form, so a handler without the filter does not leak it either.
- Each request or turn runs in a `request_scope`: it carries the request id (`RequestIdFilter`
  adds it to every record) and the texts of that turn (`remember_text`), which are hidden in
  any INFO+ record logged within the scope, such as an exception quoting the message.

Formats: `text` (a human line) and `json` (one object per line: time, level, logger, message,
request_id, and exception: the traceback text, when there is one).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

__all__ = [
    "FORMATS",
    "RedactingFilter",
    "RequestIdFilter",
    "bind_request",
    "current_request_id",
    "mask_personal",
    "message_text",
    "new_request_id",
    "remember_text",
    "request_scope",
    "setup_logging",
    "valid_request_id",
]

FORMATS = ("text", "json")
NO_REQUEST = "-"
MIN_REMEMBERED = 6  # shorter texts ("ya", "1") would blank out every log line they occur in
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

# 16 digits, groups joined by at most one space, dot or hyphen, no digit touching either end
_NIK = re.compile(r"(?<![0-9])[0-9](?:[ \u00a0.\-]?[0-9]){15}(?![0-9])")
# +62 / 62 / 0, then a mobile number starting with 8: 9 to 13 digits in all after the prefix
_PHONE = re.compile(r"(?<![0-9+])(?:\+62|62|0)[ .\-]?8(?:[ .\-]?[0-9]){8,12}(?![0-9])")
_KEEP_NIK = 4
_KEEP_PHONE = 3


def _mask_nik(match: re.Match[str]) -> str:
    digits = re.sub(r"[^0-9]", "", match.group())
    return digits[:_KEEP_NIK] + "*" * (len(digits) - _KEEP_NIK)


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group()
    keep = len(text)  # index from which digits stay: the last three
    seen = 0
    for i in range(len(text) - 1, -1, -1):
        if text[i].isdigit():
            seen += 1
            if seen == _KEEP_PHONE:
                keep = i
                break
    return "".join("*" if c.isdigit() and i < keep else c for i, c in enumerate(text))


def mask_personal(text: str) -> str:
    """`text` with NIK-like numbers (first 4 digits kept) and Indonesian phone numbers (last
    3 digits kept) masked. Validity is not checked: a mistyped NIK is still personal data."""
    if not any(c.isdigit() for c in text):
        return text
    return _PHONE.sub(_mask_phone, _NIK.sub(_mask_nik, text))


# --- request scope -----------------------------------------------------------------------


@dataclass
class _Scope:
    request_id: str
    texts: list[str] = field(default_factory=list)


_scope: ContextVar[_Scope | None] = ContextVar("lontar_request", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


def valid_request_id(value: str | None) -> bool:
    """A client's X-Request-Id is kept only if short and plain (it ends up in every line)."""
    return bool(value) and _REQUEST_ID.match(value or "") is not None


def current_request_id() -> str:
    scope = _scope.get()
    return scope.request_id if scope is not None else NO_REQUEST


@contextmanager
def request_scope(request_id: str | None = None, *, inherit: bool = True) -> Iterator[str]:
    """Run a request or turn under a request id. Inside an enclosing scope (a web chat turn
    inside its HTTP request) the enclosing one is kept, so one id follows the whole request."""
    scope = _scope.get()
    if inherit and scope is not None:
        yield scope.request_id
        return
    token = _scope.set(_Scope(request_id or new_request_id()))
    try:
        yield current_request_id()
    finally:
        _scope.reset(token)


def bind_request(request_id: str, *texts: object) -> None:
    """Start a new scope for the rest of the current task (no reset: use it only in a task
    of its own, such as one chat's sends in the outbox worker)."""
    _scope.set(_Scope(request_id))
    for text in texts:
        remember_text(text)


def remember_text(text: object) -> None:
    """A citizen's text in this turn: hidden from INFO+ records logged within the scope.

    Works from the database threads too (bot.db runs work in a copy of the context, which
    shares the scope object)."""
    scope = _scope.get()
    if scope is not None and isinstance(text, str):
        text = text.strip()
        if len(text) >= MIN_REMEMBERED and text not in scope.texts:
            scope.texts.append(text)


# --- message content ---------------------------------------------------------------------


class _MessageText:
    __slots__ = ("text",)

    def __init__(self, text: object):
        self.text = "" if text is None else str(text)

    def __str__(self) -> str:
        return f"<text: {len(self.text)} chars>"

    __repr__ = __str__


def message_text(text: object) -> Any:
    """Wrap message content for a log call's args: shown (masked) at DEBUG only."""
    return _MessageText(text)


# --- filters and formatters --------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` (the current scope's, or `-`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class RedactingFilter(logging.Filter):
    """Masks personal data in the record itself, so every handler and formatter sees it masked.

    The message is rendered once here (`msg % args`) and the args dropped; the exception
    and stack texts are rendered and masked too. Runs once per record however many handlers
    carry it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_lontar_redacted", False):
            return True
        debug = record.levelno < logging.INFO
        if isinstance(record.args, tuple):
            record.args = tuple(_arg(a, debug) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _arg(v, debug) for k, v in record.args.items()}
        elif record.args is not None:
            record.args = _arg(record.args, debug)
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a bad format string: shown, masked
            message = f"{record.msg!r} {record.args!r}"
        scope = _scope.get()
        texts = scope.texts if scope is not None and not debug else []
        record.msg, record.args = _clean(message, texts), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _clean(record.exc_text, texts)
        if record.stack_info:
            record.stack_info = _clean(record.stack_info, texts)
        record._lontar_redacted = True
        return True


def _arg(value: Any, debug: bool) -> Any:
    if isinstance(value, _MessageText):
        return mask_personal(value.text) if debug else str(value)
    return value


def _clean(text: str, texts: list[str]) -> str:
    for secret in texts:
        if secret in text:
            text = text.replace(secret, f"<text: {len(secret)} chars>")
    return mask_personal(text)


class TextFormatter(logging.Formatter):
    """The human line; masks the final string again (the time, a handler's own fields)."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return mask_personal(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_personal(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = mask_personal(record.exc_text)
        if record.stack_info:
            out["stack_info"] = mask_personal(record.stack_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text",
                  stream: IO[str] | None = None) -> logging.Handler:
    """Install on the root logger one handler writing `fmt` lines to `stream` (stderr),
    replacing the one an earlier call installed. Returns it (tests pass a StringIO)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactingFilter())
    handler._lontar = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_lontar", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet = logging.NOTSET if level.upper() == "DEBUG" else logging.WARNING
    logging.getLogger("alembic").setLevel(quiet)  # migration chatter
    logging.getLogger("apscheduler").setLevel(quiet)  # a line per job run
    # never SQL: statement parameters hold message texts and phone numbers (even at DEBUG;
    # a developer who needs SQL turns on the engine's echo locally)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    return handler
