"""Issue 7 end to end: an outreach broadcast through the real `lontar` server and the fake
Bot API.

1. The server is killed (SIGKILL) a third of the way through a 600-recipient broadcast and
   started again: nobody gets the message twice, everybody gets it once, except a row that
   was in flight at the instant of the kill (it is `unconfirmed`: it may or may not have
   arrived, and it is not sent again, because a duplicate outreach message is the worse harm).
2. A citizen chatting while a large broadcast runs at the full rate is answered within about
   one send slot: replies go ahead of every broadcast send already waiting.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, insert, select

from bot.app import build, recover, start_channels, stop_channels
from bot.config import load_settings
from bot.db import make_engine
from bot.jobs import start_scheduler
from bot.models import contact_t, delivery_t, outbox_t
from bot.services import broadcasts
from bot.services.audience import Audience
from flows.content import Content
from tests.fakes.telegram_api import FakeTelegram
from tests.procs import free_port, healthy, start_with_telegram
from tests.waiting import until

MARK = "[siaran-uji]"  # in the broadcast's text: tells its messages from replies
TEXT = f"Setiap keluarga perlu KK yang benar. Urus gratis di Dukcapil. {MARK}"
FIRST_CHAT = 7_000_000
NO_QUIET = {"LONTAR_QUIET_START": "00:00", "LONTAR_QUIET_END": "00:00"}  # CI runs at night too


def seed(engine: Engine, content: Content, n: int) -> int:
    """`n` opted-in Telegram contacts with distinct chats, and a broadcast to all of them,
    approved and scheduled for now through the service staff use."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(contact_t), [
            {"channel": "telegram", "external_id": str(FIRST_CHAT + i), "language": "id",
             "opted_in": True, "consent_at": now, "created_at": now} for i in range(n)])
        bid = broadcasts.create(conn, content, title="KK untuk semua", text_id=TEXT,
                                audience=Audience(channels=("telegram",)), now=now)
        broadcasts.approve(conn, bid, None, now)
        assert broadcasts.schedule(conn, content, bid, now) == n
    return bid


def received(tg: FakeTelegram) -> Counter[int]:
    """Broadcast messages the fake accepted, per chat."""
    return Counter(s.chat_id for s in tg.sent if MARK in s.plain)


# --- 1. killed in the middle -----------------------------------------------------------------


def _start(data_dir: Path, port: int, tg: FakeTelegram) -> subprocess.Popen[str]:
    return start_with_telegram(data_dir, port, str(tg.base_url), **NO_QUIET)


def _statuses(engine: Engine, bid: int) -> dict[str, str]:
    """chat id -> the status of its broadcast row."""
    with engine.connect() as conn:
        return {r.external_id: r.status for r in conn.execute(
            select(contact_t.c.external_id, outbox_t.c.status)
            .join(contact_t, contact_t.c.id == outbox_t.c.contact_id)
            .where(outbox_t.c.broadcast_id == bid))}


async def test_killed_mid_broadcast_sends_nobody_twice(tmp_path: Path) -> None:
    n = 600  # about 21 s at 29.4/s, so the whole test stays well under a minute
    async with FakeTelegram(rate_limit_per_second=30) as tg:
        setup = build(load_settings(data_dir=tmp_path, secret_key_setting="k" * 40))
        bid = seed(setup.db.engine, setup.content, n)
        setup.close()
        engine = make_engine(load_settings(data_dir=tmp_path).database_url)
        port = free_port()
        tg.delay = 0.02  # a round trip shorter than a slot: the kill often finds one in flight
        proc = _start(tmp_path, port, tg)
        try:
            await healthy(port, proc)
            await until(lambda: sum(received(tg).values()) >= n // 3, timeout=30)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        at_kill = sum(received(tg).values())
        assert at_kill < n  # killed mid-way, not after
        tg.delay = 0.0
        proc = _start(tmp_path, port, tg)
        try:
            await healthy(port, proc)

            def done() -> bool:
                with engine.connect() as conn:
                    return bool(broadcasts.progress(conn, bid, datetime.now(UTC)).status
                                == broadcasts.DONE)

            await until(done, timeout=45)
            await asyncio.sleep(0.5)  # anything sent twice would have arrived by now
        finally:
            proc.terminate()
            proc.wait(timeout=10)

        got = received(tg)
        statuses = _statuses(engine, bid)
        unconfirmed = sorted(int(chat) for chat, s in statuses.items() if s == "unconfirmed")
        # the report's "may or may not have arrived", resolved by the fake
        print(f"killed after {at_kill} of {n}; unconfirmed: "
              + ", ".join(f"{c} ({'arrived' if got[c] else 'not arrived'})"
                          for c in unconfirmed))
        assert max(got.values()) == 1, [c for c, k in got.items() if k > 1]
        assert len(unconfirmed) <= 2
        chats = {FIRST_CHAT + i for i in range(n)}
        assert set(got) <= chats
        missing = chats - set(got)
        assert missing <= set(unconfirmed), sorted(missing - set(unconfirmed))
        assert {s for c, s in statuses.items() if int(c) not in unconfirmed} == {"sent"}
        with engine.connect() as conn:
            rows, contacts = conn.execute(
                select(func.count(), func.count(delivery_t.c.contact_id.distinct()))
                .where(delivery_t.c.broadcast_id == bid)).one()
            p = broadcasts.progress(conn, bid, datetime.now(UTC))
        assert rows == contacts == n
        assert (p.queued, p.waiting, p.failed) == (n, 0, 0)
        assert p.sent + p.unconfirmed == p.done == p.queued == n
        assert p.unconfirmed == len(unconfirmed)
        engine.dispose()


# --- 2. a citizen during a large broadcast ---------------------------------------------------


CITIZEN = 5555
SAYS = ("halo", "menu", "syarat KK", "jam buka", "terima kasih")


def _queued_at(engine: Engine) -> float | None:
    """When the citizen's latest reply was committed to the outbox, on the monotonic clock
    the fake stamps what it receives with (this process runs both)."""
    with engine.connect() as conn:
        created = conn.execute(
            select(outbox_t.c.created_at)
            .join(contact_t, contact_t.c.id == outbox_t.c.contact_id)
            .where(contact_t.c.external_id == str(CITIZEN), outbox_t.c.broadcast_id.is_(None))
            .order_by(outbox_t.c.id.desc()).limit(1)).scalar()
    return None if created is None else created.timestamp() - (time.time() - time.monotonic())


async def test_citizen_is_answered_within_a_slot_during_a_broadcast(tmp_path: Path) -> None:
    async with FakeTelegram(rate_limit_per_second=30) as tg:
        app = build(load_settings(
            data_dir=tmp_path, telegram_bot_token="123456:TEST-token",
            telegram_api_base_url=tg.base_url, telegram_poll_timeout=1,
            quiet_start="00:00", quiet_end="00:00"))
        bid = seed(app.db.engine, app.content, 3000)
        await recover(app)
        await start_channels(app)
        scheduler = start_scheduler(app)  # the real expansion, every 2 s
        try:
            await until(lambda: sum(received(tg).values()) >= 60, timeout=15)  # full speed
            behind: list[int] = []  # broadcast sends between the reply's queueing and its send
            ahead: list[int] = []  # ... between the citizen's message and the reply (shown)
            waited: list[float] = []
            for text in SAYS:
                before = len(tg.sent)

                def first_reply(before: int = before) -> int | None:
                    return next((i for i in range(before, len(tg.sent))
                                 if tg.sent[i].chat_id == CITIZEN), None)

                tg.text(CITIZEN, text)
                pushed = time.monotonic()
                reply: int = await until(first_reply, timeout=5)
                waited.append(tg.sent[reply].at - pushed)
                # broadcast messages the platform got after the citizen wrote, before the reply
                ahead.append(sum(MARK in s.plain for s in tg.sent[before:reply]))
                # the turn's own work (getUpdates, step, commit) is not waiting behind the
                # broadcast: count what the platform got while the reply sat in the outbox
                queued = _queued_at(app.db.engine)
                assert queued is not None
                behind.append(sum(MARK in s.plain and s.at > queued
                                  for s in tg.sent[before:reply]))
                await asyncio.sleep(1.2)  # within Telegram's 1 msg/s per chat
            print(f"broadcast messages sent while each reply was queued: {behind}, since "
                  f"the citizen wrote: {ahead}; waits (ms): "
                  + ", ".join(f"{w * 1000:.0f}" for w in waited)
                  + f"; 429s: {len(tg.rejected_429)}")
            # one send slot is ~34 ms at 29.4/s; the turn itself (getUpdates, store, step,
            # commit) takes a few ms more. Ordering, not wall-clock, so a slow CI stays green.
            assert max(behind) <= 3, behind
            assert not any(MARK in s.plain for s in tg.sent_to(CITIZEN))
            with app.db.engine.connect() as conn:
                p = broadcasts.progress(conn, bid, datetime.now(UTC))
            assert p.sent >= 60 and p.status == broadcasts.SENDING_B
        finally:
            scheduler.shutdown(wait=False)
            await stop_channels(app)
            app.close()
