"""Two real `lontar` processes on one PostgreSQL: webhooks spread over both, one leader.

Only with LONTAR_TEST_DATABASE_URL (CI's second run); SQLite is one process on one machine.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bot.leader import lock_key
from flows.content import load_content
from tests.conftest import ON_POSTGRES
from tests.fakes.telegram_api import FakeTelegram
from tests.procs import free_port, healthy, start_with_telegram
from tests.waiting import until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (LONTAR_TEST_DATABASE_URL)"),
]

SECRET = "two-instances-secret"
FIRST_CHAT = 7000
CHATS = 40


def _leader_pids(database_url: str) -> list[int]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            key = lock_key(str(conn.execute(text("SELECT current_schema()")).scalar()))
            return list(conn.execute(text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = :hi AND objid = :lo"),
                {"hi": key >> 32, "lo": key & 0xFFFFFFFF}).scalars())
    finally:
        engine.dispose()


async def test_the_other_process_takes_over_and_nothing_is_lost_or_sent_twice(
        tmp_path: Path, database_url: str) -> None:
    bring = load_content().services["kia"].bring.id
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    webhook = {"TELEGRAM_WEBHOOK_URL": "https://lontar.example/webhooks/telegram",
               "TELEGRAM_WEBHOOK_SECRET": SECRET, "LONTAR_QUIET_START": "00:00",
               "LONTAR_QUIET_END": "00:00"}
    async with FakeTelegram() as tg:

        def answered() -> Counter[int]:
            return Counter(s.chat_id for s in tg.sent if bring in s.plain)

        ports = [free_port(), free_port()]
        procs: list[subprocess.Popen[str]] = []
        try:
            for i, port in enumerate(ports):  # the first to start leads
                (tmp_path / str(i)).mkdir()
                procs.append(start_with_telegram(tmp_path / str(i), port, tg.base_url,
                                                 **webhook))
                await healthy(port, procs[-1])
                if i == 0:
                    await until(lambda: _leader_pids(database_url), timeout=20)
            assert len(_leader_pids(database_url)) == 1
            async with aiohttp.ClientSession() as http:

                async def say(port: int, chat: int) -> None:
                    update = tg.text(chat, "syarat kia")
                    async with http.post(f"http://127.0.0.1:{port}/webhooks/telegram",
                                         json=update, headers=headers) as r:
                        assert r.status == 200

                for n in range(CHATS // 2):  # spread over both processes
                    await say(ports[n % 2], FIRST_CHAT + n)
                await until(lambda: len(answered()) >= CHATS // 4, timeout=30)
                procs[0].send_signal(signal.SIGKILL)  # the leader, mid-way
                procs[0].wait(timeout=10)
                killed = time.monotonic()
                for n in range(CHATS // 2, CHATS):
                    await say(ports[1], FIRST_CHAT + n)
                await until(lambda: len(answered()) == CHATS, timeout=60)
                took_over = min(s.at for s in tg.sent if s.at > killed) - killed
                await asyncio.sleep(2.0)  # anything sent twice would show by now
            counts = answered()
            assert set(counts) == {FIRST_CHAT + n for n in range(CHATS)}
            # A reply in flight at the kill instant is sent again (for an answer a citizen is
            # waiting for, resending is the lesser harm): at most one such chat.
            twice = [c for c, k in counts.items() if k > 1]
            assert len(twice) <= 1 and all(counts[c] == 2 for c in twice), counts
            assert took_over < 15, took_over
            assert _leader_pids(database_url)  # the survivor leads
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
