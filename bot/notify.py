"""Waking the leader's senders from another process (PostgreSQL LISTEN/NOTIFY).

Only the leader (bot.leader) runs the outbox workers. A reply committed by any other process
(a `LONTAR_ROLE=receiver`, or an `all` process that does not hold the lock) would otherwise
wait for the leader's next idle poll, up to a second. So after its commit such a process sends
`pg_notify(<channel>, 'telegram')`, and the leader, listening on a connection of its own,
wakes its worker for that channel at once. The poll stays the guarantee: a notification lost
(listener reconnecting, database hiccup) only costs the old delay, never a message.

Both sides use psycopg 3's async connections on the event loop, one each, apart from the
engine's pool: a NOTIFY is one short round trip that must not take a pooled connection from
a turn, and LISTEN needs a connection that stays open and idle.

The notification channel is named per schema, as the leader lock is (`bot.leader.lock_key`):
two deployments sharing a database, or tests each in a schema of their own, do not wake each
other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

from bot.wakeups import channel_name

log = logging.getLogger(__name__)

# A burst of commits (500 turns/s) becomes one NOTIFY per this window, naming every channel
# that had something: short enough to be invisible next to a platform call, long enough that
# the round trips never add up to load on the event loop or the database.
DEBOUNCE_SECONDS = 0.005
# After a failed NOTIFY, later ones are skipped this long (the poll covers them) rather than
# trying to connect once per commit while the database is unreachable.
NOTIFY_RETRY_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 5
# The listener checks its connection this often: a connection that died without a word (a
# network partition) would otherwise leave it waiting for notifications forever.
HEARTBEAT_SECONDS = 30.0
RECONNECT_FIRST, RECONNECT_MAX = 0.5, 15.0


def _connect_kwargs(engine: Engine) -> dict[str, Any]:
    """The libpq parameters SQLAlchemy would use (host, search_path options, ...)."""
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    if args:  # psycopg takes a conninfo string first; SQLAlchemy passes keywords only today
        kwargs = {"conninfo": args[0], **kwargs}
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    return dict(kwargs)


async def _open(kwargs: dict[str, Any]) -> tuple[psycopg.AsyncConnection[Any], str]:
    """An autocommit connection and the channel of the schema it sees first."""
    conn = await psycopg.AsyncConnection.connect(autocommit=True, **kwargs)
    try:
        cur = await conn.execute("SELECT current_schema()")
        row = await cur.fetchone()
        return conn, channel_name(str(row[0] if row else "public"))
    except BaseException:
        await conn.close()
        raise


class Notifier:
    """Sends "channel X has something to send" to whichever process leads; never raises.

    `notify` is called right after a commit, on the event loop; it only records the channel
    and makes sure one flush is under way, so a commit never waits for the database twice.
    """

    def __init__(self, engine: Engine, *, delay: float = DEBOUNCE_SECONDS,
                 retry: float = NOTIFY_RETRY_SECONDS):
        self._kwargs = _connect_kwargs(engine)
        self.delay = delay
        self.retry = retry
        self.sent = 0  # NOTIFY statements sent, for tests and curiosity
        self._pending: set[str] = set()
        self._flush: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._channel = ""
        self._quiet_until = 0.0

    def notify(self, channel: str) -> None:
        """Queue a wake-up for `channel`'s sender; sent within `delay`, with any others."""
        if time.monotonic() < self._quiet_until:
            return  # just failed: the leader's poll finds the row
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop (a script): the poll will do
            return
        self._pending.add(channel)
        if self._flush is None or self._flush.done():
            self._flush = loop.create_task(self._send(), name="notify:outbox")

    async def _send(self) -> None:
        while self._pending:
            await asyncio.sleep(self.delay)  # let the rest of a burst join this NOTIFY
            channels, self._pending = self._pending, set()
            try:
                if self._conn is None or self._conn.closed:
                    self._conn, self._channel = await _open(self._kwargs)
                await self._conn.execute("SELECT pg_notify(%s, %s)",
                                         (self._channel, ",".join(sorted(channels))))
                self.sent += 1
            except (psycopg.Error, OSError) as exc:  # never the turn's problem: it committed
                log.warning("could not notify the leader (%s); its poll will find the "
                            "outbox rows", type(exc).__name__)
                self._pending.clear()
                self._quiet_until = time.monotonic() + self.retry
                await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        """Send what is pending (a few milliseconds' worth) and close the connection."""
        if self._flush is not None and not self._flush.done():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):  # not wait_for: see bot.leader
                    await asyncio.shield(self._flush)
            self._flush.cancel()
            await asyncio.gather(self._flush, return_exceptions=True)
        await self._drop()


class Listener:
    """The leader's side: wakes local senders when another process notifies.

    Run `listen` as a task while leading and cancel it when deposed. On each (re)connection
    every channel is woken once, for whatever was committed while nobody listened.
    """

    def __init__(self, engine: Engine, *, heartbeat: float = HEARTBEAT_SECONDS):
        self._kwargs = _connect_kwargs(engine)
        self.heartbeat = heartbeat
        self.listening = asyncio.Event()  # set while LISTEN is in effect (tests wait on it)

    async def listen(self, wake: Callable[[str], None], channels: Collection[str]) -> None:
        """Call `wake(channel)` for each notified channel, until cancelled."""
        backoff = RECONNECT_FIRST
        while True:
            try:
                conn, name = await _open(self._kwargs)
                try:
                    await conn.execute(f"LISTEN {name}")  # a hashed name: nothing to quote
                    self.listening.set()
                    backoff = RECONNECT_FIRST
                    for channel in channels:
                        wake(channel)
                    while True:
                        async for note in conn.notifies(timeout=self.heartbeat):
                            for channel in note.payload.split(","):
                                wake(channel)
                        async with asyncio.timeout(self.heartbeat):  # see bot.leader
                            await conn.execute("SELECT 1")
                finally:  # not `async with`: its rollback could wait on a dead network
                    await conn.close()
            except (psycopg.Error, OSError) as exc:  # TimeoutError too; the poll covers gaps
                log.warning("leader's notification listener lost its connection (%s); "
                            "reconnecting in %.1f s, senders keep polling",
                            type(exc).__name__, backoff)
            finally:
                self.listening.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX)
