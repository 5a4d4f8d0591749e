"""Health checks and Prometheus metrics: what a load balancer and an operator read.

`/healthz` says the process is alive (bot/app.py); `/readyz` says it can do its work: the
database answers, content is loaded and the senders this process is meant to run are
running. `/metrics` is for Prometheus, behind a bearer token (`LONTAR_METRICS_TOKEN`; unset:
404, so nothing leaks by default).

Counters and histograms are recorded where the work happens (bot/inbox.py, bot/outbox.py).
Queue and backlog figures (outbox depth, broadcasts, complaint tickets) are counted by the
database when scraped, so every instance reports the same truth and nothing drifts. Each
`Metrics` has its own registry: several apps in one process (tests, bench) never share
counters. Labels are channels, priorities, statuses, states and error codes only: never a
chat, a number or a text, so the number of series stays small.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from bot.db import Database
from bot.models import (
    PRIORITY_BROADCAST,
    PRIORITY_NOTIFICATION,
    PRIORITY_REPLY,
    broadcast_t,
    complaint_t,
    outbox_t,
)
from bot.outbox import HELD, IN_FLIGHT, PENDING, SENDING, SENT
from bot.services.broadcasts import (
    APPROVED,
    CANCELLED_B,
    DONE,
    DRAFT,
    PAUSED,
    SCHEDULED,
    SENDING_B,
)
from flows.content import Content

if TYPE_CHECKING:
    from bot.app import Lontar

log = logging.getLogger(__name__)
# `*_created` samples (a timestamp per counter and histogram series) double the exposition
# and the scrape's work; Prometheus detects counter resets without them
disable_created_metrics()

# Channels whose outbox rows are counted (bot/channels/*.CHANNEL). Listing them lets the
# depth query walk the (channel, status, ...) index instead of the whole outbox.
CHANNELS = ("telegram", "whatsapp", "web", "console")
WAITING = (PENDING, SENDING, IN_FLIGHT, HELD)  # rows not yet sent nor given up
PRIORITIES = {PRIORITY_REPLY: "reply", PRIORITY_NOTIFICATION: "notification",
              PRIORITY_BROADCAST: "broadcast"}
BROADCAST_STATUSES = (DRAFT, APPROVED, SCHEDULED, SENDING_B, PAUSED, DONE, CANCELLED_B)
ERROR_CODES = ("429", "blocked", "opted_out", "unsendable", "timeout", "other")
TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SEND_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DB_TIMEOUT = 5.0  # seconds /readyz waits for `SELECT 1` before calling the database down


def error_code(exc: BaseException) -> str:
    """A send error as one of `ERROR_CODES`: a bounded label, never the platform's text."""
    message = str(exc).lower()
    if getattr(exc, "retry_after", None) or "429" in message or "too many" in message:
        return "429"
    for code in ("blocked", "opted_out", "unsendable"):
        if getattr(exc, code, None):
            return code
    if isinstance(exc.__cause__, TimeoutError) or "timed out" in message or (
            "timeout" in message):
        return "timeout"
    return "other"


@dataclass(frozen=True)
class Snapshot:
    """What the database said at the last scrape."""

    outbox: list[tuple[str, str, str, int]]  # channel, priority, status, rows
    broadcasts: dict[str, int]
    sending_planned: int
    sending_sent: int
    complaints_open: dict[str, int] | None = None  # None: this office has no complaints
    complaints_overdue: int = 0


class _Backlog(Collector):
    """Yields the gauges of the latest `Snapshot` (taken by `Metrics.render`)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        if s is None:
            return
        depth = GaugeMetricFamily("lontar_outbox_depth", "Outbox rows waiting to be sent.",
                                  labels=["channel", "priority", "status"])
        for channel, priority, status, rows in s.outbox:
            depth.add_metric([channel, priority, status], rows)
        yield depth
        broadcasts = GaugeMetricFamily("lontar_broadcasts", "Broadcasts per status.",
                                       labels=["status"])
        for status, count in s.broadcasts.items():
            broadcasts.add_metric([status], count)
        yield broadcasts
        yield GaugeMetricFamily("lontar_broadcast_sending_planned",
                                "Recipients planned, over the broadcasts now sending.",
                                value=s.sending_planned)
        yield GaugeMetricFamily("lontar_broadcast_sending_sent",
                                "Messages sent, over the broadcasts now sending.",
                                value=s.sending_sent)
        if s.complaints_open is not None:
            tickets = GaugeMetricFamily("lontar_complaints_open",
                                        "Complaint tickets in an open state.", labels=["state"])
            for state, count in s.complaints_open.items():
                tickets.add_metric([state], count)
            yield tickets
            yield GaugeMetricFamily("lontar_complaints_overdue",
                                    "Open complaint tickets past their due date (office day).",
                                    value=s.complaints_overdue)


class Metrics:
    """The registry and every metric of one Lontar; `bot.app.build` makes one."""

    def __init__(self, db: Database, content: Content, timezone: str = "Asia/Makassar"):
        self.db = db
        self.tz = ZoneInfo(timezone)
        self.open_states = ([s.id for s in content.complaints.state if s.type == "open"]
                            if content.complaints is not None else None)
        self.registry = CollectorRegistry()
        r = self.registry
        self.inbound = Counter("lontar_inbound_messages", "Updates received (new ones only).",
                               ["channel"], registry=r)
        self.turns = Counter("lontar_turns", "Turns processed and committed.",
                             ["channel"], registry=r)
        self.turn_seconds = Histogram(
            "lontar_turn_seconds", "From an update accepted to its replies committed.",
            ["channel"], buckets=TURN_BUCKETS, registry=r)
        self.sends = Counter("lontar_outbox_sends", "Messages a platform accepted.",
                             ["channel"], registry=r)
        self.send_errors = Counter("lontar_outbox_send_errors", "Failed send attempts.",
                                   ["channel", "code"], registry=r)
        self.send_seconds = Histogram("lontar_outbox_send_seconds",
                                      "A successful send: platform call and its record.",
                                      ["channel"], buckets=SEND_BUCKETS, registry=r)
        self._backlog = _Backlog()
        r.register(self._backlog)

    def accepted(self, channel: str) -> None:
        self.inbound.labels(channel).inc()

    def turned(self, channel: str, started: float, *, accepted: bool = False) -> None:
        """A turn committed; `started` is `time.monotonic()` when its update was accepted."""
        if accepted:
            self.accepted(channel)
        self.turns.labels(channel).inc()
        self.turn_seconds.labels(channel).observe(time.monotonic() - started)

    def sent(self, channel: str, started: float) -> None:
        self.sends.labels(channel).inc()
        self.send_seconds.labels(channel).observe(time.monotonic() - started)

    def failed(self, channel: str, exc: BaseException) -> None:
        self.send_errors.labels(channel, error_code(exc)).inc()

    async def render(self) -> bytes:
        """Count the backlog now, then the text exposition of everything."""
        today = datetime.now(self.tz).date()
        self._backlog.snapshot = await self.db.transaction(_snapshot, self.open_states, today)
        return generate_latest(self.registry)


def _snapshot(conn: Connection, open_states: list[str] | None, today: date) -> Snapshot:
    o, b, c = outbox_t.c, broadcast_t.c, complaint_t.c
    depth = [(ch, PRIORITIES.get(p, str(p)), st, n) for ch, p, st, n in conn.execute(
        select(o.channel, o.priority, o.status, func.count())
        .where(o.channel.in_(CHANNELS), o.status.in_(WAITING))
        .group_by(o.channel, o.priority, o.status))]
    broadcasts = dict.fromkeys(BROADCAST_STATUSES, 0)
    broadcasts.update((st, n) for st, n in conn.execute(
        select(b.status, func.count()).group_by(b.status)))
    planned = conn.execute(select(func.coalesce(func.sum(b.planned), 0))
                           .where(b.status == SENDING_B)).scalar_one()
    sent = conn.execute(select(func.count()).select_from(outbox_t.join(
        broadcast_t, b.id == o.broadcast_id)).where(b.status == SENDING_B, o.status == SENT)
    ).scalar_one()
    if open_states is None:
        return Snapshot(depth, broadcasts, int(planned), int(sent))
    tickets = dict.fromkeys(open_states, 0)
    tickets.update((st, n) for st, n in conn.execute(
        select(c.state, func.count()).where(c.state.in_(open_states)).group_by(c.state)))
    overdue = conn.execute(select(func.count()).select_from(complaint_t).where(
        c.state.in_(open_states), c.due_on < today)).scalar_one()
    return Snapshot(depth, broadcasts, int(planned), int(sent), tickets, int(overdue))


# --- readiness and the routes ----------------------------------------------------------------

def _ping(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))


async def readiness(lontar: Lontar) -> dict[str, str]:
    """Each check's outcome: "ok", or why this process cannot do its work now.

    Senders count only when this process is meant to run them (`lontar.senders_expected`;
    a receiver-only process is ready without them) and only once started: just the leader
    runs them (bot/leader.py), and a process waiting to lead still takes webhooks. A started
    sender that has stopped makes the process not ready.
    """
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(DB_TIMEOUT):  # not wait_for: see bot.leader
            await lontar.db.transaction(_ping)
        checks["database"] = "ok"
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("readiness: database unreachable (%s)", type(exc).__name__)
        checks["database"] = f"unreachable ({type(exc).__name__})"  # no URL, no host
    checks["content"] = "ok" if lontar.content.services else "not loaded"
    if lontar.senders_expected:
        for task in lontar.sender_tasks:  # named by bot.app.start_senders, e.g. sender:telegram
            checks[task.get_name()] = "stopped" if task.done() else "ok"
    return checks


def routes(app: web.Application, lontar: Lontar) -> None:
    """Add `/readyz` and `/metrics` (`/healthz` stays in bot/app.py: it needs nothing)."""

    async def readyz(_: web.Request) -> web.Response:
        checks = await readiness(lontar)
        failing = [name for name, outcome in checks.items() if outcome != "ok"]
        return web.json_response(
            {"status": "not ready" if failing else "ready", "failing": failing,
             "checks": checks}, status=503 if failing else 200,
            headers={"Cache-Control": "no-store"})

    async def metrics(request: web.Request) -> web.Response:
        token = lontar.settings.metrics_token
        if not token or lontar.metrics is None:
            raise web.HTTPNotFound()
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            return web.json_response({"error": "unauthorized"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        body = await lontar.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                                "Cache-Control": "no-store"})

    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
