"""Work for many chats at once, each chat's work in the order it arrived.

A webhook is acknowledged as soon as its update is stored; the turn runs afterwards. Running
those turns one at a time (as the WhatsApp channel did) made every citizen wait for everyone
who wrote before them: under load the queue fell seconds behind. One task per update (as the
Telegram webhook did) runs chats side by side, but two updates of one chat could then be
processed out of order whenever the first one waited longer (a media download, a database
thread). A lane per chat keeps both: different chats run concurrently, one chat's updates run
one after another in arrival order, and a chat with nothing waiting costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]
STOP_GRACE_S = 5.0  # at shutdown, turns under way may finish; the rest stays stored


class ChatLanes:
    def __init__(self, name: str):
        self.name = name  # for log lines and task names
        self._waiting: dict[Hashable, deque[Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: Hashable, job: Job) -> None:
        """Run `job()` after every job submitted before it for the same key."""
        queued = self._waiting.get(key)
        if queued is not None:  # the chat's lane is running: it takes this one next
            queued.append(job)
            return
        self._waiting[key] = deque([job])
        # a context of its own: the lane outlives the request that opened it and runs later
        # updates too, so it must not carry that request's id (bot.logs) into their turns
        task = asyncio.create_task(self._drain(key), name=f"{self.name}-lane",
                                   context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __len__(self) -> int:
        """Jobs submitted and not finished (running ones included)."""
        return sum(len(q) for q in self._waiting.values())

    async def _drain(self, key: Hashable) -> None:
        queued = self._waiting[key]
        try:
            while queued:
                try:
                    await queued[0]()
                except Exception:  # the job logs what it knows; the lane goes on
                    log.exception("%s: a job failed", self.name)
                queued.popleft()
        finally:  # also when cancelled: the update stays stored for the next start
            del self._waiting[key]

    async def join(self) -> None:
        """Wait until every submitted job has run (jobs submitted meanwhile included)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self, grace: float = STOP_GRACE_S) -> None:
        """At shutdown: let jobs under way finish for `grace` seconds, then cancel the rest
        (their updates stay stored, unprocessed, for the leader)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):  # not wait_for: see bot.leader
                await self.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
