"""/readyz and /metrics on a real app: turns, sends and the backlog as Prometheus sees them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from bot.app import Lontar, build, start_senders, stop_senders, web_app
from bot.config import load_settings
from bot.inbox import Inbound
from bot.metrics import error_code
from bot.models import Broadcast, Complaint, Contact, Outbox
from bot.outbox import OutboxWorker, SendError
from flows.types import Reply
from tests.bot.test_outbox import FakeSender

TOKEN = "scrape-" + "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[Lontar]:
    app = build(load_settings(data_dir=tmp_path, web_rate_per_minute=1000,
                              metrics_token=TOKEN))
    yield app
    app.close()


@pytest.fixture
async def scraper(metered: Lontar) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(web_app(metered))) as c:
        yield c


class TelegramStandIn(FakeSender):
    """test_outbox's recording sender, on the telegram channel the metrics are labelled by."""

    channel = "telegram"


async def _scrape(client: TestClient) -> Samples:
    resp = await client.get("/metrics", headers=AUTH)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(await resp.text())
            for s in family.samples}


def _at(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _queue(lontar: Lontar, *texts: str, priority: int = 1,
           broadcast_id: int | None = None) -> None:
    with lontar.db.session() as s:
        contact = Contact(channel="telegram", external_id=uuid.uuid4().hex[:10], opted_in=True)
        s.add(contact)
        s.flush()
        for text in texts:
            s.add(Outbox(contact_id=contact.id or 0, channel="telegram", priority=priority,
                         payload=Reply(text).to_dict(), broadcast_id=broadcast_id))
        s.commit()


# --- /metrics: protection ---------------------------------------------------------------------

async def test_metrics_is_404_without_a_configured_token(client: TestClient) -> None:
    assert (await client.get("/metrics", headers=AUTH)).status == 404


async def test_metrics_needs_the_right_bearer_token(scraper: TestClient) -> None:
    assert (await scraper.get("/metrics")).status == 401
    for wrong in (f"Bearer {TOKEN}x", TOKEN, "Bearer ", f"Basic {TOKEN}"):
        resp = await scraper.get("/metrics", headers={"Authorization": wrong})
        assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    assert (await scraper.get("/metrics", headers=AUTH)).status == 200


# --- /metrics: what is measured ----------------------------------------------------------------

async def test_a_web_chat_turn_is_counted_and_timed(scraper: TestClient) -> None:
    before = await _scrape(scraper)
    resp = await scraper.post("/api/chat", json={
        "session": "s" + "b" * 31, "message_id": uuid.uuid4().hex, "command": "start"})
    assert resp.status == 200
    after = await _scrape(scraper)
    for name in ("lontar_inbound_messages_total", "lontar_turns_total",
                 "lontar_turn_seconds_count"):
        assert _at(after, name, channel="web") == _at(before, name, channel="web") + 1, name
    assert _at(after, "lontar_turn_seconds_sum", channel="web") > 0
    assert _at(after, "lontar_turn_seconds_bucket", channel="web", le="+Inf") == 1
    assert not [name for name, _ in after if name.endswith("_created")]


async def test_a_webhook_turn_is_timed_from_its_receipt(metered: Lontar,
                                                         scraper: TestClient) -> None:
    update = Inbound("telegram", "4242", uuid.uuid4().hex, "command", {"name": "start"})
    received = await metered.inbox.receive(update)
    assert not (await metered.inbox.receive(update)).new  # a redelivery: not a new message
    samples = await _scrape(scraper)
    assert _at(samples, "lontar_inbound_messages_total", channel="telegram") == 1
    assert _at(samples, "lontar_turns_total", channel="telegram") == 0
    await asyncio.sleep(0.02)
    assert await metered.inbox.process(received.inbound_id)
    samples = await _scrape(scraper)
    assert _at(samples, "lontar_turns_total", channel="telegram") == 1
    assert _at(samples, "lontar_turn_seconds_sum", channel="telegram") >= 0.02


async def test_sends_errors_and_outbox_depth(metered: Lontar, scraper: TestClient) -> None:
    _queue(metered, "ok-1", "ok-2")
    _queue(metered, "slow-down")
    _queue(metered, "gone")
    _queue(metered, "later", priority=0)
    samples = await _scrape(scraper)
    assert _at(samples, "lontar_outbox_depth", channel="telegram", priority="notification",
               status="pending") == 4
    assert _at(samples, "lontar_outbox_depth", channel="telegram", priority="reply",
               status="pending") == 1
    sender = TelegramStandIn({
        "slow-down": SendError("Flood control exceeded", retryable=True, retry_after=30),
        "gone": SendError("Forbidden: bot was blocked by the user", retryable=False,
                          blocked=True)})
    worker = OutboxWorker(metered.db, sender, rate=1000, burst=100, metrics=metered.metrics)
    while await worker.drain_once():
        pass
    assert sorted(sender.sent) == ["later", "ok-1", "ok-2"]
    samples = await _scrape(scraper)
    assert _at(samples, "lontar_outbox_sends_total", channel="telegram") == 3
    assert _at(samples, "lontar_outbox_send_seconds_count", channel="telegram") == 3
    assert _at(samples, "lontar_outbox_send_errors_total", channel="telegram", code="429") == 1
    assert _at(samples, "lontar_outbox_send_errors_total", channel="telegram",
               code="blocked") == 1
    # only the row waiting to be retried is still queued
    assert _at(samples, "lontar_outbox_depth", channel="telegram", priority="notification",
               status="pending") == 1
    assert _at(samples, "lontar_outbox_depth", channel="telegram", priority="reply",
               status="pending") == 0


def test_error_codes_are_a_small_fixed_set() -> None:
    assert error_code(SendError("x", retryable=True, retry_after=3)) == "429"
    assert error_code(SendError("x", retryable=False, opted_out=True)) == "opted_out"
    assert error_code(SendError("no template", retryable=False, unsendable="window")) == (
        "unsendable")
    assert error_code(SendError("Timed out", retryable=True)) == "timeout"
    assert error_code(SendError("chat 12345: something new", retryable=False)) == "other"
    assert error_code(RuntimeError("adapter bug")) == "other"


async def test_broadcast_progress(metered: Lontar, scraper: TestClient) -> None:
    with metered.db.session() as s:
        s.add(Broadcast(title="draft", text_id="x"))
        sending = Broadcast(title="jemput bola", text_id="y", status="sending", planned=3)
        s.add(sending)
        s.commit()
        bid = sending.id
    _queue(metered, "b-1", "b-2", priority=2, broadcast_id=bid)
    sender = TelegramStandIn({"b-2": SendError("later", retryable=True, retry_after=60)})
    worker = OutboxWorker(metered.db, sender, rate=1000, burst=100)
    while await worker.drain_once():
        pass
    samples = await _scrape(scraper)
    assert _at(samples, "lontar_broadcasts", status="sending") == 1
    assert _at(samples, "lontar_broadcasts", status="draft") == 1
    assert ("lontar_broadcasts", frozenset({("status", "done")})) in samples  # 0, not absent
    assert _at(samples, "lontar_broadcast_sending_planned") == 3
    assert _at(samples, "lontar_broadcast_sending_sent") == 1
    assert _at(samples, "lontar_outbox_depth", channel="telegram", priority="broadcast",
               status="pending") == 1


async def test_open_and_overdue_tickets(metered: Lontar, scraper: TestClient) -> None:
    assert metered.content.complaints is not None
    states = metered.content.complaints.state
    opened = next(s.id for s in states if s.type == "open")
    closed = next(s.id for s in states if s.type == "closed")
    today = datetime.now(UTC).date()

    def ticket(state: str, due: date) -> Complaint:
        return Complaint(
            number=f"ADU-2026-{uuid.uuid4().hex[:6].upper()}", kind="pengaduan",
            service="ktp", office="kupang", category="lainnya", dimension="responsiveness",
            text="antrian lama", text_hash=uuid.uuid4().hex, happened="today",
            identity="named", state=state, due_on=due)

    with metered.db.session() as s:
        s.add(ticket(opened, today - timedelta(days=3)))  # open, overdue
        s.add(ticket(opened, today + timedelta(days=3)))  # open, in time
        s.add(ticket(closed, today - timedelta(days=3)))  # closed: never overdue
        s.commit()
    samples = await _scrape(scraper)
    assert _at(samples, "lontar_complaints_open", state=opened) == 2
    assert sum(v for (name, _), v in samples.items() if name == "lontar_complaints_open") == 2
    assert _at(samples, "lontar_complaints_overdue") == 1


# --- /readyz ---------------------------------------------------------------------------------

async def test_ready_when_database_and_content_are(client: TestClient) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ready" and body["failing"] == []
    assert body["checks"]["database"] == "ok" and body["checks"]["content"] == "ok"
    assert (await client.get("/healthz")).status == 200


async def test_not_ready_when_the_database_is_unreachable(client: TestClient,
                                                          lontar: Lontar,
                                                          tmp_path: Path) -> None:
    if lontar.db.engine.dialect.name == "sqlite":
        (tmp_path / "not-a-folder").write_text("")
        bad = create_engine(f"sqlite:///{tmp_path / 'not-a-folder' / 'lontar.db'}")
    else:  # nothing listens on port 1
        bad = create_engine(lontar.db.engine.url.set(port=1),
                            connect_args={"connect_timeout": 2})
    good, lontar.db.engine = lontar.db.engine, bad
    try:
        resp = await client.get("/readyz")
    finally:
        lontar.db.engine = good
        bad.dispose()
    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "not ready" and body["failing"] == ["database"]
    assert body["checks"]["database"].startswith("unreachable")
    assert "not-a-folder" not in body["checks"]["database"]  # no paths or hosts leak
    assert (await client.get("/readyz")).status == 200  # back once the database is


async def test_not_ready_when_a_started_sender_has_died(client: TestClient,
                                                        lontar: Lontar) -> None:
    lontar.workers["telegram"] = OutboxWorker(lontar.db, TelegramStandIn(), rate=1000)
    start_senders(lontar)
    try:
        resp = await client.get("/readyz")
        assert resp.status == 200
        assert (await resp.json())["checks"]["sender:telegram"] == "ok"
        task = lontar.sender_tasks[0]
        task.cancel()  # the sender dies
        await asyncio.gather(task, return_exceptions=True)
        resp = await client.get("/readyz")
        assert resp.status == 503
        body = await resp.json()
        assert body["failing"] == ["sender:telegram"]
        assert body["checks"]["sender:telegram"] == "stopped"
        lontar.senders_expected = False  # a process that sends nothing on purpose
        assert (await client.get("/readyz")).status == 200
    finally:
        await stop_senders(lontar)
