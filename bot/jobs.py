"""APScheduler wakes the periodic work; what is due lives in the database, so a restart or
a missed run loses nothing (the next run finds the same rows)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Connection

from bot.services import alerts, application_reminders, broadcast_images, broadcasts, privacy
from bot.services.complaints import add_working_days

if TYPE_CHECKING:
    from bot.app import Lontar

log = logging.getLogger(__name__)
# how often running broadcasts get their next batch: a batch covers far more than this at 30/s
BROADCAST_TICK_SECONDS = 2
QUEUE_STEP = 50  # recipients queued per transaction (see run_broadcasts)
# stored updates nobody processed: left alone while a turn may still be under way, retried
# for a while (a receiver died, the database failed a turn), then left (a turn that fails
# every time would otherwise be retried forever)
STRANDED_AFTER = timedelta(minutes=1)
STRANDED_UNTIL = timedelta(minutes=15)
STRANDED_EVERY_SECONDS = 60


async def check_deadlines(lontar: Lontar) -> None:
    """Make deadline alerts and deliver every new alert (urgent ones included)."""
    cc = lontar.content.complaints
    if cc is None:
        return
    open_states = [s.id for s in cc.state if s.type == "open"]
    today = datetime.now(UTC).astimezone(lontar.inbox.engine.tz).date()

    def run(conn: Connection) -> tuple[int, int]:
        horizon = add_working_days(today, 1, frozenset(cc.holidays))
        made = alerts.sweep(conn, open_states, today, horizon)
        return made, alerts.deliver(conn, lontar.telegram is not None)

    try:
        made, queued = await lontar.db.transaction(run)
    except Exception:  # a failed run is retried at the next one; never kill the scheduler
        log.exception("deadline check failed")
        return
    if queued:
        lontar.wake("telegram", 0)
    if made or queued:
        log.info("deadline check: %d new alerts, %d staff messages queued", made, queued)


async def send_reminders(lontar: Lontar) -> None:
    """Queue application reminders and SKM invitations now due, and wake their senders."""
    now = datetime.now(UTC)
    tz = lontar.inbox.engine.tz
    try:
        queued, channels = await lontar.db.transaction(
            lambda conn: application_reminders.sweep(conn, lontar.content, now, tz=tz))
    except Exception:  # a failed run is retried at the next one; never kill the scheduler
        log.exception("application reminders failed")
        return
    lontar.wake_channels(frozenset(channels))
    if queued:
        log.info("application reminders: %d messages queued", queued)


async def run_broadcasts(lontar: Lontar) -> None:
    """Start due broadcasts, queue the next batch of each running one, finish what is done.

    A batch is queued in steps of QUEUE_STEP recipients, a transaction each, with the event
    loop free in between: SQLite work runs on the loop's thread, and 1,000 recipients in one
    transaction held it 60-100 ms (bench/broadcast.py), longer than the Telegram sender's
    20 ms of room for timing jitter; sends stamped before such a stall arrived together after
    it, and Telegram counted 31 in a second (a 429). A step of 100 still took 10-20 ms.
    """
    for _ in range(broadcasts.BATCH // QUEUE_STEP):
        try:
            channels = await lontar.db.transaction(
                lambda conn: broadcasts.tick(conn, lontar.content, datetime.now(UTC),
                                             batch=QUEUE_STEP))
        except Exception:  # a failed run is retried at the next one; never kill the scheduler
            log.exception("broadcast batch failed")
            return
        if not channels:  # nothing more to queue now (or a step of skipped contacts)
            return
        lontar.wake_channels(frozenset(channels))
        await asyncio.sleep(0)  # the sends and turns waiting meanwhile go first


async def purge_personal_data(lontar: Lontar, now: datetime | None = None) -> tuple[int, int]:
    """Retention (UU 27/2022 Ps 42-43): delete citizens' messages and the files they sent
    once older than LONTAR_RETENTION_INBOUND_DAYS / _ATTACHMENT_DAYS; a still-open ticket's
    files stay. Also, as daily housekeeping, broadcast pictures no broadcast uses (a day
    old: bot/services/broadcast_images.py). Returns (messages, files) deleted."""
    now = now or datetime.now(UTC)
    s = lontar.settings
    cc = lontar.content.complaints
    open_states = [st.id for st in cc.state if st.type == "open"] if cc is not None else []
    messages = files = 0
    try:
        while True:  # in batches: the first run after an upgrade may find a year's backlog
            n = await lontar.db.transaction(
                privacy.purge_inbound, now - timedelta(days=s.retention_inbound_days))
            messages += n
            if n < privacy.PURGE_BATCH:
                break
        files = await lontar.db.transaction(
            privacy.purge_attachments, s.data_dir,
            now - timedelta(days=s.retention_attachment_days), open_states)
    except Exception:  # a failed run is retried at the next one; never kill the scheduler
        log.exception("retention purge failed")
    if messages or files:
        log.info("retention: %d messages and %d files deleted", messages, files)
    try:  # staff's files, not citizens': counted apart, and a failure above does not skip it
        pictures = await lontar.db.transaction(
            broadcast_images.sweep, broadcast_images.folder(s.data_dir), now)
    except Exception:  # a failed run is retried at the next one; never kill the scheduler
        log.exception("unused broadcast pictures not removed")
    else:
        if pictures:
            log.info("retention: %d unused broadcast pictures deleted", pictures)
    return messages, files


async def process_stranded(lontar: Lontar, now: datetime | None = None) -> int:
    """Turn updates stored one to fifteen minutes ago and still unprocessed: a receiver
    acknowledged them and died, or their turn failed. Late, but the citizen gets an answer."""
    now = now or datetime.now(UTC)
    try:
        done = await lontar.inbox.process_pending((now - STRANDED_UNTIL, now - STRANDED_AFTER))
    except Exception:  # a failed run is retried at the next one; never kill the scheduler
        log.exception("stranded updates not processed")
        return 0
    if done:
        log.warning("%d stranded updates processed late", done)
    return done


def start_scheduler(lontar: Lontar) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=lontar.settings.timezone)
    scheduler.add_job(check_deadlines, "interval", args=[lontar], id="deadlines",
                      minutes=lontar.settings.sla_check_minutes, next_run_time=datetime.now(UTC),
                      max_instances=1, coalesce=True)
    scheduler.add_job(send_reminders, "interval", args=[lontar], id="reminders",
                      minutes=lontar.settings.reminder_check_minutes,
                      next_run_time=datetime.now(UTC), max_instances=1, coalesce=True)
    scheduler.add_job(run_broadcasts, "interval", args=[lontar], id="broadcasts",
                      seconds=BROADCAST_TICK_SECONDS, next_run_time=datetime.now(UTC),
                      max_instances=1, coalesce=True)
    # urgent alerts are made when the ticket is filed; send them within a minute
    scheduler.add_job(_deliver, "interval", args=[lontar], id="alerts", seconds=30,
                      max_instances=1, coalesce=True)
    scheduler.add_job(process_stranded, "interval", args=[lontar], id="stranded",
                      seconds=STRANDED_EVERY_SECONDS, max_instances=1, coalesce=True)
    scheduler.add_job(purge_personal_data, "interval", args=[lontar], id="retention",
                      hours=24, next_run_time=datetime.now(UTC) + timedelta(minutes=5),
                      max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler


async def _deliver(lontar: Lontar) -> None:
    try:
        queued = await lontar.db.transaction(alerts.deliver, lontar.telegram is not None)
    except Exception:
        log.exception("alert delivery failed")
        return
    if queued:
        lontar.wake("telegram", 0)
