"""Which process runs the scheduler and the senders.

Any number of Lontar processes may take webhooks and web chat turns, but only one may send
(the platform limits are per bot, and two schedulers would queue a broadcast twice) and only
one may long-poll Telegram. On PostgreSQL that one holds a session advisory lock on a
connection of its own: when the process dies its connection closes, PostgreSQL releases the
lock, and another process, trying every `retry` seconds, takes over. On SQLite (one machine,
one process) the process leads from the start.

A process that loses its connection (the database restarted, the network failed) stops its
senders at once: another process may already hold the lock. A network that silently drops
packets closes nothing, so both ends watch the lock's connection: the leader gives up when its
check does not answer within `ALIVE_TIMEOUT` seconds, and the server, with TCP keepalives set
on that session, ends it (releasing the lock for another process) about `KEEPALIVE_IDLE` +
`KEEPALIVE_INTERVAL` x `KEEPALIVE_COUNT` seconds after the leader went silent. Without them,
the server kept a vanished leader's lock for its default two hours of keepalive idle.

The leader's senders hear about the other processes' commits through PostgreSQL
notifications (bot.notify), listened to only while leading; their idle poll is the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

LOCK_BASE = 0x4C4F4E54 << 32  # "LONT"; the low half names the schema Lontar's tables are in
RETRY_SECONDS = 2.0
ALIVE_TIMEOUT = 5.0  # a check of the lock's connection that takes longer: the leader steps down
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 5, 2, 3  # seconds, seconds, probes
# libpq settings for the lock's connection: connect in bounded time, and let the client's
# kernel give up on a peer that stopped acknowledging
_LOCK_CONNECT_ARGS = {
    "connect_timeout": 5, "keepalives": 1, "keepalives_idle": KEEPALIVE_IDLE,
    "keepalives_interval": KEEPALIVE_INTERVAL, "keepalives_count": KEEPALIVE_COUNT,
    "tcp_user_timeout": int(ALIVE_TIMEOUT * 2 * 1000),
}

Hook = Callable[[], Awaitable[None]]


def lock_key(schema: str) -> int:
    """One lock per schema: two deployments sharing a database (or tests, each in a schema
    of its own) do not lead each other."""
    return LOCK_BASE | zlib.crc32(schema.encode())


class Leadership:
    def __init__(self, engine: Engine, *, retry: float = RETRY_SECONDS):
        self.url = engine.url
        self.exclusive = engine.dialect.name == "postgresql"
        self.retry = retry
        self.leading = False
        self._engine: Engine | None = None
        self._key = LOCK_BASE

    async def run(self, elected: Hook, deposed: Hook) -> None:
        """Lead whenever this process can, until cancelled."""
        if not self.exclusive:
            self.leading = True
            try:
                await elected()
                await asyncio.Event().wait()
            finally:  # shutting down: the scheduler stops with the senders
                self.leading = False
                await deposed()
        self._engine = create_engine(  # the lock's own session
            self.url, poolclass=NullPool, connect_args=_LOCK_CONNECT_ARGS)
        try:
            while True:
                conn = await asyncio.to_thread(self._try_lock)
                if conn is None:
                    await asyncio.sleep(self.retry)
                    continue
                try:
                    log.info("this process leads: the scheduler and the senders run here")
                    self.leading = True
                    await elected()
                    while await self._check(conn):
                        await asyncio.sleep(self.retry)
                    log.warning("lost the leader lock's connection; stopping the senders")
                finally:
                    self.leading = False
                    with contextlib.suppress(Exception):
                        await deposed()
                    # not awaited: on a silent network closing may block until the kernel
                    # gives up, and trying to lead again must not wait for that
                    asyncio.get_running_loop().run_in_executor(None, self._release, conn)
        finally:
            self._engine.dispose()

    def _try_lock(self) -> Connection | None:
        assert self._engine is not None
        try:
            conn = self._engine.connect()
        except SQLAlchemyError:
            log.warning("database unreachable; will try to lead again", exc_info=True)
            return None
        try:
            # the server's side of the keepalives: it ends this session (and so releases the
            # lock) when the leader's machine stops answering
            for name, value in (("idle", KEEPALIVE_IDLE), ("interval", KEEPALIVE_INTERVAL),
                                ("count", KEEPALIVE_COUNT)):
                conn.execute(text(f"SET tcp_keepalives_{name} = {int(value)}"))
            self._key = lock_key(str(conn.execute(text("SELECT current_schema()")).scalar()))
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                               {"k": self._key}).scalar()
            conn.commit()
        except SQLAlchemyError:
            conn.close()
            return None
        if not got:
            conn.close()
            return None
        return conn

    async def _check(self, conn: Connection) -> bool:
        """The lock's connection answers in time (a silent network never says it failed)."""
        try:  # not wait_for: on 3.11 it may swallow a cancellation
            # that arrives as the check answers, and a shut-down leader went on leading
            async with asyncio.timeout(ALIVE_TIMEOUT):
                return await asyncio.to_thread(self._alive, conn)
        except TimeoutError:
            return False

    @staticmethod
    def _alive(conn: Connection) -> bool:
        try:
            conn.execute(text("SELECT 1")).scalar()
            conn.commit()
            return True
        except SQLAlchemyError:
            return False

    def _release(self, conn: Connection) -> None:
        with contextlib.suppress(Exception):
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            conn.commit()
        with contextlib.suppress(Exception):
            conn.close()
