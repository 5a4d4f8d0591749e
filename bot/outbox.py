"""The outbox: the one way a message leaves Lontar.

Pull channels (the web chat, the terminal) hand rows to their client and mark them sent.
Push channels (Telegram, WhatsApp) are driven by an `OutboxWorker`: it claims due rows in
priority order, sends them within a rate limit, retries what can be retried with backoff, and
records permanent failures. A row is only ever created inside the transaction that decided
to send it, so nothing is sent for a turn that did not commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, Row, Select, bindparam, select, update
from sqlmodel import Session

from bot.db import Database
from bot.logs import bind_request
from bot.models import PRIORITY_BROADCAST, PRIORITY_REPLY, Outbox, contact_t, outbox_t
from bot.services import consent
from flows.types import Reply

if TYPE_CHECKING:
    from bot.metrics import Metrics

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED, UNSENDABLE = "pending", "sending", "sent", "failed", "unsendable"
# broadcast rows only: handed to the platform but not yet confirmed; after a crash such a row
# becomes UNCONFIRMED and is not sent again (a duplicate outreach message is worse than one
# recipient in a hundred thousand left unsure); HELD while its broadcast is paused
IN_FLIGHT, UNCONFIRMED, HELD, CANCELLED = "in_flight", "unconfirmed", "held", "cancelled"
MAIN, BROADCASTS = "main", "broadcasts"  # the worker's two lanes


# --- pull channels (SQLAlchemy Core on a connection: the web chat's hot path) -------------



_AFTER = (
    select(outbox_t.c.id, outbox_t.c.payload, outbox_t.c.status)
    .where(outbox_t.c.contact_id == bindparam("cid"), outbox_t.c.id > bindparam("after"),
           outbox_t.c.status.in_((PENDING, SENT)))
    .order_by(outbox_t.c.id)
    .limit(bindparam("limit"))
)
_PENDING_FOR = (
    select(outbox_t.c.id, outbox_t.c.payload)
    .where(outbox_t.c.contact_id == bindparam("cid"), outbox_t.c.status == PENDING)
    .order_by(outbox_t.c.id)
)
_MARK_SENT = (
    update(outbox_t)
    .where(outbox_t.c.id.in_(bindparam("ids", expanding=True)),
           outbox_t.c.status.in_((PENDING, SENDING)))
    .values(status=SENT, sent_at=bindparam("now"))
)


def new_row(contact_id: int, channel: str, payload: dict[str, Any], priority: int,
            now: datetime, inbound_id: int | None = None) -> dict[str, Any]:
    """An outbox row to insert: how every message, reply or notification, is queued."""
    return {"contact_id": contact_id, "channel": channel, "priority": priority,
            "status": PENDING, "payload": payload, "inbound_id": inbound_id, "attempts": 0,
            "next_attempt_at": now, "created_at": now}


def fetch_after(conn: Connection, contact_id: int, after: int, limit: int = 50) -> list[Row[Any]]:
    """Rows for a contact newer than the client's cursor; pending ones become sent.

    The client keeps the cursor, so a response lost on a weak network is fetched again with
    the same cursor instead of being lost.
    """
    rows = conn.execute(_AFTER, {"cid": contact_id, "after": after, "limit": limit}).all()
    mark_sent(conn, [r.id for r in rows if r.status == PENDING])
    return list(rows)


def pending_for(conn: Connection, contact_id: int) -> list[Row[Any]]:
    return list(conn.execute(_PENDING_FOR, {"cid": contact_id}).all())


def mark_sent(conn: Connection, ids: Sequence[int]) -> None:
    if ids:
        conn.execute(_MARK_SENT, {"ids": list(ids), "now": datetime.now(UTC)})


def requeue_in_flight(conn: Connection) -> int:
    """At start: rows a crashed worker had claimed go back to pending.

    A reply or notification claimed but not confirmed may or may not have reached the
    platform; sending it again is the lesser harm than losing a citizen's answer. A broadcast
    row is marked in flight just before its one platform call: only such a row is in doubt,
    and it is not sent again (UNCONFIRMED, counted in the broadcast's report). Rows marked
    sent never return.
    """
    conn.execute(update(outbox_t).where(outbox_t.c.status == IN_FLIGHT)
                 .values(status=UNCONFIRMED))
    result = conn.execute(
        update(outbox_t).where(outbox_t.c.status == SENDING).values(status=PENDING))
    return int(result.rowcount or 0)


# --- push channels ---------------------------------------------------------------------------


class Quiet(Protocol):
    def until(self, now: datetime) -> datetime | None:
        """When the quiet hours around `now` end (None: not quiet now)."""


class SendError(Exception):
    """A failed send. `retryable` errors are tried again; the flags mark the contact.

    `unsendable` says why a message cannot be sent as it is (e.g. WhatsApp outside the 24-hour
    window with no template configured): the row keeps that reason for staff to see.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None,
                 blocked: bool = False, opted_out: bool = False,
                 unsendable: str | None = None, defer_until: datetime | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.blocked = blocked
        self.opted_out = opted_out
        self.unsendable = unsendable
        self.defer_until = defer_until  # not an error: try again then, no attempt counted


@dataclass(frozen=True)
class Meta:
    """What the outbox row says about a message beyond its content."""

    priority: int = PRIORITY_REPLY
    replace: str | None = None  # platform id of a menu this message may replace
    category: str | None = None  # "utility" or "marketing" for WhatsApp templates
    force_template: bool = False  # the platform said the free-form window is closed
    image: str | None = None  # a broadcast's picture, a file name under data/broadcasts

    @classmethod
    def of(cls, row: Outbox | Row[Any]) -> Meta:
        p = row.payload
        replace = p.get("edit_message_id")
        return cls(row.priority, str(replace) if replace is not None else None,
                   p.get("category"), bool(p.get("force_template")), p.get("image"))


@dataclass(frozen=True)
class Delivered:
    platform_id: str | None
    template: str | None = None  # the template it went out as, if any


@dataclass
class _Slot:
    limiter: RateLimiter
    priority: int
    stamp: float | None  # the worker's token for this send, until its first request uses it


_SLOT: ContextVar[_Slot | None] = ContextVar("outbox_slot", default=None)


async def platform_call() -> None:
    """A channel's transport calls this right before each request that sends a message.

    One outbox row can be several messages (a long text in parts, a map pin after the
    text), and the platform counts each. The first uses the token the worker took, counted
    from now; each further one waits for a token of its own at the row's priority. Outside
    a worker's send (answering a button, polling) it does nothing.
    """
    slot = _SLOT.get()
    if slot is None:
        return
    if slot.stamp is not None:
        slot.limiter.restamp(slot.stamp)
        slot.stamp = None
    else:
        await slot.limiter.acquire(slot.priority)


class Sender(Protocol):
    channel: str

    async def send(self, contact: Recipient, reply: Reply, meta: Meta) -> Delivered:
        """Deliver one message, or raise `SendError`."""


BROADCAST_PIPELINE = 2  # broadcast batches claimed at once by one worker
JITTER_ROOM_S = 0.02  # how much earlier or later than its neighbours a send may arrive


class RateLimiter:
    """A token bucket for an even pace, and a sliding window for the platform's hard limit.

    The bucket (`rate` per second, up to `burst` saved) spreads sends out and lets a sender
    whose wake-up came a little late catch up. The window is the guarantee: with `limit` set,
    at most `limit` sends leave in any `window` seconds. A window longer than the platform's
    one second by `JITTER_ROOM_S` means sends that reach the platform up to that much earlier
    or later than their neighbours still never make `limit` + 1 in one of its seconds, while
    a late wake-up costs one slot of the window a few milliseconds instead of a whole token.
    (A bucket alone must trade speed for safety: burst + rate * (1 + jitter) < limit + 1.)

    Waiters are served by priority, then in arrival order: a citizen's reply waiting for a
    token goes before every broadcast send already waiting, so it waits one slot at most.
    """

    def __init__(self, rate: float, burst: float = 1, *, limit: int | None = None,
                 window: float = 1.0 + JITTER_ROOM_S):
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.limit = limit
        self.window = window
        self._recent: deque[float] = deque()  # when the last `limit` sends left
        self._waiters: list[tuple[int, int]] = []  # heap of (priority, arrival)
        self._arrivals = itertools.count()
        self._changed = asyncio.Event()

    def _refill(self) -> None:
        now = time.monotonic()
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def _wait(self) -> float:
        """Seconds until a send may leave (0: now)."""
        self._refill()
        now = time.monotonic()
        wait = 0.0
        if self.tokens < 1:
            wait = max(self.stamp - now, 0) + (1 - self.tokens) / self.rate
        if self.limit is not None:
            while self._recent and self._recent[0] <= now - self.window:
                self._recent.popleft()
            if len(self._recent) >= self.limit:
                wait = max(wait, self._recent[0] + self.window - now)
        return wait

    async def acquire(self, priority: int = PRIORITY_REPLY) -> float:
        """Wait for a send slot; return its stamp (for `restamp`)."""
        # one event loop, no await between a check and its wait: no lock is needed
        me = (priority, next(self._arrivals))
        heapq.heappush(self._waiters, me)
        self._poke()
        try:
            while True:
                if self._waiters[0] != me:
                    await self._changed.wait()
                    continue
                wait = self._wait()
                if wait <= 0:
                    self.tokens -= 1
                    stamp = time.monotonic()
                    if self.limit is not None:
                        self._recent.append(stamp)
                    return stamp
                # a higher priority arriving meanwhile becomes the head: re-checked on waking
                await asyncio.sleep(wait)
        finally:
            self._waiters.remove(me)
            heapq.heapify(self._waiters)
            self._poke()

    def restamp(self, stamp: float) -> None:
        """The send admitted at `stamp` leaves only now: count it in the window from now.

        Moving a send later never lets more through than admitted; it keeps whatever ran
        between the token and the request (a database commit, building the request) from
        making two sends arrive closer together than the window assumed.
        """
        if self.limit is None:
            return
        with contextlib.suppress(ValueError):
            self._recent.remove(stamp)
            self._recent.append(max(time.monotonic(), self._recent[-1] if self._recent
                                    else 0.0))

    def _poke(self) -> None:
        """Wake every waiter to look at the head of the line again."""
        self._changed.set()
        self._changed = asyncio.Event()

    def hold(self, seconds: float) -> None:
        """Give out nothing for `seconds` (the platform said it is overloaded)."""
        self._refill()
        self.tokens = min(self.tokens, 0.0)
        self.stamp = max(self.stamp, time.monotonic() + seconds)


class PerChatLimiter:
    """A token bucket per chat: a reply of a few messages may burst, a stream may not."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = float(burst)
        self._state: dict[int, tuple[float, float]] = {}  # chat -> (tokens, stamp)

    def wait(self, chat: int) -> float:
        """Seconds until this chat may be sent to (0 = now)."""
        tokens, stamp = self._state.get(chat, (self.burst, time.monotonic()))
        tokens = min(self.burst, tokens + (time.monotonic() - stamp) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, chat: int) -> None:
        now = time.monotonic()
        tokens, stamp = self._state.get(chat, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        self._state[chat] = (tokens - 1, now)
        if len(self._state) > 50_000:  # forget chats whose bucket is full again
            full = [c for c, (t, s) in self._state.items()
                    if t + (now - s) * self.rate >= self.burst]
            for c in full:
                del self._state[c]


@dataclass
class WorkerStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0


class OutboxWorker:
    """Sends one channel's due rows, replies before notifications before broadcasts.

    Two lanes share the channel's rate limiter: one for replies and notifications, one for
    broadcasts. The broadcast lane claims small batches, never in quiet hours, and asks the
    limiter at the lowest priority, so a reply queued while a broadcast runs is claimed at
    once by its own lane and goes out with the next token. Chats are served concurrently (a
    platform call takes long; the limiter spaces them), each chat's rows in order. A chat over
    its own limit, or told to wait, has its remaining rows put back with a due time instead of
    holding up other chats.
    """

    def __init__(self, db: Database, sender: Sender, *, rate: float, burst: float = 1,
                 per_chat_rate: float | None = None, per_chat_burst: int = 3,
                 batch: int = 50, max_attempts: int = 8, base_backoff: float = 2.0,
                 max_hold: float = 1.0, quiet: Quiet | None = None,
                 broadcast_batch: int = 30, limit: int | None = None,
                 metrics: Metrics | None = None):
        self.db = db
        self.sender = sender
        self.metrics = metrics  # None: nothing is measured
        self.limiter = RateLimiter(rate, burst, limit=limit)
        self.per_chat = PerChatLimiter(per_chat_rate, per_chat_burst) if per_chat_rate else None
        self.batch = batch
        self.broadcast_batch = broadcast_batch
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_hold = max_hold  # the longest a 429 pauses *all* chats
        self.quiet = quiet
        self.stats = WorkerStats()
        self._wake = {MAIN: asyncio.Event(), BROADCASTS: asyncio.Event()}

    def wake(self) -> None:
        for event in self._wake.values():
            event.set()

    async def run(self, idle_poll: float = 1.0) -> None:
        # Two loops share the broadcast lane: while one waits for its batch's last platform
        # answers, the other has claimed the next batch and queues for tokens, so the bucket
        # never fills up unused between batches (one loop lost ~14% of the rate at 300/s).
        await asyncio.gather(self._run(MAIN, idle_poll),
                             *(self._run(BROADCASTS, idle_poll)
                               for _ in range(BROADCAST_PIPELINE)))

    async def _run(self, lane: str, idle_poll: float) -> None:
        while True:
            try:
                sent = await self.drain_once(lane)
            except Exception:  # the database hiccuped; keep the sender alive
                log.exception("outbox worker for %s failed; retrying", self.sender.channel)
                sent = 0
            if sent == 0:
                self._wake[lane].clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(idle_poll):  # not wait_for: see bot.leader
                        await self._wake[lane].wait()

    async def drain_once(self, lane: str | None = None) -> int:
        """Claim and send one batch: of `lane` (MAIN or BROADCASTS), or of every row."""
        if lane == BROADCASTS:
            if self.quiet is not None and self.quiet.until(datetime.now(UTC)) is not None:
                return 0  # the night: broadcasts wait, replies go on in the other lane
            claimed = await self.db.transaction(_claim, self.sender.channel,
                                                self.broadcast_batch, PRIORITY_BROADCAST, None)
        else:
            top = PRIORITY_BROADCAST - 1 if lane == MAIN else None
            claimed = await self.db.transaction(_claim, self.sender.channel, self.batch, None,
                                                top)
        chats: dict[int, list[tuple[Row[Any], Recipient]]] = {}
        for row, contact in claimed:
            chats.setdefault(contact.id, []).append((row, contact))
        await asyncio.gather(*(self._send_chat(rows) for rows in chats.values()))
        return len(claimed)

    async def _send_chat(self, rows: list[tuple[Row[Any], Recipient]]) -> None:
        for i, (row, contact) in enumerate(rows):
            bind_request(f"out-{row.id}", row.payload.get("text"))  # this chat's own task
            if self.per_chat is not None:
                wait = self.per_chat.wait(contact.id)
                if wait > 0:
                    await self.db.run(_defer, [r.id for r, _ in rows[i:]], wait)
                    self.stats.deferred += len(rows) - i
                    return
                self.per_chat.take(contact.id)
            stamp = await self.limiter.acquire(row.priority)
            if row.priority >= PRIORITY_BROADCAST:
                await self.db.transaction(_in_flight, row.id)
            started = time.monotonic()
            try:
                delivered = await self._deliver(row, contact, stamp)
            except SendError as exc:
                if exc.defer_until is not None:  # e.g. today's budget is spent
                    wait = (exc.defer_until - datetime.now(UTC)).total_seconds()
                    await self.db.run(_defer, [r.id for r, _ in rows[i:]], max(wait, 0.0))
                    if row.priority >= PRIORITY_BROADCAST:  # the rest of them too
                        await self.db.transaction(_defer_broadcasts, self.sender.channel,
                                                  exc.defer_until)
                    self.stats.deferred += len(rows) - i
                    return
                delay = await self.db.run(self._record_failure, row.id, contact.id, exc)
                if self.metrics is not None:
                    self.metrics.failed(self.sender.channel, exc)
                log.info("%s send of outbox row %s failed (attempt %d): %s",
                         self.sender.channel, row.id, row.attempts + 1, exc)
                if exc.retry_after:
                    self.limiter.hold(min(exc.retry_after, self.max_hold))
                rest = [r.id for r, _ in rows[i + 1:]]
                if rest:  # keep the chat's order: its later rows wait behind this one
                    await self.db.run(_defer, rest, delay if delay is not None else 0.0)
                return
            except Exception as exc:  # an adapter bug must not stop the queue
                log.exception("sender %s crashed on outbox row %s", self.sender.channel, row.id)
                if self.metrics is not None:
                    self.metrics.failed(self.sender.channel, exc)
                await self.db.run(self._record_failure, row.id, contact.id,
                                  SendError(type(exc).__name__, retryable=True))
                await self.db.run(_defer, [r.id for r, _ in rows[i + 1:]], self.base_backoff)
                return
            await self.db.transaction(_record_sent, row.id, delivered)
            self.stats.sent += 1
            if self.metrics is not None:
                self.metrics.sent(self.sender.channel, started)

    async def _deliver(self, row: Row[Any], contact: Recipient, stamp: float) -> Delivered:
        slot = _SLOT.set(_Slot(self.limiter, row.priority, stamp))
        try:
            return await self.sender.send(contact, Reply.from_dict(row.payload), Meta.of(row))
        finally:
            _SLOT.reset(slot)

    def _record_failure(self, session: Session, row_id: int, contact_id: int,
                        exc: SendError) -> float | None:
        """Record a failed send; return the delay before the next try (None: given up)."""
        row = session.get(Outbox, row_id)
        assert row is not None
        row.attempts += 1
        row.last_error = str(exc)[:1000]
        delay: float | None = None
        if exc.unsendable is not None:
            row.status, row.unsendable_reason = UNSENDABLE, exc.unsendable[:256]
            self.stats.failed += 1
        elif exc.retryable and row.attempts < self.max_attempts:
            delay = exc.retry_after or self.base_backoff * 2 ** (row.attempts - 1)
            row.status = PENDING
            row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
            self.stats.retried += 1
        else:
            row.status = FAILED
            self.stats.failed += 1
        if exc.blocked or exc.opted_out:  # a reason the broadcast report counts
            row.unsendable_reason = "blocked" if exc.blocked else "opted_out"
            mark_contact(session.connection(), contact_id, blocked=exc.blocked,
                         opted_out=exc.opted_out)
        session.add(row)
        session.commit()
        return delay


@dataclass(frozen=True, slots=True)
class Recipient:
    """The contact as a sender needs it (an ORM `Contact` has the same fields)."""

    id: int
    channel: str
    external_id: str
    display_name: str | None
    language: str
    last_inbound_at: datetime | None


_RECIPIENT = [contact_t.c[f] for f in Recipient.__slots__]  # type: ignore[attr-defined]


@functools.cache
def _claim_query(by: str, postgresql: bool) -> Select[Any]:
    """Built once per kind: building a statement costs more than running it (the claim ran
    for every reply; with the ORM it was a fifth of a turn's CPU)."""
    query = (
        select(outbox_t.c.id, outbox_t.c.priority, outbox_t.c.payload, outbox_t.c.attempts,
               contact_t.c.blocked_at, contact_t.c.opted_in,
               *[c.label(f"c_{c.name}") for c in _RECIPIENT])
        .join(contact_t, contact_t.c.id == outbox_t.c.contact_id)
        .where(outbox_t.c.channel == bindparam("channel"), outbox_t.c.status == PENDING,
               outbox_t.c.next_attempt_at <= bindparam("now"))
        .order_by(outbox_t.c.priority, outbox_t.c.id)
        .limit(bindparam("limit"))
    )
    if by == "priority":
        query = query.where(outbox_t.c.priority == bindparam("priority"))
    elif by == "top":
        query = query.where(outbox_t.c.priority <= bindparam("top"))
    if postgresql:
        query = query.with_for_update(skip_locked=True, of=outbox_t)
    return query


_CLAIMED = (update(outbox_t).where(outbox_t.c.id.in_(bindparam("ids", expanding=True)))
            .values(status=SENDING))  # an earlier attempt's error stays until the next result
_REFUSED = (update(outbox_t).where(outbox_t.c.id.in_(bindparam("ids", expanding=True)))
            .values(status=FAILED, last_error=bindparam("error"),
                    unsendable_reason=bindparam("reason")))


def _claim(conn: Connection, channel: str, limit: int, priority: int | None,
           top: int | None) -> list[tuple[Row[Any], Recipient]]:
    """Take due rows (of one `priority`, or up to `top`). Rows for a contact that blocked
    Lontar, and outreach to a contact that has not opted in (or opted out), fail here
    without a send, with the reason the broadcast report counts."""
    by = "priority" if priority is not None else "top" if top is not None else "all"
    query = _claim_query(by, conn.dialect.name == "postgresql")
    rows = conn.execute(query, {"channel": channel, "now": datetime.now(UTC), "limit": limit,
                                "priority": priority, "top": top}).all()
    live, blocked, not_in = [], [], []
    for row in rows:
        if row.blocked_at is not None:
            blocked.append(row.id)
        elif row.priority >= PRIORITY_BROADCAST and not row.opted_in:
            not_in.append(row.id)
        else:
            live.append((row, Recipient(*row[-len(_RECIPIENT):])))
    if live:
        conn.execute(_CLAIMED, {"ids": [r.id for r, _ in live]})
    for ids, error, reason in ((blocked, "contact has blocked Lontar", "blocked"),
                               (not_in, "contact has not opted in to outreach", "opted_out")):
        if ids:
            conn.execute(_REFUSED, {"ids": ids, "error": error, "reason": reason})
    return live


def _defer(session: Session, ids: list[int], seconds: float) -> None:
    """Put claimed rows back, due after `seconds`, without counting an attempt."""
    if ids:
        session.execute(
            update(outbox_t).where(outbox_t.c.id.in_(ids),
                                   outbox_t.c.status.in_((SENDING, IN_FLIGHT)))
            .values(status=PENDING,
                    next_attempt_at=datetime.now(UTC) + timedelta(seconds=seconds)))
        session.commit()


def _in_flight(conn: Connection, row_id: int) -> None:
    """Committed before a broadcast row's platform call: after a crash, in doubt."""
    conn.execute(update(outbox_t).where(outbox_t.c.id == row_id).values(status=IN_FLIGHT))


def _defer_broadcasts(conn: Connection, channel: str, until: datetime) -> None:
    """Today's budget is spent: every waiting broadcast row on the channel goes on then."""
    conn.execute(update(outbox_t).where(
        outbox_t.c.channel == channel, outbox_t.c.status == PENDING,
        outbox_t.c.priority >= PRIORITY_BROADCAST, outbox_t.c.next_attempt_at < until)
        .values(next_attempt_at=until))


_SENT = (update(outbox_t).where(outbox_t.c.id == bindparam("rid"))
         .values(status=SENT, sent_at=bindparam("now"), platform_message_id=bindparam("pmid"),
                 template=bindparam("template"), attempts=outbox_t.c.attempts + 1))


def _record_sent(conn: Connection, row_id: int, delivered: Delivered) -> None:
    """One statement on the send path: with SQLite on the loop, every millisecond counts."""
    conn.execute(_SENT, {"rid": row_id, "now": datetime.now(UTC),
                         "pmid": delivered.platform_id, "template": delivered.template})


def mark_contact(conn: Connection, contact_id: int, *, blocked: bool = False,
                 opted_out: bool = False) -> None:
    """A platform said the contact is unreachable (blocked) or wants no outreach."""
    now = datetime.now(UTC)
    if blocked:
        consent.blocked(conn, contact_id, now)
    if opted_out:
        consent.opt_out(conn, contact_id, now)
