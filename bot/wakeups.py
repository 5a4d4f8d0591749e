"""The name of a deployment's wake-up channel, and the wake-up a transaction sends at commit.

Apart from bot.notify (the psycopg connections that send and listen on the event loop) so
that the services can queue a wake-up without importing psycopg: importing it from the
channels' import chain, ahead of the rest, raised a process's peak memory by 10 MB
(bench/broadcast.py's peak_rss_mb, 145 -> 155).
"""

from __future__ import annotations

import zlib
from collections.abc import Collection

from sqlalchemy import Connection, text


def channel_name(schema: str) -> str:
    """The notification channel of the deployment whose tables are in `schema`.

    Hashed like the leader lock's key, so any schema name gives a plain identifier that
    needs no quoting and fits PostgreSQL's 63-byte limit.
    """
    return f"lontar_outbox_{zlib.crc32(schema.encode()):08x}"


def notify_at_commit(conn: Connection, channels: Collection[str]) -> None:
    """Wake the leader's senders for `channels` when `conn`'s transaction commits.

    For rows queued outside a running Lontar (the CLI: `lontar applications import`,
    `lontar broadcast test`), which has no event loop or Notifier of its own; PostgreSQL
    holds a NOTIFY until the commit and drops it on a rollback. Nothing on SQLite, where the
    CLI's rows wait for the one process's poll (a second at most).
    """
    if not channels or conn.dialect.name != "postgresql":
        return
    schema = str(conn.execute(text("SELECT current_schema()")).scalar() or "public")
    conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                 {"channel": channel_name(schema), "payload": ",".join(sorted(channels))})
