"""The Graph API calls Lontar makes for WhatsApp, and the error they raise.

Apart from the channel (bot/channels/whatsapp.py) so that the sender's helpers, such as the
broadcast pictures (bot/channels/whatsapp_pictures.py), can use the client without importing
the channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bot.config import Settings

MALFORMED = -1  # not Meta's: a success answer Lontar cannot read (a proxy's page, no id)
# a malformed success may or may not have been delivered; like a 5xx, it is tried again
RETRYABLE = {MALFORMED, 1, 2, 4, 80007, 130429, 131000, 131016, 131056, 131057}
RETRY_AFTER = {130429: 1.0, 131057: 60.0}  # seconds; 131056 uses the pair interval


class GraphError(Exception):
    def __init__(self, status: int, code: int, message: str):
        super().__init__(f"{status} (#{code}) {message}")
        self.status, self.code = status, code

    @property
    def retryable(self) -> bool:
        """Worth trying again later: a throttle, a transient fault, a 5xx, a malformed success."""
        return self.code in RETRYABLE or self.status >= 500


def _code(value: object) -> int:
    """Meta's error code, or 0 when the answer's `code` is not a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


class WhatsAppClient:
    """The few Graph API calls Lontar makes, with the bearer token."""

    def __init__(self, settings: Settings,
                 before_send: Callable[[], Awaitable[None]] | None = None):
        """`before_send` is awaited right before each message is posted (what Meta's
        throughput limit counts; marking read and media calls are not messages)."""
        self._before_send = before_send
        self.base = settings.whatsapp_api_base_url.rstrip("/")
        self.phone_id = settings.whatsapp_phone_number_id
        self._headers = {"Authorization": f"Bearer {settings.whatsapp_access_token}"}
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        async with self.session.request(method, url, **kwargs) as resp:
            try:
                data = await resp.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                data = {}
            if not isinstance(data, dict):  # empty, null, a list: what a proxy may answer
                data = {}
            if resp.status >= 400 or "error" in data:
                err = data.get("error")
                err = err if isinstance(err, dict) else {}
                raise GraphError(resp.status, _code(err.get("code")),
                                 str(err.get("message", resp.reason))[:300])
            return data

    async def send(self, to: str, message: dict[str, Any]) -> str:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                **message}
        if self._before_send is not None:
            await self._before_send()
        data = await self._call("POST", f"{self.base}/{self.phone_id}/messages", json=body)
        sent = data.get("messages")
        wamid = sent[0].get("id") if isinstance(sent, list) and sent and isinstance(
            sent[0], dict) else None
        if not isinstance(wamid, str) or not wamid:
            raise GraphError(200, MALFORMED, "a success answer without a message id")
        return wamid

    async def upload(self, data: bytes, mime: str, filename: str) -> str:
        """A file for later sends; the id Meta gives lasts 30 days."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        form.add_field("file", data, filename=filename, content_type=mime)
        found = await self._call("POST", f"{self.base}/{self.phone_id}/media", data=form)
        media_id = found.get("id")
        if not isinstance(media_id, str | int) or isinstance(media_id, bool) or not media_id:
            raise GraphError(200, MALFORMED, "an upload answer without a media id")
        return str(media_id)

    async def mark_read(self, wamid: str) -> None:
        await self._call("POST", f"{self.base}/{self.phone_id}/messages", json={
            "messaging_product": "whatsapp", "status": "read", "message_id": wamid})

    async def media_info(self, media_id: str) -> dict[str, Any]:
        return await self._call("GET", f"{self.base}/{media_id}")

    async def download(self, url: str, dest: Path, limit: int) -> int:
        """Stream to `dest`; stop and delete past `limit` bytes (return -1)."""
        size = 0
        async with self.session.get(url) as resp:
            if resp.status >= 400:
                raise GraphError(resp.status, 0, "media download failed")
            with dest.open("wb") as fh:
                async for chunk in resp.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > limit:
                        break
                    fh.write(chunk)
        if size > limit:
            dest.unlink(missing_ok=True)
            return -1
        return size
