"""Database engine, migrations, and where blocking database work runs.

SQLite work runs on the event loop's own thread. A turn is ~1.5 ms of mostly Python work
(SQLAlchemy, the engine), and handing it to a worker thread made the two threads fight for
the GIL: measured with bench/turns.py, a worker thread gave 700-800 turns/s with p99 17-124 ms
at 500 turns/s; running inline gives ~1000 turns/s with p99 ~5 ms. SQLite allows one writer
anyway, so nothing is lost; the price is that a slow disk (a WAL checkpoint) can hold the loop
for a few milliseconds. PostgreSQL work goes to a pool of threads, where the network wait
releases the GIL and several connections do work at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlmodel import Session

T = TypeVar("T")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite delays BEGIN until the first write, which breaks rollback of a whole
        # transaction that started with reads; take over BEGIN as SQLAlchemy documents.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=5)


def _sqlite_begin(conn: Any) -> None:
    conn.connection.driver_connection.execute("BEGIN")  # straight to the driver: hot path


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # autocommit at the driver; SQLAlchemy emits BEGIN
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("bot") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (alembic), on the engine's own connection."""
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


class Database:
    """Owns the engine and runs blocking session work off the event loop."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.inline = self.engine.dialect.name == "sqlite"
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="db")
        # inline (SQLite): transactions run one after another on the loop's thread, so one
        # connection serves them all; checking one out of the pool per transaction cost
        # ~90 us, and a turn is several transactions (measured with bench/load.py)
        self._conn: Connection | None = None

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        with self.session() as session:
            return fn(session, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(session, *args)` (ORM) where database work runs, and await its result."""
        if self.inline:
            return self._call(fn, *args)
        loop = asyncio.get_running_loop()
        # in a copy of the caller's context: log lines keep its request id (bot.logs)
        return await loop.run_in_executor(
            self._executor, partial(copy_context().run, self._call, fn, *args))

    def _call_tx(self, fn: Callable[..., T], *args: Any) -> T:
        if self.inline:
            conn = self._conn
            if conn is None or conn.closed or conn.invalidated:
                conn = self._conn = self.engine.connect()
            with conn.begin():
                return fn(conn, *args)
        with self.engine.begin() as conn:
            return fn(conn, *args)

    async def transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` in one transaction, where database work runs.

        The hot path (a citizen's turn) uses SQLAlchemy Core on a plain connection: the ORM
        unit of work costs several times more per statement than the work itself.
        """
        if self.inline:
            return self._call_tx(fn, *args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, partial(copy_context().run, self._call_tx, fn, *args))

    def upgrade(self) -> None:
        upgrade(self.engine)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()
