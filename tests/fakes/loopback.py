"""What the fake platform servers share: a loopback aiohttp server and a rate window."""

from __future__ import annotations

import socket
import time
from collections import deque
from typing import Self

from aiohttp import web


class SlidingWindow:
    """At most `rate` events in any one-second window, as platforms count them."""

    def __init__(self, rate: float):
        self.window = max(1.0, 1.0 / rate)
        self.capacity = max(1, round(rate * self.window))
        self._times: deque[float] = deque()

    def admit(self) -> bool:
        """Record an event now; False (not recorded) when it would exceed the rate."""
        now = time.monotonic()
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        if len(self._times) >= self.capacity:
            return False
        self._times.append(now)
        return True


class LoopbackServer:
    """An aiohttp application on a free 127.0.0.1 port; `async with` starts and stops it."""

    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        raise NotImplementedError

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, app: web.Application) -> str:
        """Serve `app`; return its root URL."""
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
