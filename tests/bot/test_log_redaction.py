"""Logs keep personal data out (bot.logs): a NIK, a phone number and a citizen's text go
through every path that can be driven in-process, with the real handler and filters that
`setup_logging` installs, in both formats; then every captured record is checked."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import Lontar, build, recover, start_channels, stop_channels, web_app
from bot.config import ConfigError, load_settings
from bot.logs import (
    RedactingFilter,
    bind_request,
    current_request_id,
    mask_personal,
    message_text,
    remember_text,
    request_scope,
    setup_logging,
    valid_request_id,
)
from bot.models import Complaint, Contact, Outbox
from bot.outbox import Delivered, Meta, OutboxWorker, SendError
from flows.types import Reply
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.whatsapp_api import FakeWhatsApp
from tests.waiting import until

NIK = "5371014501900003"
PHONE = "6281398765432"  # a WhatsApp wa_id
PHONE_LOCAL = "081398765432"
SECRET = "zebra ungu menari di pelabuhan Tenau"
MESSAGE = f"{SECRET}, NIK saya {NIK}, hp {PHONE_LOCAL}"
FORBIDDEN = (NIK, NIK[4:], "5371 0145 0190 0003", PHONE, PHONE[2:], PHONE_LOCAL,
             PHONE_LOCAL[1:])
FORMATS = ("text", "json")
_TEXT_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([A-Z]+) ", re.M)
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


# --- capturing with the real handler ---------------------------------------------------------


class Captured:
    def __init__(self, fmt: str):
        self.fmt = fmt
        self.buffer = io.StringIO()

    def records(self) -> list[tuple[int, str, dict[str, Any]]]:
        """(level, full text, parsed json or {}) for every record written so far."""
        out = self.buffer.getvalue()
        if self.fmt == "json":
            records = []
            for line in out.splitlines():
                data = json.loads(line)  # every line is one JSON object
                assert {"time", "level", "logger", "message", "request_id"} <= data.keys()
                records.append((LEVELS[data["level"]], line, data))
            return records
        starts = list(_TEXT_RECORD.finditer(out))
        assert not out or (starts and starts[0].start() == 0)
        return [(LEVELS[m.group(1)], out[m.start():(starts[i + 1].start()
                                                     if i + 1 < len(starts) else len(out))], {})
                for i, m in enumerate(starts)]

    def text(self) -> str:
        return self.buffer.getvalue()

    def check(self, *, text_seen_at_debug: bool = True) -> list[tuple[int, str, dict[str, Any]]]:
        records = self.records()
        assert records
        for level, line, _ in records:
            for secret in FORBIDDEN:  # never unmasked, whatever the level
                assert secret not in line, line
            if level >= logging.INFO:
                assert SECRET not in line, line
        if text_seen_at_debug:  # the path was driven, and DEBUG may show the text (masked)
            assert any(SECRET in line for level, line, _ in records if level < logging.INFO)
        return records


@pytest.fixture
def capture() -> Iterator[Callable[[str], Captured]]:
    root = logging.getLogger()
    names = ("alembic", "apscheduler", "sqlalchemy.engine")
    saved = root.level, {n: logging.getLogger(n).level for n in names}
    handlers: list[logging.Handler] = []

    def start(fmt: str, level: str = "DEBUG") -> Captured:
        captured = Captured(fmt)
        handlers.append(setup_logging(level, fmt, captured.buffer))
        return captured

    yield start
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(saved[0])
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


def _failing_step(state: Any, event: Any, *_: Any) -> Any:
    raise RuntimeError(f"engine failed on {getattr(event, 'text', '')!r} for {PHONE}")


# --- web chat --------------------------------------------------------------------------------


async def _chat(client: TestClient, session: str, n: int, text: str,
                **headers: str) -> Any:
    resp = await client.post("/api/chat", json={"session": session, "message_id": f"msg-{n:05d}",
                                                "text": text}, headers=headers)
    return resp


@pytest.mark.parametrize("fmt", FORMATS)
async def test_web_chat_turn(fmt: str, capture: Callable[[str], Captured],
                             client: TestClient) -> None:
    logs = capture(fmt)
    resp = await _chat(client, "s" * 20, 1, MESSAGE, **{"X-Request-Id": "req-web-1"})
    assert resp.status == 200 and resp.headers["X-Request-Id"] == "req-web-1"
    records = logs.check()
    turn = [r for r in records if "turn: inbound" in r[1]]
    assert turn
    assert "NIK saya 5371*" in turn[0][1] and "hp *********432" in turn[0][1]
    if fmt == "json":
        assert turn[0][2]["request_id"] == "req-web-1"
        assert all(data["request_id"] for _, _, data in records)
    else:
        assert "[req-web-1]" in turn[0][1]


async def test_request_id_is_generated_for_a_bad_header(client: TestClient) -> None:
    resp = await _chat(client, "t" * 20, 1, "halo", **{"X-Request-Id": "bad id; drop"})
    assert re.fullmatch(r"[0-9a-f]{12}", resp.headers["X-Request-Id"])
    resp = await client.get("/healthz", headers={"X-Request-Id": "x" * 65})
    assert re.fullmatch(r"[0-9a-f]{12}", resp.headers["X-Request-Id"])


@pytest.mark.parametrize("fmt", FORMATS)
async def test_exception_inside_a_web_turn(fmt: str, capture: Callable[[str], Captured],
                                           client: TestClient,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    logs = capture(fmt)
    monkeypatch.setattr("bot.inbox.step", _failing_step)
    resp = await _chat(client, "e" * 20, 1, MESSAGE, **{"X-Request-Id": "req-boom"})
    assert resp.status == 500
    records = logs.check()
    errors = [r for r in records if r[0] >= logging.ERROR]
    assert errors and "RuntimeError: engine failed on" in errors[0][1]
    assert "**********432" in errors[0][1]  # the phone in the exception, masked
    if fmt == "json":
        assert errors[0][2]["request_id"] == "req-boom" and "exception" in errors[0][2]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_complaint_story(fmt: str, capture: Callable[[str], Captured],
                               lontar: Lontar, client: TestClient) -> None:
    logs = capture(fmt)
    story = f"Petugas minta uang 50 ribu. {MESSAGE}"
    for n, text in enumerate(["mau komplain", "1", "7", "1", story, "1", "1", "1"]):
        assert (await _chat(client, "c" * 20, n, text)).status == 200
    with lontar.db.session() as s:
        ticket = s.exec(select(Complaint)).one()
    assert ticket.urgent and NIK not in ticket.text  # stored masked, as before
    records = logs.check()
    assert any("URGENT complaint" in line for level, line, _ in records
               if level == logging.WARNING)


# --- WhatsApp --------------------------------------------------------------------------------


@pytest.fixture
async def fake_wa() -> AsyncIterator[FakeWhatsApp]:
    async with FakeWhatsApp(token="TEST-TOKEN", phone_number_id="1234567890",
                            app_secret="app-secret") as f:
        yield f


@pytest.fixture
async def wa(tmp_path: Path, fake_wa: FakeWhatsApp) -> AsyncIterator[tuple[Lontar, str]]:
    app = build(load_settings(
        data_dir=tmp_path, whatsapp_access_token="TEST-TOKEN",
        whatsapp_phone_number_id="1234567890", whatsapp_app_secret="app-secret",
        whatsapp_verify_token="verify-me", whatsapp_api_base_url=fake_wa.base_url,
        quiet_start="00:00", quiet_end="00:00"))
    await start_channels(app)
    async with TestClient(TestServer(web_app(app))) as client:
        yield app, str(client.make_url("/webhooks/whatsapp"))
    await stop_channels(app)
    app.close()


@pytest.mark.parametrize("fmt", FORMATS)
async def test_whatsapp_webhook_and_failing_send(fmt: str, capture: Callable[[str], Captured],
                                                 wa: tuple[Lontar, str],
                                                 fake_wa: FakeWhatsApp) -> None:
    app, url = wa
    logs = capture(fmt)
    fake_wa.fail_next(status=400, code=131026,
                      message=f"Message undeliverable to {PHONE}")
    status, _ = await fake_wa.deliver(url, fake_wa.text_message(PHONE, MESSAGE, name="Maria"))
    assert status == 200

    def blocked() -> bool:
        with app.db.session() as s:
            return s.exec(select(Contact.blocked_at)).one() is not None

    await until(blocked)
    await until(lambda: "failed (attempt 1)" in logs.text())
    records = logs.check()
    failed = next(r for r in records if "failed (attempt 1)" in r[1])
    assert failed[0] == logging.INFO and "**********432" in failed[1]
    if fmt == "json":
        turn = next(data for _, line, data in records if "turn: inbound" in line)
        assert turn["request_id"].startswith("in-")
        assert failed[2]["request_id"].startswith("out-")


@pytest.mark.parametrize("fmt", FORMATS)
async def test_exception_inside_a_whatsapp_turn(fmt: str, capture: Callable[[str], Captured],
                                                wa: tuple[Lontar, str], fake_wa: FakeWhatsApp,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = wa
    logs = capture(fmt)
    monkeypatch.setattr("bot.inbox.step", _failing_step)
    status, _ = await fake_wa.deliver(url, fake_wa.text_message(PHONE, MESSAGE))
    assert status == 200
    await until(lambda: "not processed" in logs.text())
    records = logs.check(text_seen_at_debug=False)
    error = next(r for r in records if "not processed" in r[1])
    assert error[0] == logging.ERROR and "RuntimeError: engine failed on" in error[1]


# --- Telegram --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_telegram_update(fmt: str, capture: Callable[[str], Captured],
                               tmp_path: Path) -> None:
    async with FakeTelegram() as fake:
        app = build(load_settings(data_dir=tmp_path, telegram_bot_token="123456:TEST-token",
                                  telegram_api_base_url=fake.base_url,
                                  telegram_poll_timeout=1))
        logs = capture(fmt)
        try:
            await recover(app)
            await start_channels(app)
            fake.text(5001, MESSAGE, first_name="Maria")
            await until(lambda: [r for r in fake.sent if r.chat_id == 5001])
        finally:
            await stop_channels(app)
            app.close()
    records = logs.check()
    turn = [r for r in records if "turn: inbound" in r[1]]
    assert turn
    if fmt == "json":
        assert turn[0][2]["request_id"].startswith("in-")


# --- the outbox: a sender that fails, and one that crashes ------------------------------------


class _Sender:
    channel = "fake"

    async def send(self, contact: Contact, reply: Reply, meta: Meta) -> Delivered:
        if reply.text.startswith("retry"):
            raise SendError(f"429 for {contact.external_id}", retryable=True, retry_after=30)
        raise ValueError(f"cannot render {reply.text!r} for {contact.external_id}")


@pytest.mark.parametrize("fmt", FORMATS)
async def test_failing_and_crashing_sends(fmt: str, capture: Callable[[str], Captured],
                                          lontar: Lontar) -> None:
    with lontar.db.session() as s:
        contact = Contact(channel="fake", external_id=PHONE, opted_in=True)
        s.add(contact)
        s.flush()
        for text in (MESSAGE, f"retry {MESSAGE}"):
            s.add(Outbox(contact_id=contact.id, channel="fake", priority=0,  # type: ignore[arg-type]
                         payload=Reply(text).to_dict()))
        s.commit()
    logs = capture(fmt)
    worker = OutboxWorker(lontar.db, _Sender(), rate=1000, burst=100)
    await worker.drain_once()  # the first crashes; the chat's next row waits behind it
    with lontar.db.session() as s:
        rows = s.exec(select(Outbox).order_by(Outbox.id)).all()  # type: ignore[arg-type]
        first = rows[0]
        first.status = "failed"
        s.add(first)
        s.commit()
        for row in rows[1:]:
            row.next_attempt_at = first.created_at
            s.add(row)
        s.commit()
    await worker.drain_once()  # the retryable error
    records = logs.check(text_seen_at_debug=False)
    crash = next(r for r in records if "crashed on outbox row" in r[1])
    assert crash[0] == logging.ERROR and "ValueError: cannot render" in crash[1]
    assert any("failed (attempt 1): 429 for **********432" in line for _, line, _ in records)


# --- the pieces --------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "masked"), [
    (f"NIK {NIK}.", "NIK 5371************."),
    ("5371 0145 0190 0003", "5371************"),
    ("53.71.01.450190.0003", "5371************"),
    ("hp +6281234567890", "hp +**********890"),
    ("6281234567890", "**********890"),
    ("081234567890", "*********890"),
    ("+62 812-3456-7890", "+** ***-****-*890"),
    ("0812 345 678", "**** *** 678"),
    ("1234567", "1234567"),  # too short for either
    ("12345678901234567", "12345678901234567"),  # 17 digits: neither a NIK nor a phone
    ("tiket ADU-2025-ABC234, 2025-01-31 10:15:00", "tiket ADU-2025-ABC234, 2025-01-31 10:15:00"),
    ("0212345678", "0212345678"),  # a landline (Jakarta), not a mobile
])
def test_mask_personal(raw: str, masked: str) -> None:
    assert mask_personal(raw) == masked


def _record(level: int, msg: str, *args: Any, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad {NIK}")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("t", level, __file__, 1, msg, args, exc_info)


def test_filter_masks_args_message_and_exception() -> None:
    record = _record(logging.INFO, "contact %s said %s", PHONE, message_text(MESSAGE), exc=True)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == (
        f"contact **********432 said <text: {len(MESSAGE)} chars>")
    assert record.exc_text and NIK not in record.exc_text and "bad 5371****" in record.exc_text
    debug = _record(logging.DEBUG, "said %s", message_text(MESSAGE))
    RedactingFilter().filter(debug)
    assert debug.getMessage() == f"said {mask_personal(MESSAGE)}" and SECRET in debug.msg


def test_message_text_is_short_without_the_filter() -> None:
    assert str(message_text(MESSAGE)) == f"<text: {len(MESSAGE)} chars>"
    assert SECRET not in f"{message_text(MESSAGE)!r}"


def test_remembered_text_is_hidden_from_info_in_its_scope() -> None:
    with request_scope("r-1") as rid:
        assert rid == "r-1" == current_request_id()
        remember_text(SECRET)
        remember_text("ya")  # too short to hide
        with request_scope("ignored") as inner:
            assert inner == "r-1"  # one id through the request
        info = _record(logging.WARNING, "oops: %s / ya", SECRET)
        RedactingFilter().filter(info)
        debug = _record(logging.DEBUG, "text: %s", SECRET)
        RedactingFilter().filter(debug)
    assert info.getMessage() == f"oops: <text: {len(SECRET)} chars> / ya"
    assert debug.getMessage() == f"text: {SECRET}"
    assert current_request_id() == "-"
    outside = _record(logging.WARNING, "later: %s", SECRET)
    RedactingFilter().filter(outside)
    assert SECRET in outside.getMessage()  # the scope ended with its request


async def test_bind_request_stays_in_its_task() -> None:
    import asyncio

    async def task() -> str:
        bind_request("out-7", SECRET)
        return current_request_id()

    assert await asyncio.create_task(task()) == "out-7"
    assert current_request_id() == "-"


def test_valid_request_id() -> None:
    assert valid_request_id("abc-123") and valid_request_id("A" * 64)
    assert not valid_request_id("A" * 65) and not valid_request_id("a b")
    assert not valid_request_id("") and not valid_request_id(None)
    assert not valid_request_id("a_b") and not valid_request_id("ünï")


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats_and_levels(fmt: str, capture: Callable[[str], Captured]) -> None:
    logs = capture(fmt)
    log = logging.getLogger("lontar.test")
    with request_scope("rq-1"):
        log.info("hello %s", NIK)
        try:
            raise KeyError(PHONE)
        except KeyError:
            log.exception("failed")
    log.debug("dropped?")
    records = logs.check(text_seen_at_debug=False)
    assert len(records) == 3
    if fmt == "json":
        first, second, third = (data for _, _, data in records)
        assert first["message"] == "hello 5371************" and first["request_id"] == "rq-1"
        assert first["level"] == "INFO" and first["logger"] == "lontar.test"
        assert "exception" not in first and "KeyError" in second["exception"]
        assert third["request_id"] == "-"
    else:
        assert "INFO lontar.test [rq-1]: hello 5371************" in records[0][1]
        assert "KeyError: '**********432'" in records[1][1]
    quiet = capture(fmt, "INFO")  # the second call replaces the first handler
    log.debug("not at INFO")
    log.info("at INFO")
    assert "at INFO" in quiet.text() and "not at INFO" not in quiet.text()
    assert "at INFO" not in logs.text()
    assert logging.getLogger("alembic").level == logging.WARNING
    assert logging.getLogger("sqlalchemy.engine").level == logging.WARNING


def test_setup_logging_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="log format"):
        setup_logging("INFO", "xml")


def test_log_format_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().log_format == "text"
    monkeypatch.setenv("LONTAR_LOG_FORMAT", "JSON")
    assert load_settings().log_format == "json"
    monkeypatch.setenv("LONTAR_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="LONTAR_LOG_FORMAT"):
        load_settings()
