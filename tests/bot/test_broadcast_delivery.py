"""Broadcast delivery: audiences, approval, batches, pause/resume/cancel, quiet hours, the
reply lane, crash recovery and opt-outs, through the real service and outbox worker."""

from __future__ import annotations

import asyncio
import itertools
import time as time_module
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from bot.app import Lontar
from bot.models import (
    PRIORITY_BROADCAST,
    PRIORITY_REPLY,
    Contact,
    application_t,
    contact_t,
    delivery_t,
    outbox_t,
    subscription_t,
    tag_t,
    topic_t,
)
from bot.outbox import (
    BROADCASTS,
    MAIN,
    Delivered,
    Meta,
    OutboxWorker,
    RateLimiter,
    SendError,
    new_row,
    requeue_in_flight,
)
from bot.quiet import QuietHours
from bot.services import broadcasts, consent
from bot.services.audience import Audience
from bot.services.broadcasts import BroadcastError
from flows.types import Reply
from tests.conftest import ON_POSTGRES
from tests.waiting import until

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)  # rows are due
WITA = ZoneInfo("Asia/Makassar")


class Sender:
    """Records what would reach the platform; can fail for chosen chats."""

    channel = "telegram"

    def __init__(self, fail: dict[str, SendError] | None = None):
        self.sent: list[tuple[str, str]] = []
        self.fail = fail or {}

    async def send(self, contact: Contact, reply: Reply, meta: Meta) -> Delivered:
        if contact.external_id in self.fail:
            raise self.fail[contact.external_id]
        self.sent.append((contact.external_id, reply.text))
        return Delivered(str(len(self.sent)))


def _contact(lontar: Lontar, ext: str, *, channel: str = "telegram", opted_in: bool = True,
             **values: Any) -> int:
    return _tx(lontar, lambda conn: int(conn.execute(insert(contact_t), {
        "channel": channel, "external_id": ext, "language": values.pop("language", "id"),
        "opted_in": opted_in, "created_at": NOW, **values}).inserted_primary_key[0]))


def _tx(lontar: Lontar, fn: Any) -> Any:
    """One transaction on the app's database, for setting up and checking."""
    with lontar.db.engine.begin() as conn:
        return fn(conn)


def _run(lontar: Lontar, fn: Any, *args: Any) -> Any:
    return _tx(lontar, lambda conn: fn(conn, *args))


def _create(lontar: Lontar, audience: Audience | None = None, **kw: Any) -> int:
    return _run(lontar, lambda conn: broadcasts.create(
        conn, lontar.content, title=kw.pop("title", "KK"), text_id=kw.pop("text", "Urus KK"),
        audience=audience, now=NOW, **kw))


def _approved(lontar: Lontar, audience: Audience | None = None, **kw: Any) -> int:
    bid = _create(lontar, audience, **kw)
    _run(lontar, lambda conn: broadcasts.approve(conn, bid, None, NOW))
    return bid


def _start(lontar: Lontar, bid: int, *, batch: int = 1000) -> None:
    _run(lontar, lambda conn: broadcasts.schedule(conn, lontar.content, bid, NOW))
    _run(lontar, lambda conn: broadcasts.tick(conn, lontar.content, NOW, batch=batch))


def _outbox(lontar: Lontar, bid: int) -> list[Any]:
    return _run(lontar, lambda conn: list(conn.execute(
        select(outbox_t).where(outbox_t.c.broadcast_id == bid).order_by(outbox_t.c.id))))


@pytest.fixture
def sync_db(lontar: Lontar) -> Lontar:
    return lontar


# --- audiences --------------------------------------------------------------------------------


def test_audience_filters_pick_exactly_the_right_contacts(sync_db: Lontar) -> None:
    app = sync_db
    ids = {
        "tg-alak": _contact(app, "1", kecamatan="alak", kelurahan="alak:1001"),
        "wa-alak": _contact(app, "62811", channel="whatsapp", kecamatan="alak"),
        "tg-maulafa-en": _contact(app, "2", kecamatan="maulafa", language="en"),
        "tg-none": _contact(app, "3"),
        "web": _contact(app, "web-1", channel="web", kecamatan="alak"),
        "declined": _contact(app, "4", opted_in=False, kecamatan="alak"),
        "blocked": _contact(app, "5", kecamatan="alak", blocked_at=NOW),
    }

    def asked(conn: Any) -> None:
        conn.execute(insert(topic_t), [
            {"contact_id": ids["tg-none"], "topic": "kk-baru", "first_at": NOW, "last_at": NOW},
            {"contact_id": ids["tg-alak"], "topic": "ktp-baru", "first_at": NOW, "last_at": NOW}])
        conn.execute(insert(tag_t), {"contact_id": ids["tg-maulafa-en"], "tag": "rt-05",
                                     "created_at": NOW})
        app_id = conn.execute(insert(application_t), {
            "reg_no": "KK-1", "service": "kk-baru", "office": "dinas", "status": "diproses",
            "verify_kind": "nik_last4", "verify_hmac": "x", "status_changed_at": NOW,
            "created_at": NOW, "updated_at": NOW}).inserted_primary_key[0]
        conn.execute(insert(subscription_t), {"application_id": app_id,
                                              "contact_id": ids["wa-alak"], "created_at": NOW})

    _tx(app, asked)

    def who(**filters: Any) -> set[str]:
        audience = Audience(**filters)
        n = _run(app, lambda conn: broadcasts.reach(conn, app.content, audience))
        bid = _approved(app, audience)
        _start(app, bid)
        got = {r.contact_id for r in _outbox(app, bid)}
        assert n == len(got)  # the size shown is what is queued
        return {k for k, v in ids.items() if v in got}

    assert who() == {"tg-alak", "wa-alak", "tg-maulafa-en", "tg-none"}
    assert who(channels=("whatsapp",)) == {"wa-alak"}
    assert who(languages=("en",)) == {"tg-maulafa-en"}
    assert who(kecamatan=("alak",)) == {"tg-alak", "wa-alak"}
    assert who(kelurahan=("alak:1001",)) == {"tg-alak"}
    assert who(services=("kk-baru", "ktp-baru")) == {"tg-none", "tg-alak"}
    assert who(tags=("rt-05",)) == {"tg-maulafa-en"}
    assert who(open_application=True) == {"wa-alak"}
    assert who(kecamatan=("alak",), channels=("telegram",)) == {"tg-alak"}


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's planner: PostgreSQL plans by statistics")
def test_the_next_batch_is_read_by_id_not_through_the_channel_index(sync_db: Lontar) -> None:
    """Each batch pages on from the cursor by primary key. Through the (channel, external_id)
    index SQLite read and sorted every contact of the channel per batch: 31 ms at 100,000
    contacts on the event loop's thread, every 2 s of a broadcast (bench/broadcast.py)."""
    from sqlalchemy.dialects import sqlite

    from bot.services.audience import batch

    for audience in (Audience(), Audience(channels=("telegram",)),
                     Audience(channels=("telegram",), kecamatan=("alak",), tags=("rt-05",))):
        query = batch(audience, sync_db.content, 10, 50, NOW).compile(
            dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
        plan = _run(sync_db, lambda conn, q=query: " | ".join(
            str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {q}")))
        assert "SEARCH contact USING INTEGER PRIMARY KEY (rowid>?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def test_unknown_filter_values_and_bad_texts_are_refused(sync_db: Lontar) -> None:
    for audience, kw in [(Audience(kecamatan=("atlantis",)), {}),
                         (Audience(services=("paspor",)), {}),
                         (None, {"text": ""}),
                         (None, {"text": "x" * 1001}),
                         (None, {"buttons": ["kk-baru", "ktp-baru", "kia", "akta-kelahiran"]}),
                         (None, {"buttons": ["tidak-ada"]})]:
        with pytest.raises(BroadcastError):
            _create(sync_db, audience, **kw)
    with pytest.raises(ValueError):
        Audience(tags=("Bad Tag!",))


# --- the life cycle ----------------------------------------------------------------------------


def test_approval_is_required_before_sending(sync_db: Lontar) -> None:
    _contact(sync_db, "1")
    bid = _create(sync_db)
    with pytest.raises(BroadcastError, match="belum disetujui"):
        _run(sync_db, lambda conn: broadcasts.schedule(conn, sync_db.content, bid, NOW))
    _run(sync_db, lambda conn: broadcasts.tick(conn, sync_db.content, NOW))
    assert _outbox(sync_db, bid) == []
    _run(sync_db, lambda conn: broadcasts.approve(conn, bid, None, NOW))
    with pytest.raises(BroadcastError):  # approving twice is refused too
        _run(sync_db, lambda conn: broadcasts.approve(conn, bid, None, NOW))
    _start(sync_db, bid)
    assert len(_outbox(sync_db, bid)) == 1


def test_scheduled_broadcast_starts_at_its_time(sync_db: Lontar) -> None:
    _contact(sync_db, "1")
    bid = _approved(sync_db)
    at = NOW + timedelta(hours=2)
    _run(sync_db, lambda conn: broadcasts.schedule(conn, sync_db.content, bid, NOW, at))
    _run(sync_db, lambda conn: broadcasts.tick(conn, sync_db.content, at - timedelta(seconds=1)))
    assert _outbox(sync_db, bid) == []
    _run(sync_db, lambda conn: broadcasts.tick(conn, sync_db.content, at))
    assert len(_outbox(sync_db, bid)) == 1
    with pytest.raises(BroadcastError):  # a time already past
        other = _approved(sync_db)
        _run(sync_db, lambda conn: broadcasts.schedule(conn, sync_db.content, other, NOW,
                                                       NOW - timedelta(hours=1)))


async def test_batches_queue_everyone_once_then_done(sync_db: Lontar) -> None:
    for i in range(25):
        _contact(sync_db, str(100 + i))
    bid = _approved(sync_db)
    _run(sync_db, lambda conn: broadcasts.schedule(conn, sync_db.content, bid, NOW))
    sender = Sender()
    worker = OutboxWorker(sync_db.db, sender, rate=1000, burst=100)
    for _ in range(10):  # small batches with a small window: several ticks are needed
        _run(sync_db, lambda conn: broadcasts.tick(conn, sync_db.content, NOW, batch=7,
                                                   window=5))
        while await worker.drain_once(BROADCASTS):
            pass
    rows = _run(sync_db, lambda conn: list(conn.execute(
        select(delivery_t).where(delivery_t.c.broadcast_id == bid))))
    assert len(rows) == 25 and len({r.contact_id for r in rows}) == 25
    assert sorted(ext for ext, _ in sender.sent) == sorted(str(100 + i) for i in range(25))
    p = _run(sync_db, lambda conn: broadcasts.progress(conn, bid, NOW))
    assert (p.status, p.sent, p.waiting, p.planned) == ("done", 25, 0, 25)
    assert "berhenti" in sender.sent[0][1]  # every outreach message says how to stop


async def test_the_next_batch_waits_for_tokens_while_a_batch_waits_for_answers(
        sync_db: Lontar) -> None:
    """A platform answer takes longer than a send slot at full rate: if the lane claimed its
    next batch only after the last answer of the one before, the bucket would fill up unused
    in between (the bench lost ~14% of the rate that way)."""
    for i in range(6):
        _contact(sync_db, str(i + 1))
    bid = _approved(sync_db)
    _start(sync_db, bid)
    answers = asyncio.Event()
    asked: list[str] = []

    class SlowPlatform(Sender):
        async def send(self, contact: Contact, reply: Reply, meta: Meta) -> Delivered:
            asked.append(contact.external_id)
            await answers.wait()
            return await super().send(contact, reply, meta)

    sender = SlowPlatform()
    worker = OutboxWorker(sync_db.db, sender, rate=1000, burst=100, broadcast_batch=2)
    running = asyncio.create_task(worker.run(idle_poll=0.05))
    try:
        await until(lambda: len(asked) >= 4)  # two batches out before any answer came
        await asyncio.sleep(0.1)
        assert len(asked) == 4  # and no more than two batches at once
        answers.set()
        await until(lambda: len(sender.sent) == 6)
    finally:
        running.cancel()
    assert sorted(ext for ext, _ in sender.sent) == [str(i + 1) for i in range(6)]


async def test_pause_holds_resume_sends_cancel_stops(sync_db: Lontar) -> None:
    for i in range(6):
        _contact(sync_db, str(i + 1))
    bid = _approved(sync_db)
    _start(sync_db, bid)
    sender = Sender()
    worker = OutboxWorker(sync_db.db, sender, rate=1000, burst=100, broadcast_batch=2)
    await worker.drain_once(BROADCASTS)
    assert len(sender.sent) == 2
    held = _run(sync_db, lambda conn: broadcasts.pause(conn, bid, NOW))
    assert held == 4
    assert await worker.drain_once(BROADCASTS) == 0 and len(sender.sent) == 2
    _run(sync_db, lambda conn: broadcasts.resume(conn, bid, NOW))
    await worker.drain_once(BROADCASTS)
    assert len(sender.sent) == 4
    assert _run(sync_db, lambda conn: broadcasts.cancel(conn, bid, NOW)) == 2
    assert await worker.drain_once(BROADCASTS) == 0 and len(sender.sent) == 4
    p = _run(sync_db, lambda conn: broadcasts.progress(conn, bid, NOW))
    assert (p.status, p.sent, p.cancelled) == ("cancelled", 4, 2)
    with pytest.raises(BroadcastError):
        _run(sync_db, lambda conn: broadcasts.resume(conn, bid, NOW))


# --- opt-out in every form ---------------------------------------------------------------------


async def test_opt_outs_and_blocks_are_skipped_counted_and_attributed(sync_db: Lontar) -> None:
    stays = _contact(sync_db, "1")
    _contact(sync_db, "2", opted_in=False, opted_out_at=NOW)  # said no as it was composed
    _contact(sync_db, "3", blocked_at=NOW)  # blocked Lontar as it was composed
    month = NOW - timedelta(days=30)  # long before: not in the audience, not counted
    _contact(sync_db, "6", opted_in=False, opted_out_at=month)
    _contact(sync_db, "7", blocked_at=month)
    late = _contact(sync_db, "4")  # opts out after queueing, before the send
    _contact(sync_db, "5")  # blocks Lontar: Telegram answers 403 on the send
    bid = _approved(sync_db)
    _start(sync_db, bid)
    _run(sync_db, lambda conn: consent.opt_out(conn, late, NOW))
    sender = Sender({"5": SendError("Forbidden: bot was blocked by the user", retryable=False,
                                    blocked=True)})
    worker = OutboxWorker(sync_db.db, sender, rate=1000, burst=100)
    while await worker.drain_once(BROADCASTS):
        pass
    assert [ext for ext, _ in sender.sent] == ["1"]
    # the one who received it opts out the next day: counted against this broadcast
    _run(sync_db, lambda conn: consent.opt_out(conn, stays, NOW + timedelta(days=1)))
    p = _run(sync_db, lambda conn: broadcasts.progress(conn, bid, NOW))
    assert (p.sent, p.opted_out, p.blocked) == (1, 2, 2)
    assert p.opt_outs_after == 3  # contact 4 (before the send), 5 (blocked), 1 (next day)
    report = _run(sync_db, lambda conn: list(broadcasts.report_rows(conn, bid)))
    assert sorted(r["outcome"] for r in report) == [
        "blocked", "opted_out", "sent", "skipped_blocked", "skipped_opted_out"]


# --- quiet hours, with a pinned clock ---------------------------------------------------------


@pytest.mark.parametrize(("local", "until"), [
    ("21:00", "07:00+1"), ("23:59", "07:00+1"), ("03:00", "07:00"), ("06:59", "07:00"),
    ("07:00", None), ("12:00", None), ("20:59", None)])
def test_quiet_hours_overnight(local: str, until: str | None) -> None:
    quiet = QuietHours(time(21), time(7), WITA)
    h, m = map(int, local.split(":"))
    now = datetime(2026, 11, 23, h, m, tzinfo=WITA)
    got = quiet.until(now.astimezone(UTC))
    if until is None:
        assert got is None
    else:
        day = now.date() + timedelta(days=1 if until.endswith("+1") else 0)
        assert got == datetime(day.year, day.month, day.day, 7, tzinfo=WITA)


def test_quiet_hours_in_the_day_and_none() -> None:
    lunch = QuietHours(time(12), time(13), WITA)
    assert lunch.until(datetime(2026, 11, 23, 12, 30, tzinfo=WITA)) == datetime(
        2026, 11, 23, 13, tzinfo=WITA)
    assert lunch.until(datetime(2026, 11, 23, 13, 0, tzinfo=WITA)) is None
    assert QuietHours(time(0), time(0), WITA).until(NOW) is None


class Pinned:
    """Quiet hours at a clock the test sets."""

    def __init__(self, quiet: QuietHours, now: datetime):
        self.quiet, self.now = quiet, now

    def until(self, _now: datetime) -> datetime | None:
        return self.quiet.until(self.now)


async def test_night_pauses_the_broadcast_not_the_replies(sync_db: Lontar) -> None:
    cid = _contact(sync_db, "1")
    _contact(sync_db, "2")
    bid = _approved(sync_db)
    _start(sync_db, bid)
    _tx(sync_db, lambda conn: conn.execute(
        insert(outbox_t), new_row(cid, "telegram", Reply("balasan").to_dict(),
                                  PRIORITY_REPLY, NOW)))
    clock = Pinned(QuietHours(time(21), time(7), WITA), datetime(2026, 11, 23, 22, tzinfo=WITA))
    sender = Sender()
    worker = OutboxWorker(sync_db.db, sender, rate=1000, burst=100, quiet=clock)
    assert await worker.drain_once(BROADCASTS) == 0  # 22:00: the broadcast waits
    await worker.drain_once(MAIN)
    assert [text for _, text in sender.sent] == ["balasan"]  # the reply does not
    clock.now = datetime(2026, 11, 24, 7, 0, tzinfo=WITA)  # morning: it goes on
    await worker.drain_once(BROADCASTS)
    assert len(sender.sent) == 3
    assert {r.status for r in _outbox(sync_db, bid)} == {"sent"}


# --- replies first -------------------------------------------------------------------------------


async def test_a_reply_waits_at_most_one_slot_behind_broadcast_sends() -> None:
    limiter = RateLimiter(rate=50, burst=1)
    order: list[str] = []

    async def take(name: str, priority: int) -> None:
        await limiter.acquire(priority)
        order.append(name)

    tasks = [asyncio.create_task(take(f"b{i}", PRIORITY_BROADCAST)) for i in range(20)]
    await asyncio.sleep(0.05)  # a few broadcast sends go, the rest wait in line
    before = len(order)
    await take("reply", PRIORITY_REPLY)
    await asyncio.gather(*tasks)
    assert order.index("reply") <= before + 1  # at most one broadcast send went first
    assert len(order) == 21


async def test_limiter_still_keeps_the_rate() -> None:
    limiter = RateLimiter(rate=20, burst=1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(*(limiter.acquire(i % 3) for i in range(11)))
    assert loop.time() - start >= 0.45  # 10 intervals of 50 ms, the first token is free


async def test_the_window_never_lets_more_than_the_limit_through() -> None:
    """The bucket alone would let 12 go in 0.2 s here; the window lets 5 per 0.25 s."""
    limiter = RateLimiter(rate=1000, burst=10, limit=5, window=0.25)
    times: list[float] = []

    async def take(priority: int) -> None:
        await limiter.acquire(priority)
        times.append(time_module.monotonic())

    await asyncio.gather(*(take(i % 3) for i in range(12)))
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 0.25) <= 5
    assert times[-1] - times[0] >= 0.5  # three windows for twelve


# --- crash recovery ------------------------------------------------------------------------------


def test_after_a_crash_only_the_broadcast_row_in_flight_is_in_doubt(sync_db: Lontar) -> None:
    cid = _contact(sync_db, "1")
    rows = [new_row(cid, "telegram", Reply(t).to_dict(), p, NOW)
            for t, p in (("reply", PRIORITY_REPLY), ("b-claimed", PRIORITY_BROADCAST),
                         ("b-in-flight", PRIORITY_BROADCAST))]

    def crash_state(conn: Any) -> None:
        ids = conn.execute(insert(outbox_t).returning(outbox_t.c.id, sort_by_parameter_order=True),
                           rows).scalars().all()
        for rid, status in zip(ids, ("sending", "sending", "in_flight"), strict=True):
            conn.execute(outbox_t.update().where(outbox_t.c.id == rid).values(status=status))

    _tx(sync_db, crash_state)
    _tx(sync_db, requeue_in_flight)
    got = _run(sync_db, lambda conn: {r.payload["text"]: r.status
                                      for r in conn.execute(select(outbox_t))})
    assert got == {"reply": "pending", "b-claimed": "pending", "b-in-flight": "unconfirmed"}


async def test_the_scheduler_queues_in_small_steps_with_the_loop_free_between(
        lontar: Lontar) -> None:
    """1,000 recipients were queued in one transaction, on the event loop's thread (SQLite):
    60-100 ms in which no send left, after which the sends stamped before went out together
    (bench/broadcast.py: Telegram 429s). Now each step is QUEUE_STEP recipients and other
    work runs between steps."""
    from bot.jobs import QUEUE_STEP, run_broadcasts

    _tx(lontar, lambda conn: conn.execute(insert(contact_t), [
        {"channel": "telegram", "external_id": f"step-{i}", "language": "id",
         "opted_in": True, "created_at": NOW} for i in range(2 * QUEUE_STEP + 50)]))
    bid = _approved(lontar)
    _run(lontar, lambda conn: broadcasts.schedule(conn, lontar.content, bid, NOW))
    seen: list[int] = []  # rows queued, each time other work got the loop
    running = True

    async def other_work() -> None:
        while running:
            seen.append(len(_outbox(lontar, bid)))
            await asyncio.sleep(0)

    task = asyncio.create_task(other_work())
    await asyncio.sleep(0)  # it has started
    await run_broadcasts(lontar)
    running = False
    await task
    assert len(_outbox(lontar, bid)) == 2 * QUEUE_STEP + 50  # the whole batch in one run
    steps = [b - a for a, b in itertools.pairwise(seen) if b > a]
    assert len(steps) >= 2 and max(steps) <= QUEUE_STEP, seen
