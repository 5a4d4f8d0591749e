"""Messages about applications that nobody asked for at that moment, found by a sweep the
scheduler wakes (bot/jobs.py); what is due lives in the database, so a missed run only
delays them.

- A document waiting to be collected (a status of type `ready`, "siap diambil") for
  `remind_ready_after_days` gets one reminder, with where to collect it and what to bring.
- A collected one (type `done`, "diambil") gets one invitation to the SKM survey, with its
  button. Status notifications carry no survey button, so the citizen is asked once.

`application.reminded_at` marks that this period's message was queued, also when nobody
follows the application, so the row is not looked at again. Every status change clears it
(`applications.apply` and `applications.change_status`): each ready period gets one
reminder, each collection one invitation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Connection, Row, Select, select, update

from bot.models import application_t
from bot.services.applications import next_step, office_label, queue_to_subscribers
from flows.content import Content
from flows.types import Lang, Option, Reply

CHUNK = 500
# An invitation is only worth sending soon after the visit; the bound also keeps the sweep a
# short index range instead of every application ever collected.
SURVEY_WITHIN = timedelta(days=30)

_a = application_t.c


def sweep(conn: Connection, content: Content, now: datetime, *,
          tz: tzinfo = UTC) -> tuple[int, set[str]]:
    """Queue every reminder and survey invitation now due, in the caller's transaction.

    Returns the messages queued and the channels they are for (to wake their senders).
    `tz` is the office's time zone, for the date a document became ready.
    """
    ac = content.applications
    if ac is None:
        return 0, set()
    ready = [s.id for s in ac.status if s.type == "ready"]
    done = [s.id for s in ac.status if s.type == "done"]
    queued, channels = 0, set[str]()
    if ready:
        n, ch = _sweep(conn, _due(ready, None, now - timedelta(days=ac.remind_ready_after_days)),
                       lambda lang, app: _reminder(content, lang, app, tz), now)
        queued, channels = queued + n, channels | ch
    if done:  # without a survey there is nothing to invite to: the rows are only marked
        n, ch = _sweep(conn, _due(done, now - SURVEY_WITHIN, now),
                       (lambda lang, app: _invitation(content, lang, app))
                       if content.survey is not None else None, now)
        queued, channels = queued + n, channels | ch
    return queued, channels


Build = Callable[[Lang, Row[Any]], Reply]


def _due(statuses: Sequence[str], since: datetime | None, until: datetime) -> Select[Any]:
    """Applications in `statuses`, changed after `since` and by `until`, not yet reminded:
    one chunk, read through the index on (status, status_changed_at)."""
    query = (select(_a.id, _a.reg_no, _a.office, _a.status, _a.reason, _a.status_changed_at)
             .where(_a.status.in_(statuses), _a.status_changed_at <= until,
                    _a.reminded_at.is_(None))
             .limit(CHUNK))
    return query if since is None else query.where(_a.status_changed_at > since)


def _sweep(conn: Connection, query: Select[Any], build: Build | None,
           now: datetime) -> tuple[int, set[str]]:
    """Chunk by chunk: queue, then mark the chunk reminded, so the same query reads the next
    one (no offset, and never 100,000 rows in memory)."""
    queued, channels = 0, set[str]()
    while True:
        apps = list(conn.execute(query).all())
        if apps and build is not None:
            n, ch = queue_to_subscribers(conn, [a.id for a in apps],
                                         _by_id(apps, build), now)
            queued, channels = queued + n, channels | ch
        if apps:
            conn.execute(update(application_t).where(_a.id.in_([a.id for a in apps]))
                         .values(reminded_at=now))
        if len(apps) < CHUNK:
            return queued, channels


def _by_id(apps: list[Row[Any]], build: Build) -> Callable[[int, Lang], Reply]:
    rows = {a.id: a for a in apps}
    return lambda app_id, lang: build(lang, rows[app_id])


def _reminder(content: Content, lang: Lang, app: Row[Any], tz: tzinfo) -> Reply:
    since = app.status_changed_at.astimezone(tz).date()
    return Reply(content.msg(lang, "application_reminder", number=app.reg_no,
                             date=content.format_date(lang, since),
                             office=office_label(content, lang, app.office),
                             next=next_step(content, lang, app.status, app.reason, app.office)))


def _invitation(content: Content, lang: Lang, app: Row[Any]) -> Reply:
    text = content.msg(lang, "application_survey_invite", number=app.reg_no,
                       office=office_label(content, lang, app.office))
    return Reply(text, (Option("go:survey", content.msg(lang, "opt_survey")),))
