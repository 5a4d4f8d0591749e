"""Leadership: one process leads; on SQLite it always does, and a shutdown deposes it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.db import make_engine
from bot.leader import Leadership
from tests.conftest import ON_POSTGRES
from tests.waiting import until


def _tracker() -> tuple[list[str], object, object]:
    events: list[str] = []

    async def elected() -> None:
        events.append("elected")

    async def deposed() -> None:
        events.append("deposed")

    return events, elected, deposed


async def test_sqlite_leads_at_once_and_is_deposed_on_shutdown(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    events, elected, deposed = _tracker()
    leader = Leadership(engine)
    task = asyncio.create_task(leader.run(elected, deposed))  # type: ignore[arg-type]
    await until(lambda: events == ["elected"])
    assert leader.leading
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert events == ["elected", "deposed"] and not leader.leading
    engine.dispose()


@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (LONTAR_TEST_DATABASE_URL)")
async def test_one_leads_and_the_other_takes_over(database_url: str) -> None:
    engine = make_engine(database_url)
    first_events, first_elected, first_deposed = _tracker()
    second_events, second_elected, second_deposed = _tracker()
    first, second = Leadership(engine, retry=0.2), Leadership(engine, retry=0.2)
    a = asyncio.create_task(first.run(first_elected, first_deposed))  # type: ignore[arg-type]
    await until(lambda: first.leading)
    b = asyncio.create_task(second.run(second_elected, second_deposed))  # type: ignore[arg-type]
    await asyncio.sleep(1.0)
    assert not second.leading and second_events == []
    a.cancel()
    await asyncio.gather(a, return_exceptions=True)
    assert first_events == ["elected", "deposed"]
    await until(lambda: second.leading, timeout=5)
    b.cancel()
    await asyncio.gather(b, return_exceptions=True)
    assert second_events == ["elected", "deposed"]
    engine.dispose()


class SilentNetwork:
    """A TCP relay to PostgreSQL that can go silent: it stops passing bytes either way and
    closes nothing, as a dropped route or a dead switch does (no error reaches either end)."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.silent = False
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> SilentNetwork:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in self._writers:
            w.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                while self.silent:  # hold the bytes; never deliver them
                    await asyncio.sleep(3600)
                dst.write(data)
                await dst.drain()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer),
                             return_exceptions=True)


@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (LONTAR_TEST_DATABASE_URL)")
async def test_a_leader_cut_off_by_a_silent_network_steps_down(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its check of the lock's connection waited for TCP to give up (minutes): meanwhile it
    went on sending as leader. Now it steps down within ALIVE_TIMEOUT, and the lock's session
    asks the server to probe it, so the server can free the lock for another process."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    import bot.leader as leader_mod

    url = make_url(database_url)
    seen: list[str] = []
    alive = leader_mod.Leadership._alive

    def checked(conn):  # type: ignore[no-untyped-def]
        if not seen:
            seen.append(str(conn.execute(text("SHOW tcp_keepalives_idle")).scalar()))
        return alive(conn)

    monkeypatch.setattr(leader_mod.Leadership, "_alive", staticmethod(checked))
    async with SilentNetwork(url.host or "127.0.0.1", url.port or 5432) as net:
        engine = make_engine(url.set(host="127.0.0.1", port=net.port)
                             .render_as_string(hide_password=False))
        events, elected, deposed = _tracker()
        leader = Leadership(engine, retry=0.2)
        task = asyncio.create_task(leader.run(elected, deposed))  # type: ignore[arg-type]
        await until(lambda: leader.leading and seen)
        assert seen == [str(leader_mod.KEEPALIVE_IDLE)]  # seconds, as the server reports it
        net.silent = True
        began = asyncio.get_running_loop().time()
        await until(lambda: events == ["elected", "deposed"],
                    timeout=leader_mod.ALIVE_TIMEOUT + 5)
        assert not leader.leading
        assert asyncio.get_running_loop().time() - began < leader_mod.ALIVE_TIMEOUT + 3
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        engine.dispose()
