"""Per-chat lanes: chats side by side, one chat's work in arrival order."""

from __future__ import annotations

import asyncio

from bot.lanes import ChatLanes


async def test_one_chat_in_order_even_when_the_first_job_is_slow() -> None:
    lanes = ChatLanes("test")
    done: list[str] = []

    def job(name: str, pause: float):  # type: ignore[no-untyped-def]
        async def run() -> None:
            await asyncio.sleep(pause)
            done.append(name)
        return run

    lanes.submit("a", job("a1", 0.05))
    lanes.submit("a", job("a2", 0))
    lanes.submit("b", job("b1", 0))
    assert len(lanes) == 3
    await lanes.join()
    assert done == ["b1", "a1", "a2"]  # b did not wait for a; a2 waited for a1
    assert len(lanes) == 0


async def test_a_failing_job_does_not_stop_its_lane(caplog) -> None:  # type: ignore[no-untyped-def]
    lanes = ChatLanes("test")
    done: list[int] = []

    async def broken() -> None:
        raise RuntimeError("database went away")

    async def fine() -> None:
        done.append(1)

    lanes.submit("a", broken)
    lanes.submit("a", fine)
    await lanes.join()
    assert done == [1]
    assert "a job failed" in caplog.text


async def test_jobs_submitted_while_joining_are_waited_for() -> None:
    lanes = ChatLanes("test")
    done: list[str] = []

    async def second() -> None:
        done.append("second")

    async def first() -> None:
        await asyncio.sleep(0.01)
        lanes.submit("other", second)  # a new lane opened while join() waits
        done.append("first")

    lanes.submit("a", first)
    await lanes.join()
    assert done == ["first", "second"]


async def test_close_waits_for_the_grace_then_cancels() -> None:
    lanes = ChatLanes("test")
    done: list[str] = []
    cancelled = asyncio.Event()

    async def quick() -> None:
        await asyncio.sleep(0.01)
        done.append("quick")

    async def stuck() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    lanes.submit("a", quick)
    lanes.submit("b", stuck)
    lanes.submit("b", quick)  # behind the stuck one: never runs
    started = asyncio.get_running_loop().time()
    await lanes.close(grace=0.2)
    assert asyncio.get_running_loop().time() - started < 5
    assert done == ["quick"] and cancelled.is_set()
    assert len(lanes) == 0


async def test_jobs_do_not_inherit_the_submitters_context() -> None:
    """A lane outlives the webhook request that opened it and runs that chat's later updates
    too: the request's id (bot.logs keeps it in a context variable) must not follow them."""
    from bot.logs import current_request_id, request_scope

    lanes = ChatLanes("test")
    seen: list[str] = []

    async def job() -> None:
        seen.append(current_request_id())
        with request_scope("in-7"):
            seen.append(current_request_id())

    with request_scope("http-request-1"):
        lanes.submit("a", job)
    await lanes.join()
    assert seen == ["-", "in-7"]
