"""A shutdown's cancellation is never lost, however it lines up with a wait ending.

Python 3.11's `asyncio.wait_for` returns the inner result when a cancellation reaches it
after that result is in but before it has resumed, and the cancellation is gone: a leader
kept leading after shutdown cancelled it, and CI waited on it until its time ran out. Each
test cancels a task at every offset of a few loop turns around the moment its wait ends
(where exactly 3.11's window falls depends on asyncio's internals) and checks that the task
ends, cancelled, each time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app import Lontar
from bot.db import make_engine
from bot.lanes import ChatLanes
from bot.leader import Leadership
from bot.outbox import MAIN, OutboxWorker
from tests.waiting import until

OFFSETS = range(6)  # loop turns between the wait's end and the cancellation


def _after_turns(loop: asyncio.AbstractEventLoop, turns: int, fn: Callable[[], object]) -> None:
    if turns == 0:
        fn()
    else:
        loop.call_soon(_after_turns, loop, turns - 1, fn)


class Cancel:
    """Cancels `task` when called and remembers whether the task was still running then."""

    def __init__(self, task: asyncio.Task[object]):
        self.task = task
        self.accepted: bool | None = None

    def __call__(self) -> None:
        self.accepted = self.task.cancel()

    async def ended(self, offset: int) -> None:
        await until(lambda: self.accepted is not None, timeout=5)
        done, _ = await asyncio.wait({self.task}, timeout=5)
        assert done, f"cancelled {offset} turns after the wait ended, the task went on running"
        if self.accepted:  # it was running when cancelled: it must not have finished normally
            assert self.task.cancelled(), self.task


@pytest.mark.parametrize("offset", OFFSETS)
async def test_a_leader_checking_its_lock_stops_when_cancelled(
        offset: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    cancel: Cancel | None = None

    def alive(conn: object) -> bool:  # runs in a thread; the answer follows the request
        assert cancel is not None
        loop.call_soon_threadsafe(_after_turns, loop, offset, cancel)
        return True

    monkeypatch.setattr(Leadership, "_alive", staticmethod(alive))
    engine = make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    cancel = Cancel(asyncio.create_task(
        Leadership(engine)._check(object())))  # type: ignore[arg-type]
    await cancel.ended(offset)
    engine.dispose()


class _Idle:
    channel = "fake"


@pytest.mark.parametrize("offset", OFFSETS)
async def test_an_idle_sender_stops_when_cancelled_as_it_is_woken(
        offset: int, lontar: Lontar) -> None:
    worker = OutboxWorker(lontar.db, _Idle(), rate=30)  # type: ignore[arg-type]
    task = asyncio.create_task(worker._run(MAIN, idle_poll=3600))
    for _ in range(20):  # it finds the queue empty and waits to be woken
        await asyncio.sleep(0.01)
    worker.wake()
    cancel = Cancel(task)  # type: ignore[arg-type]
    _after_turns(asyncio.get_running_loop(), offset, cancel)
    await cancel.ended(offset)


@pytest.mark.parametrize("offset", OFFSETS)
async def test_lanes_closing_as_their_last_job_ends_still_stop(offset: int) -> None:
    lanes = ChatLanes("test")
    release = asyncio.Event()

    async def job() -> None:
        await release.wait()

    lanes.submit("chat", job)
    closing = asyncio.create_task(lanes.close(grace=3600))
    await asyncio.sleep(0.01)
    release.set()
    cancel = Cancel(closing)  # type: ignore[arg-type]
    _after_turns(asyncio.get_running_loop(), offset, cancel)
    await cancel.ended(offset)
