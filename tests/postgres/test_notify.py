"""A reply committed by a process that does not lead reaches the platform at once.

The leader's workers here poll only every IDLE_POLL (10 s) seconds, so a delivery within a
couple of seconds can only come from the notification. The last test runs two real `lontar`
processes (leader + `LONTAR_ROLE=receiver`) with the default poll.

Only with LONTAR_TEST_DATABASE_URL; SQLite is one process on one machine.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import select

from bot.app import Lontar, build, start_senders, stop_senders
from bot.config import load_settings
from bot.inbox import Inbound
from bot.models import Outbox
from bot.notify import Listener, Notifier, channel_name
from bot.wakeups import notify_at_commit
from tests.conftest import ON_POSTGRES
from tests.fakes.telegram_api import FakeTelegram
from tests.procs import ROOT, env_for, free_port, healthy, lontar_cmd, start_with_telegram
from tests.waiting import until

pytestmark = pytest.mark.skipif(not ON_POSTGRES,
                                reason="needs PostgreSQL (LONTAR_TEST_DATABASE_URL)")

IDLE_POLL = 10.0  # the leader's fallback poll: far longer than any delivery asserted here
FAST = 2.0  # "at once", with room for a loaded machine
SECRET = "notify-test-secret"
GAP = 0.2


def _turn(chat: int, n: int = 0) -> Inbound:
    return Inbound(channel="telegram", external_id=str(chat), platform_id=f"{chat}-{n}",
                   kind="text", payload={"text": "syarat kia"})


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def leader(tmp_path: Path, tg: FakeTelegram, database_url: str) -> AsyncIterator[Lontar]:
    """A leading process as serve() makes it, its workers polling only every 10 s."""
    app = build(load_settings(data_dir=tmp_path / "leader", telegram_bot_token="123456:TEST-token",
                              telegram_api_base_url=tg.base_url, telegram_poll_timeout=1,
                              quiet_start="00:00", quiet_end="00:00"))
    app.listener = Listener(app.db.engine)
    assert app.telegram is not None
    await app.telegram.start()
    start_senders(app, idle_poll=IDLE_POLL)
    await until(lambda: app.listener is not None and app.listener.listening.is_set())
    await asyncio.sleep(0.3)  # the wake-up every (re)connection brings has found nothing
    yield app
    await stop_senders(app)
    await app.telegram.stop()
    app.close()


@pytest.fixture
async def receiver(tmp_path: Path, leader: Lontar) -> AsyncIterator[Lontar]:
    """Another process on the same schema that does not lead (no senders running)."""
    app = build(load_settings(data_dir=tmp_path / "receiver", role="receiver",
                              telegram_bot_token="123456:TEST-token",
                              telegram_api_base_url="http://127.0.0.1:1"))
    app.notifier = Notifier(app.db.engine)
    yield app
    await app.notifier.close()
    app.close()


async def _delivered(tg: FakeTelegram, chat: int, since: float, timeout: float) -> float:
    """Seconds from `since` to the first message to `chat`."""
    sent = await until(lambda: [s.at for s in tg.sent if s.chat_id == chat], timeout=timeout)
    return float(min(sent)) - since


async def test_a_reply_committed_by_a_receiver_reaches_telegram_at_once(
        leader: Lontar, receiver: Lontar, tg: FakeTelegram) -> None:
    notifier, receiver.notifier = receiver.notifier, None
    await receiver.inbox.handle(_turn(8001))  # no notification: waits for the 10 s poll
    await asyncio.sleep(FAST)
    assert not [s for s in tg.sent if s.chat_id == 8001], "the poll is not 10 s: test is void"
    receiver.notifier = notifier
    latencies = []
    for chat in range(8002, 8012):
        committed = time.monotonic()
        await receiver.inbox.handle(_turn(chat))
        latencies.append(await _delivered(tg, chat, committed, FAST))
    await until(lambda: [s for s in tg.sent if s.chat_id == 8001], timeout=FAST)  # swept along
    assert max(latencies) < FAST, latencies
    print(f"receiver->fake via NOTIFY: median {statistics.median(latencies) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms")


async def test_a_staff_answer_by_a_receiver_wakes_the_leader(
        leader: Lontar, receiver: Lontar, tg: FakeTelegram) -> None:
    """The dashboard and the API wake through `wake_channels`: the same road."""
    await leader.inbox.handle(_turn(8100))  # the leader's own: sent at once, no poll
    await _delivered(tg, 8100, time.monotonic(), FAST)
    with receiver.db.session() as session:  # a staff answer, queued as the services do
        contact = session.exec(select(Outbox.contact_id)).first()
        session.add(Outbox(contact_id=contact, channel="telegram", priority=1,
                           payload={"text": "Jawaban petugas: berkas Anda lengkap."}))
        session.commit()
    before = len(tg.sent)
    queued = time.monotonic()
    receiver.wake_channels(frozenset({"telegram"}))
    await until(lambda: any("petugas" in s.plain for s in tg.sent[before:]), timeout=FAST)
    assert time.monotonic() - queued < FAST


@pytest.fixture
def other_schema(database_url: str) -> Iterator[str]:
    """A second deployment in the same database."""
    schema = f"lontar_test_other_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield make_url(database_url).update_query_dict(
        {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


async def _listening(engine: Engine, heartbeat: float = 30.0,
                     ) -> tuple[Listener, list[str], asyncio.Task[None]]:
    heard: list[str] = []
    listener = Listener(engine, heartbeat=heartbeat)
    task = asyncio.create_task(listener.listen(heard.append, ()))
    await until(listener.listening.is_set)
    return listener, heard, task


async def test_notifications_stay_in_their_schema(database_url: str, other_schema: str) -> None:
    ours, theirs = create_engine(database_url), create_engine(other_schema)
    _, heard, task = await _listening(ours, heartbeat=0.1)  # and through a few heartbeats
    mine, other = Notifier(ours, delay=0.001), Notifier(theirs, delay=0.001)
    try:
        await asyncio.sleep(0.35)
        other.notify("whatsapp")
        await until(lambda: other.sent)
        mine.notify("telegram")
        await until(lambda: heard)
        await asyncio.sleep(0.2)
        assert heard == ["telegram"]
        with ours.connect() as a, theirs.connect() as b:
            names = [channel_name(str(c.execute(text("SELECT current_schema()")).scalar()))
                     for c in (a, b)]
        assert names[0] != names[1]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await mine.close()
        await other.close()
        ours.dispose()
        theirs.dispose()


async def test_the_listener_reconnects_when_its_connection_is_killed(database_url: str) -> None:
    engine = create_engine(database_url)
    listener, heard, task = await _listening(engine)
    notifier = Notifier(engine, delay=0.001)
    with engine.connect() as conn:
        name = channel_name(str(conn.execute(text("SELECT current_schema()")).scalar()))
    try:
        with engine.connect() as conn:  # what a database restart or a proxy does to it
            killed = conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query = :q AND pid <> pg_backend_pid()"), {"q": f"LISTEN {name}"}
            ).scalars().all()
            conn.commit()
        assert killed == [True]
        await until(lambda: not listener.listening.is_set(), timeout=5)
        await until(listener.listening.is_set, timeout=10)
        notifier.notify("telegram")
        await until(lambda: heard, timeout=5)
        assert heard == ["telegram"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await notifier.close()
        engine.dispose()


async def test_rows_the_cli_queues_wake_the_leader(database_url: str, tmp_path: Path) -> None:
    """`lontar broadcast test` runs outside the server: its row woke no sender until the
    leader's next poll. Now the NOTIFY goes with its commit."""
    env = env_for(tmp_path, DATABASE_URL=database_url)

    async def lontar(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *lontar_cmd(*args), cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        return proc.returncode, out.decode()

    _, out = await lontar("broadcast", "create", "--title", "KK untuk semua", "--text",
                          "Setiap keluarga perlu KK.")
    engine = create_engine(database_url)
    _, heard, task = await _listening(engine)
    try:
        await asyncio.sleep(0.3)
        assert heard == []  # creating a draft queues nothing
        await lontar("broadcast", "test", out.split()[1], "--telegram", "5")
        await until(lambda: heard, timeout=5)
        assert heard == ["telegram"]
        with engine.begin() as conn:  # and a transaction rolled back says nothing
            notify_at_commit(conn, {"whatsapp"})
            conn.rollback()
        with engine.begin() as conn:
            notify_at_commit(conn, {"whatsapp", "telegram"})
        await until(lambda: len(heard) == 3, timeout=5)
        assert heard == ["telegram", "telegram", "whatsapp"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        engine.dispose()


@pytest.mark.slow
async def test_two_processes_a_receivers_replies_go_out_at_once(
        tmp_path: Path, database_url: str, tg: FakeTelegram) -> None:
    """The real `lontar` wiring (serve), default 1 s poll. Each update is posted GAP after the
    previous reply, when the leader's sender has gone idle: without the notification each
    reply would wait for its next poll, about 1 - GAP seconds; the median shows which it was.
    (Posted at once, the next reply is committed while the sender is still busy with the
    previous chat, and the sender finds it without any wake-up.)"""
    env = {"TELEGRAM_WEBHOOK_URL": "https://lontar.example/webhooks/telegram",
           "TELEGRAM_WEBHOOK_SECRET": SECRET, "LONTAR_QUIET_START": "00:00",
           "LONTAR_QUIET_END": "00:00"}
    ports = {"leader": free_port(), "receiver": free_port()}
    procs: list[subprocess.Popen[str]] = []
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        for role, port in ports.items():
            (tmp_path / role).mkdir()
            extra = {"LONTAR_ROLE": "receiver"} if role == "receiver" else {}
            procs.append(start_with_telegram(tmp_path / role, port, tg.base_url, **env,
                                             **extra))
            await healthy(port, procs[-1])
        with engine.connect() as conn:
            name = channel_name(str(conn.execute(text("SELECT current_schema()")).scalar()))

        def listening() -> bool:
            with engine.connect() as conn:
                return bool(conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = :q"),
                    {"q": f"LISTEN {name}"}).scalar())

        await until(listening, timeout=20)
        latencies = []
        async with aiohttp.ClientSession() as http:
            for n in range(12):
                chat = 8200 + n
                posted = time.monotonic()
                async with http.post(
                        f"http://127.0.0.1:{ports['receiver']}/webhooks/telegram",
                        json=tg.text(chat, "syarat kia"),
                        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as r:
                    assert r.status == 200
                latencies.append(await _delivered(tg, chat, posted, 10))
                await asyncio.sleep(GAP)
        print(f"two processes, webhook at receiver -> fake: median "
              f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
        assert statistics.median(latencies) < 0.4, latencies
    finally:
        engine.dispose()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
