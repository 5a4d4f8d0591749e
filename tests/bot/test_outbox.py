"""The push-channel worker, with a fake sender: priorities, retries, permanent failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot.app import Lontar
from bot.models import Contact, Outbox
from bot.outbox import (
    Delivered,
    Meta,
    OutboxWorker,
    RateLimiter,
    SendError,
    requeue_in_flight,
)
from flows.types import Reply


class FakeSender:
    channel = "fake"

    def __init__(self, fail: dict[str, SendError] | None = None):
        self.sent: list[str] = []
        self.fail = fail or {}

    async def send(self, contact: Contact, reply: Reply, meta: Meta) -> Delivered:
        if reply.text in self.fail:
            raise self.fail.pop(reply.text)
        self.sent.append(reply.text)
        return Delivered(f"pm-{len(self.sent)}")


def _queue(lontar: Lontar, *items: tuple[str, int], chat: str = "c1",
           opted_in: bool = True) -> int:
    with lontar.db.session() as s:
        contact = Contact(channel="fake", external_id=chat, opted_in=opted_in)
        s.add(contact)
        s.flush()
        for text, prio in items:
            s.add(Outbox(contact_id=contact.id, channel="fake", priority=prio,  # type: ignore[arg-type]
                         payload=Reply(text).to_dict()))
        s.commit()
        return contact.id or 0


async def test_priorities_then_age(lontar: Lontar) -> None:
    _queue(lontar, ("broadcast-1", 2), ("notify-1", 1), ("reply-1", 0), ("reply-2", 0))
    sender = FakeSender()
    worker = OutboxWorker(lontar.db, sender, rate=1000, burst=100)
    while await worker.drain_once():
        pass
    assert sender.sent == ["reply-1", "reply-2", "notify-1", "broadcast-1"]
    with lontar.db.session() as s:
        rows = s.exec(select(Outbox)).all()
    assert {r.status for r in rows} == {"sent"} and all(r.platform_message_id for r in rows)


async def test_retryable_error_backs_off_and_keeps_the_row(lontar: Lontar) -> None:
    _queue(lontar, ("hello", 0))
    sender = FakeSender({"hello": SendError("429", retryable=True, retry_after=30)})
    worker = OutboxWorker(lontar.db, sender, rate=1000)
    await worker.drain_once()
    with lontar.db.session() as s:
        row = s.exec(select(Outbox)).one()
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at > datetime.now(UTC) + timedelta(seconds=20)
    assert await worker.drain_once() == 0  # not due yet
    with lontar.db.session() as s:
        row = s.get(Outbox, row.id)
        row.next_attempt_at = datetime.now(UTC)  # type: ignore[union-attr]
        s.add(row)
        s.commit()
    await worker.drain_once()
    assert sender.sent == ["hello"]


async def test_blocked_contact_is_marked_and_not_retried(lontar: Lontar) -> None:
    contact_id = _queue(lontar, ("hi", 0))
    sender = FakeSender({"hi": SendError("403 blocked", retryable=False, blocked=True)})
    await OutboxWorker(lontar.db, sender, rate=1000).drain_once()
    with lontar.db.session() as s:
        assert s.exec(select(Outbox.status)).one() == "failed"
        assert s.get(Contact, contact_id).blocked_at is not None  # type: ignore[union-attr]


async def test_gives_up_after_max_attempts(lontar: Lontar) -> None:
    _queue(lontar, ("x", 0))

    class AlwaysDown(FakeSender):
        async def send(self, contact: Contact, reply: Reply, meta: Meta) -> Delivered:
            raise SendError("network", retryable=True, retry_after=0.0001)

    worker = OutboxWorker(lontar.db, AlwaysDown(), rate=1000, max_attempts=3)
    for _ in range(10):
        await worker.drain_once()
        with lontar.db.session() as s:
            row = s.exec(select(Outbox)).one()
            row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
            s.add(row)
            s.commit()
    with lontar.db.session() as s:
        row = s.exec(select(Outbox)).one()
    assert row.status == "failed" and row.attempts == 3


async def test_adapter_bug_does_not_stop_the_queue(lontar: Lontar) -> None:
    """Another chat still gets its message; the failing chat keeps its order for later."""
    _queue(lontar, ("boom", 0), ("after boom", 0), chat="a")
    _queue(lontar, ("fine", 0), chat="b")

    class Buggy(FakeSender):
        async def send(self, contact: Contact, reply: Reply, meta: Meta) -> Delivered:
            if reply.text == "boom":
                raise KeyError("bug")
            return await super().send(contact, reply, meta)

    sender = Buggy()
    await OutboxWorker(lontar.db, sender, rate=1000, burst=10).drain_once()
    assert sender.sent == ["fine"]
    with lontar.db.session() as s:
        statuses = {r.payload["text"]: r.status for r in s.exec(select(Outbox)).all()}
    assert statuses == {"boom": "pending", "after boom": "pending", "fine": "sent"}


def test_rows_in_flight_at_a_crash_are_requeued(lontar: Lontar) -> None:
    _queue(lontar, ("a", 0), ("b", 0))
    with lontar.db.session() as s:
        rows = s.exec(select(Outbox)).all()
        rows[0].status, rows[1].status = "sending", "sent"
        s.add_all(rows)
        s.commit()
    with lontar.db.engine.begin() as conn:
        assert requeue_in_flight(conn) == 1
    with lontar.db.session() as s:
        assert sorted(s.exec(select(Outbox.status)).all()) == ["pending", "sent"]


async def test_rate_limiter_spaces_sends(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With a fake clock: 5 sends at 2/s need 2 seconds of waiting after the first burst."""
    import bot.outbox as outbox_mod

    now = [100.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(outbox_mod.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(outbox_mod.asyncio, "sleep", fake_sleep)
    limiter = RateLimiter(rate=2, burst=1)
    for _ in range(5):
        await limiter.acquire()
    assert abs(sum(slept) - 2.0) < 1e-6


async def test_per_chat_limit_defers_instead_of_blocking_others(lontar: Lontar) -> None:
    _queue(lontar, *[(f"a{i}", 0) for i in range(5)], chat="a")
    _queue(lontar, ("b0", 0), chat="b")
    sender = FakeSender()
    worker = OutboxWorker(lontar.db, sender, rate=1000, burst=100, per_chat_rate=1,
                          per_chat_burst=3)
    await worker.drain_once()
    assert sorted(sender.sent) == ["a0", "a1", "a2", "b0"]
    assert [t for t in sender.sent if t.startswith("a")] == ["a0", "a1", "a2"]  # in order
    with lontar.db.session() as s:
        later = s.exec(select(Outbox).where(Outbox.status == "pending")).all()
    assert sorted(r.payload["text"] for r in later) == ["a3", "a4"]
    assert all(r.next_attempt_at > datetime.now(UTC) for r in later) and worker.stats.deferred == 2


async def test_blocked_contacts_rows_are_skipped_at_claim(lontar: Lontar) -> None:
    contact_id = _queue(lontar, ("x", 0), ("y", 0))
    with lontar.db.session() as s:
        c = s.get(Contact, contact_id)
        c.blocked_at = datetime.now(UTC)  # type: ignore[union-attr]
        s.add(c)
        s.commit()
    sender = FakeSender()
    assert await OutboxWorker(lontar.db, sender, rate=1000).drain_once() == 0
    assert sender.sent == []
    with lontar.db.session() as s:
        assert set(s.exec(select(Outbox.status)).all()) == {"failed"}


async def test_outreach_only_to_opted_in_contacts(lontar: Lontar) -> None:
    _queue(lontar, ("reply", 0), ("broadcast", 2), chat="no", opted_in=False)
    sender = FakeSender()
    await OutboxWorker(lontar.db, sender, rate=1000, burst=10).drain_once()
    assert sender.sent == ["reply"]
    with lontar.db.session() as s:
        row = s.exec(select(Outbox).where(Outbox.priority == 2)).one()
    assert row.status == "failed" and "opted in" in (row.last_error or "")
