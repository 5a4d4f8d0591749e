"""Two processes turning updates on one PostgreSQL: each update once, no turn lost.

Each process serialises a chat's turns with in-process locks only; across processes the
inbound row and the contact row are locked for the turn (SELECT ... FOR UPDATE). Two `Lontar`
objects here are two engines with pools of their own, as two processes would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.app import Lontar, build
from bot.config import load_settings
from bot.inbox import Inbound
from bot.models import Conversation, Outbox
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(not ON_POSTGRES,
                                reason="needs PostgreSQL (LONTAR_TEST_DATABASE_URL)")
ROUNDS = 15


def _in(ext: str, pid: str) -> Inbound:
    return Inbound(channel="telegram", external_id=ext, platform_id=pid, kind="text",
                   payload={"text": "syarat kk"})


@pytest.fixture
def two(tmp_path: Path, database_url: str) -> Iterator[tuple[Lontar, Lontar]]:
    """Two processes' worth of Lontar on one schema."""
    a = build(load_settings(data_dir=tmp_path / "a"))
    b = build(load_settings(data_dir=tmp_path / "b"))
    yield a, b
    a.close()
    b.close()


async def test_one_update_turned_by_two_processes_at_once_is_turned_once(
        two: tuple[Lontar, Lontar]) -> None:
    a, b = two
    for i in range(ROUNDS):
        received = await a.inbox.receive(_in("same-update", f"u{i}"))
        done = await asyncio.gather(a.inbox.process(received.inbound_id),
                                    b.inbox.process(received.inbound_id))
        assert sorted(done) == [False, True]
    with a.db.session() as s:
        conv = s.exec(select(Conversation)).one()
        replied = s.exec(select(Outbox.inbound_id)).all()
    assert conv.turns == ROUNDS
    assert len(set(replied)) == ROUNDS


async def test_two_updates_of_one_chat_in_two_processes_lose_no_turn(
        two: tuple[Lontar, Lontar]) -> None:
    """Without the contact row lock both loaded the same state and the second save won."""
    a, b = two
    for i in range(ROUNDS):
        first = await a.inbox.receive(_in("one-chat", f"x{i}"))
        second = await b.inbox.receive(_in("one-chat", f"y{i}"))
        done = await asyncio.gather(a.inbox.process(first.inbound_id),
                                    b.inbox.process(second.inbound_id))
        assert done == [True, True]
    with a.db.session() as s:
        assert s.exec(select(Conversation)).one().turns == 2 * ROUNDS
