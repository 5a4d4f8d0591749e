"""Application reminders: "siap diambil" not collected after N days gets one reminder per
ready period, "diambil" one SKM invitation; only active subscribers; the scheduler job."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from bot.app import Lontar
from bot.jobs import send_reminders, start_scheduler
from bot.models import (
    PRIORITY_NOTIFICATION,
    application_t,
    contact_t,
    outbox_t,
    subscription_t,
)
from bot.services import application_reminders
from bot.services.applications import apply, change_status, check_all, notification

WITA = ZoneInfo("Asia/Makassar")
T0 = datetime(2026, 11, 14, 20, 0, tzinfo=UTC)  # 15 November 2026, 04:00 in Kupang
REG = "KTP-2026-0001"


def _seed(lontar: Lontar, status: str, at: datetime, reg_no: str = REG,
          birth: str = "1990-03-12") -> None:
    raw = {"nomor_registrasi": reg_no, "layanan": "ktp-baru", "kantor": "dinas",
           "status": status, "tanggal_lahir": birth}
    items, errors = check_all([(1, raw)], lontar.content, lontar.settings.secret_key,
                              at.date())
    assert errors == []
    with lontar.db.engine.begin() as conn:
        apply(conn, items, lontar.content, source="import", now=at)


def _subscribe(lontar: Lontar, who: str, reg_no: str = REG, *, channel: str = "telegram",
               language: str = "id", stopped: bool = False) -> int:
    now = datetime.now(UTC)
    with lontar.db.engine.begin() as conn:
        contact = conn.execute(insert(contact_t), {
            "channel": channel, "external_id": who, "language": language,
            "opted_in": False, "created_at": now}).inserted_primary_key[0]  # type: ignore[index]
        app_id = conn.execute(select(application_t.c.id).where(
            application_t.c.reg_no == reg_no)).scalar_one()
        conn.execute(insert(subscription_t), {
            "application_id": app_id, "contact_id": contact, "created_at": now,
            "stopped_at": now if stopped else None})
    return int(contact)


def _sweep(lontar: Lontar, at: datetime) -> tuple[int, set[str]]:
    with lontar.db.engine.begin() as conn:
        return application_reminders.sweep(conn, lontar.content, at, tz=WITA)


def _outbox(lontar: Lontar) -> list[Any]:
    with lontar.db.engine.connect() as conn:
        return list(conn.execute(select(outbox_t).order_by(outbox_t.c.id)))


def _reminded_at(lontar: Lontar, reg_no: str = REG) -> datetime | None:
    with lontar.db.engine.connect() as conn:
        value: datetime | None = conn.execute(select(application_t.c.reminded_at).where(
            application_t.c.reg_no == reg_no)).scalar_one()
    return value


def test_reminder_after_n_days_once_to_each_active_subscriber(lontar: Lontar) -> None:
    days = lontar.content.applications.remind_ready_after_days  # type: ignore[union-attr]
    _seed(lontar, "siap-diambil", T0)
    ani = _subscribe(lontar, "reminder-0001")
    bob = _subscribe(lontar, "reminder-0002", language="en")
    _subscribe(lontar, "reminder-0003", stopped=True)
    assert _sweep(lontar, T0 + timedelta(days=days, seconds=-1)) == (0, set())
    assert _outbox(lontar) == [] and _reminded_at(lontar) is None

    assert _sweep(lontar, T0 + timedelta(days=days)) == (2, {"telegram"})
    rows = _outbox(lontar)
    assert sorted(r.contact_id for r in rows) == [ani, bob]
    assert all(r.priority == PRIORITY_NOTIFICATION and r.payload["options"] == []
               for r in rows)
    text = {r.contact_id: r.payload["text"] for r in rows}
    assert text[ani].startswith(f"Pengingat: dokumen permohonan {REG} sudah siap sejak "
                                "15 November 2026")  # the office's day, not UTC's
    assert "Dinas" in text[ani] and "KTP-el asli" in text[ani]  # where, and what to bring
    assert text[bob].startswith(f"Reminder: the document for application {REG}")
    assert "original e-KTP" in text[bob]
    assert _reminded_at(lontar) == T0 + timedelta(days=days)

    assert _sweep(lontar, T0 + timedelta(days=days + 1)) == (0, set())
    assert _sweep(lontar, T0 + timedelta(days=days * 5)) == (0, set())
    assert len(_outbox(lontar)) == 2


def test_each_ready_period_gets_its_own_reminder(lontar: Lontar) -> None:
    _seed(lontar, "siap-diambil", T0)
    _subscribe(lontar, "reminder-0004")
    assert _sweep(lontar, T0 + timedelta(days=7))[0] == 1
    # an edit that does not move the status (a corrected birth date) is the same period
    _seed(lontar, "siap-diambil", T0 + timedelta(days=7, hours=1), birth="1990-03-13")
    assert _reminded_at(lontar) is not None
    assert _sweep(lontar, T0 + timedelta(days=8))[0] == 0
    # away (the import) and back (the dashboard): a new period, a new count of days
    _seed(lontar, "diproses", T0 + timedelta(days=9))
    with lontar.db.engine.begin() as conn:
        changed = change_status(conn, REG, "siap-diambil", None, lontar.content,
                                source="dashboard", now=T0 + timedelta(days=10))
    assert changed is not None and changed.notified == 1
    notifications = len(_outbox(lontar))
    assert notifications == 3  # reminder, diproses, siap-diambil
    assert _sweep(lontar, T0 + timedelta(days=16))[0] == 0
    assert _sweep(lontar, T0 + timedelta(days=17))[0] == 1
    reminders = [r.payload["text"] for r in _outbox(lontar)
                 if r.payload["text"].startswith("Pengingat")]
    assert len(reminders) == 2 and "sejak 25 November 2026" in reminders[1]  # T0 + 10 days


def test_collected_gets_one_survey_invitation(lontar: Lontar) -> None:
    _seed(lontar, "siap-diambil", T0)
    ani = _subscribe(lontar, "reminder-0005")
    _subscribe(lontar, "reminder-0006", stopped=True)
    _seed(lontar, "diambil", T0 + timedelta(days=2))
    [notice] = _outbox(lontar)
    assert notice.payload["text"].startswith(f"Permohonan {REG}: Sudah diambil.")
    # the invitation below is the only survey offer; the notice links to stopping
    assert [o["id"] for o in notice.payload["options"]] == [f"go:p:stop:{REG}"]

    assert _sweep(lontar, T0 + timedelta(days=2, minutes=15)) == (1, {"telegram"})
    invite = _outbox(lontar)[-1]
    assert invite.contact_id == ani and invite.priority == PRIORITY_NOTIFICATION
    assert invite.payload["text"].startswith(f"Dokumen permohonan {REG} sudah diambil.")
    assert [(o["id"], o["label"]) for o in invite.payload["options"]] == [
        ("go:survey", "Isi survei SKM")]
    # collected before it was ever reminded as ready: no "not collected" reminder either
    assert _sweep(lontar, T0 + timedelta(days=30)) == (0, set())
    assert len(_outbox(lontar)) == 2


def test_a_notification_carries_only_the_stop_link(lontar: Lontar) -> None:
    content = lontar.content
    for status in ("diambil", "diproses"):
        reply = notification(content, "id", REG, status, None, "dinas")
        assert [(o.id, o.label) for o in reply.options] == [(f"go:p:stop:{REG}",
                                                             "Stop notifikasi")]


def test_without_subscribers_rows_are_marked_and_nothing_queued(lontar: Lontar) -> None:
    _seed(lontar, "siap-diambil", T0)
    _seed(lontar, "diambil", T0 + timedelta(days=6), reg_no="KK-2026-0002")
    _seed(lontar, "diproses", T0, reg_no="KK-2026-0003")  # neither ready nor done
    at = T0 + timedelta(days=7)
    assert _sweep(lontar, at) == (0, set())
    assert _outbox(lontar) == []
    assert _reminded_at(lontar) == at and _reminded_at(lontar, "KK-2026-0002") == at
    assert _reminded_at(lontar, "KK-2026-0003") is None


def test_an_old_collection_gets_no_invitation(lontar: Lontar) -> None:
    _seed(lontar, "diambil", T0)
    _subscribe(lontar, "reminder-0007")
    assert _sweep(lontar, T0 + application_reminders.SURVEY_WITHIN + timedelta(hours=1)) \
        == (0, set())


def test_many_applications_are_swept_in_chunks(lontar: Lontar,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(application_reminders, "CHUNK", 7)
    for n in range(21):  # an exact multiple: the last read finds nothing
        _seed(lontar, "siap-diambil", T0, reg_no=f"KTP-2026-{n:04d}")
        _subscribe(lontar, f"chunked-{n:04d}", reg_no=f"KTP-2026-{n:04d}")
    for n in range(3):
        _seed(lontar, "diambil", T0, reg_no=f"KK-2026-{n:04d}")
        _subscribe(lontar, f"chunked-kk-{n:04d}", reg_no=f"KK-2026-{n:04d}")
    assert _sweep(lontar, T0 + timedelta(days=7)) == (24, {"telegram"})
    assert sorted(r.contact_id for r in _outbox(lontar)) == list(range(1, 25))
    assert _sweep(lontar, T0 + timedelta(days=8)) == (0, set())


async def test_the_job_queues_due_messages_and_wakes_their_channel(
        lontar: Lontar, monkeypatch: pytest.MonkeyPatch) -> None:
    woken: list[frozenset[str]] = []
    monkeypatch.setattr(lontar, "wake_channels", woken.append)
    _seed(lontar, "siap-diambil", datetime.now(UTC) - timedelta(days=8))
    contact = _subscribe(lontar, "job-session-0001", channel="web")
    await send_reminders(lontar)
    [row] = _outbox(lontar)
    assert row.contact_id == contact and row.channel == "web"
    assert row.payload["text"].startswith("Pengingat:")
    assert woken == [frozenset({"web"})]
    await send_reminders(lontar)  # the next run finds nothing new
    assert len(_outbox(lontar)) == 1


async def test_a_failing_run_is_logged_and_the_next_one_catches_up(
        lontar: Lontar, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    _seed(lontar, "siap-diambil", datetime.now(UTC) - timedelta(days=8))
    _subscribe(lontar, "job-session-0002", channel="web")
    real = application_reminders.sweep

    def broken(*args: Any, **kwargs: Any) -> tuple[int, set[str]]:
        real(*args, **kwargs)  # writes, then fails: the transaction must roll back
        raise RuntimeError("database went away")

    monkeypatch.setattr(application_reminders, "sweep", broken)
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        await send_reminders(lontar)  # does not raise: the scheduler keeps running
    assert "application reminders failed" in caplog.text
    assert _outbox(lontar) == [] and _reminded_at(lontar) is None
    monkeypatch.setattr(application_reminders, "sweep", real)
    await send_reminders(lontar)
    assert len(_outbox(lontar)) == 1


async def test_the_scheduler_runs_the_reminder_job(lontar: Lontar) -> None:
    scheduler = start_scheduler(lontar)
    try:
        job = scheduler.get_job("reminders")
        assert job is not None and job.func is send_reminders
        assert job.trigger.interval == timedelta(
            minutes=lontar.settings.reminder_check_minutes)
    finally:
        scheduler.shutdown(wait=False)



def test_without_a_survey_collections_are_only_marked(lontar: Lontar) -> None:
    _seed(lontar, "diambil", T0)
    _subscribe(lontar, "reminder-0008")
    no_survey = dataclasses.replace(lontar.content, survey=None)
    with lontar.db.engine.begin() as conn:
        assert application_reminders.sweep(conn, no_survey, T0 + timedelta(hours=1)) \
            == (0, set())
    assert _outbox(lontar) == [] and _reminded_at(lontar) == T0 + timedelta(hours=1)
