"""An outreach broadcast on WhatsApp, against the fake Graph API: free-form with buttons inside
the 24-hour window, the marketing template outside it, within the day's budget of
business-initiated recipients (the rest wait for 07:00 WITA the next day), and every form of
"stop" (the preference webhook before the send, error 131050 after it) counted in the report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, select, update

from bot.app import Lontar, build, start_channels, stop_channels, web_app
from bot.config import load_settings
from bot.models import contact_t, outbox_t
from bot.services import broadcasts
from bot.services.audience import Audience
from tests.fakes.whatsapp_api import FakeWhatsApp
from tests.waiting import until

TOKEN, PHONE_ID, SECRET = "TEST-TOKEN", "1234567890", "app-secret"
MARKETING = "sosialisasi_dukcapil"
TEXT = "Jemput bola KTP-el di Kelurahan Oebobo, Sabtu 08.00-12.00.\nBawa KK asli."
WITA = ZoneInfo("Asia/Makassar")
INSIDE = "6281100000001"  # wrote to the office an hour ago: free-form
STOPPED_AT_META = "6281100000002"  # pressed "stop" in WhatsApp; the webhook never came
OUTSIDE = ("6281100000003", "6281100000004", "6281100000005")
STOPS_FIRST = "6281100000006"  # presses "stop" after queueing, before the send


@dataclass
class Office:
    app: Lontar
    fake: FakeWhatsApp
    client: TestClient[Any, Any]

    @property
    def url(self) -> str:
        return str(self.client.make_url("/webhooks/whatsapp"))

    def tx(self, fn: Any) -> Any:
        with self.app.db.engine.begin() as conn:
            return fn(conn)

    def rows(self, bid: int) -> dict[str, Any]:
        """wa_id -> the broadcast's outbox row for that contact."""
        rows: dict[str, Any] = self.tx(lambda conn: {r.external_id: r for r in conn.execute(
            select(outbox_t, contact_t.c.external_id)
            .join(contact_t, contact_t.c.id == outbox_t.c.contact_id)
            .where(outbox_t.c.broadcast_id == bid))})
        return rows


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Office]:
    async with FakeWhatsApp(token=TOKEN, phone_number_id=PHONE_ID, app_secret=SECRET) as fake:
        fake.register_template(MARKETING, "id", body_params=1, category="MARKETING")
        app = build(load_settings(
            data_dir=tmp_path, whatsapp_access_token=TOKEN, whatsapp_phone_number_id=PHONE_ID,
            whatsapp_app_secret=SECRET, whatsapp_verify_token="verify-me",
            whatsapp_api_base_url=fake.base_url, whatsapp_template_marketing=MARKETING,
            whatsapp_daily_initiated=2, quiet_start="00:00", quiet_end="00:00"))
        async with TestClient(TestServer(web_app(app))) as client:
            yield Office(app, fake, client)
        await stop_channels(app)
        app.close()


def _contacts(office: Office, inside: tuple[str, ...], outside: tuple[str, ...]) -> None:
    now = datetime.now(UTC)
    office.tx(lambda conn: conn.execute(insert(contact_t), [
        {"channel": "whatsapp", "external_id": wa_id, "language": "id", "opted_in": True,
         "consent_at": now - timedelta(days=30), "created_at": now - timedelta(days=30),
         "last_inbound_at": now - (timedelta(hours=1) if wa_id in inside else timedelta(days=3))}
        for wa_id in (*inside, *outside)]))
    for wa_id in inside:
        office.fake.user_message(wa_id)


def _queue(office: Office, buttons: list[str] | None = None) -> int:
    """Compose, approve, schedule and queue the broadcast as staff and the scheduler do."""
    now = datetime.now(UTC)

    def run(conn: Any) -> int:
        content = office.app.content
        bid = broadcasts.create(conn, content, title="Jemput bola", text_id=TEXT,
                                buttons=buttons or [], audience=Audience(channels=("whatsapp",)),
                                now=now - timedelta(minutes=10))
        broadcasts.approve(conn, bid, None, now)
        broadcasts.schedule(conn, content, bid, now)
        broadcasts.tick(conn, content, now)
        return bid

    return int(office.tx(run))


def _tomorrow_seven() -> datetime:
    local = datetime.now(WITA) + timedelta(days=1)
    return local.replace(hour=7, minute=0, second=0, microsecond=0).astimezone(UTC)


def _param(body: dict[str, Any]) -> str:
    return str(body["template"]["components"][0]["parameters"][0]["text"])


async def test_window_template_budget_and_stops(office: Office) -> None:
    fake = office.fake
    _contacts(office, (INSIDE,), (STOPPED_AT_META, *OUTSIDE, STOPS_FIRST))
    fake.marketing_stopped.add(STOPPED_AT_META)
    bid = _queue(office, buttons=["ktp-baru"])
    # the stop button, after the broadcast was queued and before anything was sent
    status, _ = await fake.deliver(office.url, fake.user_preferences(STOPS_FIRST, "stop"))
    assert status == 200
    expected_defer = {_tomorrow_seven()}
    await start_channels(office.app)
    office.app.wake("whatsapp", 0)

    # today: the window's contact free-form, two outside it by template, then the budget
    def deferred() -> bool:
        later = datetime.now(UTC) + timedelta(hours=1)
        return all(r.status == "pending" and r.next_attempt_at > later
                   for w, r in office.rows(bid).items() if w in OUTSIDE[1:])

    await until(lambda: len(fake.sent) == 3 and deferred())
    expected_defer.add(_tomorrow_seven())  # the same unless midnight passed meanwhile
    inside = fake.sent_to(INSIDE)
    assert [s.type for s in inside] == ["interactive"]
    assert TEXT in inside[0].text and "berhenti" in inside[0].text
    assert [i for i, _ in inside[0].buttons] == ["go:s:ktp-baru"]
    templates = [s for s in fake.sent if s.type == "template"]
    assert [s.to for s in templates] == [STOPPED_AT_META, OUTSIDE[0]]
    for s in templates:
        assert s.body["template"]["name"] == MARKETING
        assert s.body["template"]["language"] == {"code": "id"}
        assert _param(s.body).startswith(TEXT.replace("\n", " · "))
        assert "berhenti" in _param(s.body) and "\n" not in _param(s.body)
    assert not fake.sent_to(STOPS_FIRST)
    rows = office.rows(bid)
    assert (rows[STOPS_FIRST].status, rows[STOPS_FIRST].unsendable_reason) == (
        "failed", "opted_out")
    for wa_id in OUTSIDE[1:]:  # deferred to 07:00 WITA the next day, no attempt counted
        at = rows[wa_id].next_attempt_at
        assert any(abs(at - d) < timedelta(seconds=1) for d in expected_defer), at
        assert rows[wa_id].attempts == 0
    assert rows[OUTSIDE[0]].template == MARKETING and rows[INSIDE].template is None

    # Meta reports the template to the user who had stopped marketing messages as failed
    assert [s.to for s in fake.sent if s.failed_code == 131050] == [STOPPED_AT_META]
    assert await fake.flush_statuses(office.url) == [200]
    contact = office.tx(lambda conn: conn.execute(select(contact_t).where(
        contact_t.c.external_id == STOPPED_AT_META)).one())
    assert not contact.opted_in and contact.opted_out_at is not None

    # the next day: today's sends move to yesterday, the deferred rows come due
    def next_day(conn: Any) -> None:
        for rid, sent_at in conn.execute(select(outbox_t.c.id, outbox_t.c.sent_at)
                                         .where(outbox_t.c.template.is_not(None))).all():
            conn.execute(update(outbox_t).where(outbox_t.c.id == rid)
                         .values(sent_at=sent_at - timedelta(days=1)))
        conn.execute(update(outbox_t).where(outbox_t.c.broadcast_id == bid,
                                            outbox_t.c.status == "pending")
                     .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))

    office.tx(next_day)
    assert office.app.whatsapp is not None  # the sender's memory of today's budget too
    office.app.whatsapp.sender._initiated = (date.min, set())
    office.app.wake("whatsapp", 0)
    await until(lambda: all(fake.sent_to(w) for w in OUTSIDE[1:]))
    assert [s.to for s in fake.sent if s.type == "template"][2:] == list(OUTSIDE[1:])

    def done(conn: Any) -> bool:  # the scheduler's tick finishes a broadcast with none left
        broadcasts.tick(conn, office.app.content, datetime.now(UTC))
        return broadcasts.progress(conn, bid, datetime.now(UTC)).status == "done"

    await until(lambda: office.tx(done))
    p = office.tx(lambda conn: broadcasts.progress(conn, bid, datetime.now(UTC)))
    assert (p.queued, p.sent, p.opted_out, p.failed, p.waiting) == (6, 4, 2, 0, 0)
    assert p.opt_outs_after == 2  # both stops came after the broadcast was queued to them
    report = {r["contact_id"]: r for r in office.tx(
        lambda conn: list(broadcasts.report_rows(conn, bid)))}
    outcomes = sorted((r["outcome"], r["whatsapp_template"]) for r in report.values())
    assert outcomes == [("opted_out", ""), ("opted_out", MARKETING), ("sent", ""),
                        ("sent", MARKETING), ("sent", MARKETING), ("sent", MARKETING)]
    assert len(fake.sent) == 5  # nobody twice, nothing to the one who stopped first


async def test_budget_holds_while_sends_are_in_flight(office: Office) -> None:
    """The Graph API takes a while to answer; sends overlap, yet only the budget goes out."""
    fake = office.fake
    fake.delay = 0.3
    recipients = tuple(f"62812000000{i:02d}" for i in range(6))
    _contacts(office, (), recipients)
    bid = _queue(office)
    await start_channels(office.app)
    office.app.wake("whatsapp", 0)

    def settled() -> bool:  # every row sent, or deferred to another day
        later = datetime.now(UTC) + timedelta(hours=1)
        return all(r.status == "sent" or (r.status == "pending" and r.next_attempt_at > later)
                   for r in office.rows(bid).values())

    await until(settled)
    statuses = sorted(r.status for r in office.rows(bid).values())
    assert (len([s for s in fake.sent if s.type == "template"]), statuses) == (
        2, ["pending"] * 4 + ["sent"] * 2)
