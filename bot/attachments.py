"""Files citizens send (kept for complaints): which types, and where they are stored.

One rule for every channel, so a photo from Telegram and one from WhatsApp are kept alike;
names are built from the platform's ids with everything but letters, digits, - and _
removed, so no name can climb out of the data directory.
"""

from __future__ import annotations

import re
from pathlib import Path

ACCEPTED_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
                  "application/pdf": ".pdf"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def attachment_path(data_dir: Path, channel: str, chat: str, file_id: str, mime: str) -> Path:
    """Where to keep a file of an accepted `mime` type; its folder is created."""
    folder = data_dir / "attachments" / channel / (_UNSAFE.sub("", chat)[:32] or "chat")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{_UNSAFE.sub('', file_id)[:64] or 'file'}{ACCEPTED_TYPES[mime]}"
