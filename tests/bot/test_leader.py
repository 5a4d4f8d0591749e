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
