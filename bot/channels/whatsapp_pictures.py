"""A broadcast's picture on WhatsApp: uploaded once, reused by media id, dropped for good
reason only.

Inside the 24-hour window the picture rides on the first message of the reply (`with_picture`).
Outside it the sender uses a template, and a template with an image header is a different
template Meta must approve first, so there the text goes alone. Meta keeps an uploaded id 30
days; an id it refuses is replaced once, and a picture that cannot be used (the file is gone,
Meta refused the upload) is left out with a warning rather than holding the message back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot.channels.whatsapp_client import RETRY_AFTER, GraphError, WhatsAppClient
from bot.outbox import SendError
from bot.services import broadcast_images as images

log = logging.getLogger(__name__)

MEDIA_FAILED = 131053  # Meta could not use the media (expired id, a file it refused)
MEDIA_SUSPECT = {100, 131009}  # an invalid parameter, which may be the media id
MEDIA_REUSE = timedelta(days=29)  # an uploaded media id lasts 30 days
MEDIA_RECHECK = 600.0  # seconds before a picture that could not be used is tried again
CAPTION_MAX = 1024


def with_picture(messages: list[dict[str, Any]], media_id: str) -> list[dict[str, Any]]:
    """Put an uploaded picture on the first of a reply's messages.

    Reply buttons take it as an image header over the text; a lone text becomes its caption.
    A list cannot (its header must be text), nor can a text longer than a caption, so there
    the picture goes first on its own and the messages follow unchanged: repeating the text
    as a caption would show it twice. Broadcasts (at most 3 buttons, a short text) always
    take one of the first two forms.
    """
    first, rest = messages[0], messages[1:]
    inter = first.get("interactive", {})
    if first["type"] == "interactive" and inter.get("type") == "button":
        header = {"type": "image", "image": {"id": media_id}}
        return [{**first, "interactive": {**inter, "header": header}}, *rest]
    if first["type"] == "text" and len(first["text"]["body"]) <= CAPTION_MAX:
        caption = first["text"]["body"]
        return [{"type": "image", "image": {"id": media_id, "caption": caption}}, *rest]
    return [{"type": "image", "image": {"id": media_id}}, *messages]


class Pictures:
    """Media ids of broadcast pictures, for one sender (one process)."""

    def __init__(self, client: WhatsAppClient, folder: Path):
        self.client = client
        self.folder = folder  # bot.services.broadcast_images.folder(data_dir)
        # picture name -> (media id, uploaded at); one upload at a time per picture
        self._media: dict[str, tuple[str, datetime]] = {}
        self._uploading: dict[str, asyncio.Lock] = {}
        self._unusable: dict[str, float] = {}  # picture -> monotonic time it failed

    async def get(self, image: str, stale: str | None = None) -> str | None:
        """The media id of a broadcast picture, uploaded on first use and after 29 days.

        One upload per picture however many sends start at once (they wait on its lock), and
        `stale` (an id Meta refused) is replaced once, not by every send that saw it fail.
        None means send the text alone: the file is gone, or Meta refused it for good (a
        warning, then no new try for a while: one bad picture must not cost an upload per
        recipient). A retryable upload error raises, and the row is tried again later.
        """
        usable = self._cached(image, stale)
        if usable is not None:
            return usable
        async with self._uploading.setdefault(image, asyncio.Lock()):
            usable = self._cached(image, stale)
            if usable is not None:
                return usable
            failed_at = self._unusable.get(image)
            if failed_at is not None and time.monotonic() - failed_at < MEDIA_RECHECK:
                return None
            path = images.path(self.folder, image)
            if path is None:
                self.drop(image, "the file is missing")
                return None
            data = await asyncio.to_thread(path.read_bytes)
            mime = images.TYPES.get(path.suffix, "image/jpeg")
            try:
                media_id = await self.client.upload(data, mime, path.name)
            except GraphError as exc:
                if exc.retryable:
                    raise SendError(f"media upload: {exc}", retryable=True,
                                    retry_after=RETRY_AFTER.get(exc.code)) from exc
                self.drop(image, f"the upload was refused: {exc}")
                return None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise SendError(f"media upload: {exc!r}", retryable=True) from exc
            self._media[image] = (media_id, datetime.now(UTC))
            self._unusable.pop(image, None)
            return media_id

    def _cached(self, image: str, stale: str | None) -> str | None:
        found = self._media.get(image)
        if found is None or found[0] == stale or datetime.now(UTC) - found[1] > MEDIA_REUSE:
            return None
        return found[0]

    def drop(self, image: str, why: str) -> None:
        log.warning("broadcast picture %r not sent on WhatsApp (%s); sending the text alone",
                    image, why)
        self._unusable[image] = time.monotonic()
        self._media.pop(image, None)

    async def gone(self, exc: GraphError, media_id: str) -> bool:
        """Did Meta refuse the message because our media id is no longer valid?

        131053 says so. An invalid parameter (100, 131009) may mean the id or something else,
        so the id is looked up: only a refused lookup counts, or every malformed message
        would cost an upload.
        """
        if exc.code == MEDIA_FAILED:
            return True
        if exc.code not in MEDIA_SUSPECT:
            return False
        try:
            await self.client.media_info(media_id)
        except GraphError as check:
            return not check.retryable
        except (aiohttp.ClientError, TimeoutError):
            return False
        return False

    def forget(self, image: str, sent_before: datetime | None) -> None:
        """Meta reported a message with this picture failed (131053) after accepting it.

        Only an id uploaded before that message went out is dropped: after a broadcast with
        an expired id, many such reports arrive, and the fresh id must survive them.
        """
        if sent_before is not None and sent_before.tzinfo is None:
            sent_before = sent_before.replace(tzinfo=UTC)
        found = self._media.get(image)
        if found is not None and (sent_before is None or found[1] <= sent_before):
            del self._media[image]
