"""python-telegram-bot's HTTP transport over aiohttp instead of httpx.

Why: python-telegram-bot builds, validates and parses every Bot API call; only the transport
is pluggable (`telegram.request.BaseRequest`). Its default, httpx, spent about 1.1 ms of CPU
per sendMessage on this project's bench machine, and more the more connections were open
(1.7 ms at 20 in flight) — at a broadcast's full rate that was most of the event loop.
aiohttp, which Lontar already uses for WhatsApp and the web, does the same request for a
fraction of that (figures in bench/broadcast.py's docstring). Errors map to the same
python-telegram-bot exceptions httpx's transport raises, so the channel code is unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_UNSET = BaseRequest.DEFAULT_NONE


class AiohttpRequest(BaseRequest):
    """One aiohttp session with at most `connection_pool_size` connections to the Bot API."""

    def __init__(self, *, connection_pool_size: int = 16, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0, media_write_timeout: float | None = 20.0,
                 before_send: Callable[[], Awaitable[None]] | None = None):
        """`before_send` is awaited right before each request that sends or edits a message
        (what Telegram's limit counts): the outbox's pacing, as close to the wire as it gets."""
        self._before_send = before_send
        self._pool_size = connection_pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: float | object | None = _UNSET,
        write_timeout: float | object | None = _UNSET,
        connect_timeout: float | object | None = _UNSET,
        pool_timeout: float | object | None = _UNSET,
    ) -> tuple[int, bytes]:
        await self.initialize()
        assert self._session is not None
        files = request_data.multipart_data if request_data else None
        read = self._read if read_timeout is _UNSET else read_timeout
        write = (self._media_write if files else self._write) \
            if write_timeout is _UNSET else write_timeout
        connect = self._connect if connect_timeout is _UNSET else connect_timeout
        pool = self._pool if pool_timeout is _UNSET else pool_timeout
        parts = [t for t in (read, write, connect, pool) if isinstance(t, int | float)]
        timeout = aiohttp.ClientTimeout(
            # aiohttp has no write timeout of its own: the whole call is bounded by the sum
            total=sum(parts) if len(parts) == 4 else None,
            # aiohttp's `connect` includes waiting for a free connection in the pool
            connect=(connect + pool) if isinstance(connect, int | float)  # type: ignore[operator]
            and isinstance(pool, int | float) else None,
            sock_connect=connect if isinstance(connect, int | float) else None,
            sock_read=read if isinstance(read, int | float) else None)
        # the parameters as python-telegram-bot's own transport sends them: form fields
        # holding JSON values, multipart when there is a file
        body: aiohttp.FormData | dict[str, str] | None = None
        if files:
            form = aiohttp.FormData()
            for name, value in (request_data.json_parameters if request_data else {}).items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        elif request_data is not None:
            body = request_data.json_parameters
        if self._before_send is not None and url.rsplit("/", 1)[-1].startswith(("send", "edit")):
            await self._before_send()
        try:
            async with self._session.request(method, url, data=body,
                                             timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err
