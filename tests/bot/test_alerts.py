"""Staff alerts: deadlines before and after, urgent tickets, delivery to staff Telegram."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.app import Lontar, build, recover, start_channels, stop_channels
from bot.config import load_settings
from bot.jobs import check_deadlines
from bot.models import alert_t, complaint_t, outbox_t
from bot.services import alerts
from bot.services.complaints import add_working_days
from bot.services.staff import create_user
from tests.bot.dashboard_helpers import PASSWORD, file_complaint
from tests.fakes.telegram_api import FakeTelegram
from tests.waiting import until

MONDAY = date(2026, 11, 16)
OPEN = ["baru", "diverifikasi", "diproses"]


def _alerts(lontar: Lontar) -> list[tuple[str, int | None]]:
    with lontar.db.engine.connect() as conn:
        return sorted((r.kind, r.staff_id) for r in conn.execute(select(alert_t)))


async def _ticket_due(lontar: Lontar, who: str, due: date, **values: object) -> int:
    await file_complaint(lontar, who, f"Cerita {who}")
    with lontar.db.engine.begin() as conn:
        ticket_id = conn.execute(select(complaint_t.c.id).order_by(
            complaint_t.c.id.desc())).scalars().first()
        conn.execute(update(complaint_t).where(complaint_t.c.id == ticket_id)
                     .values(due_on=due, **values))
    return int(ticket_id)  # type: ignore[arg-type]


async def test_sweep_warns_before_and_after_the_due_date_once(lontar: Lontar) -> None:
    with lontar.db.engine.begin() as conn:
        ana = create_user(conn, "ana", PASSWORD, "staff")
    await _ticket_due(lontar, "alert-citizen-0001", MONDAY + timedelta(days=1), assignee_id=ana)
    await _ticket_due(lontar, "alert-citizen-0002", MONDAY - timedelta(days=1))
    await _ticket_due(lontar, "alert-citizen-0003", MONDAY + timedelta(days=1),
                      state="selesai")  # closed: nothing to remind
    await _ticket_due(lontar, "alert-citizen-0004", MONDAY + timedelta(days=5))  # not yet
    for _ in range(2):  # the second run adds nothing
        with lontar.db.engine.begin() as conn:
            alerts.sweep(conn, OPEN, MONDAY, MONDAY + timedelta(days=1))
    assert _alerts(lontar) == [("due_soon", ana), ("overdue", None)]


async def test_friday_reminder_covers_a_monday_deadline(lontar: Lontar) -> None:
    friday = MONDAY - timedelta(days=3)
    await _ticket_due(lontar, "alert-citizen-0005", MONDAY)
    with lontar.db.engine.begin() as conn:
        alerts.sweep(conn, OPEN, friday, add_working_days(friday, 1, frozenset()))
    assert _alerts(lontar) == [("due_soon", None)]


async def test_urgent_ticket_alerts_admins_at_once(lontar: Lontar) -> None:
    await file_complaint(lontar, "alert-citizen-0006", "Petugas minta uang 100 ribu")
    assert _alerts(lontar) == [("urgent", None)]


async def test_without_telegram_alerts_stay_on_the_dashboard(lontar: Lontar) -> None:
    with lontar.db.engine.begin() as conn:
        create_user(conn, "root", PASSWORD, "admin", telegram_chat_id="7001")
    await _ticket_due(lontar, "alert-citizen-0007", date.today() - timedelta(days=3))
    await check_deadlines(lontar)
    with lontar.db.engine.connect() as conn:
        assert conn.execute(select(outbox_t).where(outbox_t.c.channel == "telegram")).first() \
            is None
        assert all(r.notified_at for r in conn.execute(select(alert_t)))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as f:
        yield f


async def test_alerts_reach_staff_telegram_chats(tmp_path: Path, fake: FakeTelegram) -> None:
    app = build(load_settings(data_dir=tmp_path, telegram_bot_token="123456:TEST-token",
                              telegram_api_base_url=fake.base_url, telegram_poll_timeout=1))
    await recover(app)
    await start_channels(app)
    try:
        with app.db.engine.begin() as conn:
            create_user(conn, "root", PASSWORD, "admin", telegram_chat_id="7001")
            create_user(conn, "ana", PASSWORD, "staff", telegram_chat_id="7002")
            create_user(conn, "vina", PASSWORD, "viewer", telegram_chat_id="7003")
        await file_complaint(app, "alert-citizen-0008", "Diminta uang rokok di loket")
        await check_deadlines(app)
        await until(lambda: any(r.chat_id == 7001 for r in fake.sent))
        to_admin = [r.text for r in fake.sent if r.chat_id == 7001]
        assert len(to_admin) == 1 and to_admin[0].startswith("MENDESAK")
        assert not [r for r in fake.sent if r.chat_id in (7002, 7003)]
        await check_deadlines(app)  # nothing new: nothing sent twice
        assert len([r for r in fake.sent if r.chat_id == 7001]) == 1
    finally:
        await stop_channels(app)
        app.close()


