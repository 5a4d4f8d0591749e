"""bot.notify without a second process: channel names, failures, coalescing.

A failed NOTIFY must cost only the leader's poll delay, never the citizen's turn; a burst of
commits must not become one database round trip each. The cross-process behaviour is in
tests/postgres/test_notify.py.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import select

import bot.notify
from bot.app import Lontar, build
from bot.config import load_settings
from bot.inbox import Inbound
from bot.models import Outbox
from bot.notify import Notifier, channel_name
from tests.waiting import until

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"  # refused at once


@pytest.fixture
def unreachable() -> Iterator[Engine]:
    engine = create_engine(UNREACHABLE)  # never connected by SQLAlchemy itself
    yield engine
    engine.dispose()


def test_the_channel_is_per_schema_and_a_plain_identifier() -> None:
    names = {channel_name(s) for s in ("public", "lontar_a", "lontar_b", 'odd "schema" ü')}
    assert len(names) == 4
    assert channel_name("lontar_a") == channel_name("lontar_a")
    for name in names:
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", name) and len(name) <= 63


async def test_a_failed_notify_does_not_fail_the_turn(
        tmp_path: Path, unreachable: Engine, caplog: pytest.LogCaptureFixture) -> None:
    telegram = {"telegram_bot_token": "123456:TEST-token",
                "telegram_api_base_url": "http://127.0.0.1:1"}  # nothing is sent here
    lontar: Lontar = build(load_settings(data_dir=tmp_path, **telegram))
    lontar.notifier = Notifier(unreachable, delay=0.001)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.notify"):
            received = await lontar.inbox.handle(Inbound(
                channel="telegram", external_id="42", platform_id="u1", kind="text",
                payload={"text": "syarat kia"}))
            assert received.new
            await until(lambda: "could not notify the leader" in caplog.text)
        with lontar.db.session() as s:
            assert s.exec(select(Outbox)).all()  # the reply is queued for the leader's poll
        assert lontar.notifier.sent == 0
        attempts = caplog.text.count("could not notify")
        await lontar.inbox.handle(Inbound(channel="telegram", external_id="42",
                                          platform_id="u2", kind="text",
                                          payload={"text": "menu"}))
        await asyncio.sleep(0.05)
        assert caplog.text.count("could not notify") == attempts  # backs off, no retry storm
    finally:
        await lontar.notifier.close()
        lontar.close()


class _Recording:
    """Stands in for the psycopg connection: records the NOTIFY statements."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.closed = False

    async def execute(self, _sql: str, params: tuple[str, str]) -> None:
        self.payloads.append(params[1])

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> _Recording:
    conn = _Recording()

    async def _open(_kwargs: dict[str, Any]) -> tuple[_Recording, str]:
        return conn, channel_name("public")

    monkeypatch.setattr(bot.notify, "_open", _open)
    return conn


async def test_a_burst_of_commits_is_one_notification(recording: _Recording,
                                                      unreachable: Engine) -> None:
    notifier = Notifier(unreachable)
    for i in range(500):
        notifier.notify("telegram" if i % 2 else "whatsapp")
    await until(lambda: notifier.sent)
    await asyncio.sleep(0.05)
    assert recording.payloads == ["telegram,whatsapp"]
    await notifier.close()
    assert recording.closed


async def test_steady_commits_are_spaced_by_the_debounce(recording: _Recording,
                                                         unreachable: Engine) -> None:
    notifier = Notifier(unreachable, delay=0.005)
    started = time.monotonic()
    for _ in range(500):  # 500 commits over at least half a second
        notifier.notify("telegram")
        await asyncio.sleep(0.001)
    await notifier.close()
    elapsed = time.monotonic() - started
    assert 1 <= notifier.sent <= elapsed / 0.005 + 1
    assert notifier.sent < 500 / 4
    assert set(recording.payloads) == {"telegram"}


def test_outside_an_event_loop_it_is_a_no_op(unreachable: Engine) -> None:
    notifier = Notifier(unreachable)
    notifier.notify("telegram")  # a script without a loop: the leader's poll will do
    assert notifier.sent == 0


async def test_the_leader_wakes_its_own_workers_and_does_not_notify(
        tmp_path: Path, recording: _Recording, unreachable: Engine) -> None:
    lontar = build(load_settings(data_dir=tmp_path, telegram_bot_token="123456:TEST-token",
                                 telegram_api_base_url="http://127.0.0.1:1"))
    lontar.notifier = Notifier(unreachable, delay=0.001)
    try:
        lontar.wake("telegram", 1)
        lontar.wake("web", 1)  # no sender for the web chat: nothing to tell anybody
        await until(lambda: lontar.notifier is not None and lontar.notifier.sent)
        assert recording.payloads == ["telegram"]
        lontar.sender_tasks.append(asyncio.create_task(asyncio.sleep(10)))  # it leads now
        lontar.wake("telegram", 1)
        await asyncio.sleep(0.05)
        assert recording.payloads == ["telegram"]
    finally:
        for task in lontar.sender_tasks:
            task.cancel()
        await asyncio.gather(*lontar.sender_tasks, return_exceptions=True)
        await lontar.notifier.close()
        lontar.close()
