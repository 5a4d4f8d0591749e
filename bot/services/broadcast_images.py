"""A broadcast's optional picture: checked by its bytes, kept under a name Lontar made.

The dashboard upload and `lontar broadcast create --image` both store through here, and the
Telegram sender and the dashboard preview find the file through here, so a name from one is
valid in the others and a stored name can never point outside the folder.

A file is kept while a broadcast row names it, whatever the broadcast's status (a finished
one's page and report still show it). Others go: a picture replaced or removed on a draft at
once, and uploads no draft was saved with by the daily sweep. The database is imported inside
those two functions: `lontar match` loads this module through the command line and should not
pay for the models.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger(__name__)

IMAGE_MAX = 5 * 1024 * 1024  # WhatsApp's limit for an image, the lower of the two platforms
FOLDER = "broadcasts"  # under the data folder
TYPES = {".jpg": "image/jpeg", ".png": "image/png"}
_MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"))
_NAME = re.compile(r"^[0-9a-f]{32}\.(?:jpg|png)$")
# an upload no broadcast names yet may still be on a form being composed (counted, corrected)
UNUSED_AFTER = timedelta(hours=24)


class ImageError(ValueError):
    """Not a picture the platforms take; the message is shown to staff (Indonesian)."""


def folder(data_dir: Path) -> Path:
    return data_dir / FOLDER


def suffix(head: bytes) -> str | None:
    """".jpg" or ".png" judged by the first bytes; None for anything else."""
    return next((s for magic, s in _MAGIC if head.startswith(magic)), None)


def save(where: Path, data: bytes) -> str:
    """Check and keep a picture under a random name; returns the name."""
    if not data:
        raise ImageError("Berkas gambar kosong.")
    if len(data) > IMAGE_MAX:
        raise ImageError("Gambar paling besar 5 MB.")
    kind = suffix(data[:8])
    if kind is None:
        raise ImageError("Gambar harus berupa JPEG atau PNG.")
    name = secrets.token_hex(16) + kind
    where.mkdir(parents=True, exist_ok=True)
    with open(where / name, "xb") as out:
        out.write(data)
    return name


def valid_name(name: str | None) -> bool:
    """A name Lontar made (never one that could leave the folder)."""
    return bool(name) and _NAME.match(name or "") is not None


def path(where: Path, name: str | None) -> Path | None:
    """A stored picture's path: only for a name Lontar made, and a file that is there."""
    if not name or not valid_name(name):
        return None
    found = where / name
    return found if found.is_file() else None


def _used(conn: Connection, names: list[str]) -> set[str]:
    from sqlalchemy import select

    from bot.models import broadcast_t

    used: set[str] = set()
    for i in range(0, len(names), 500):
        used.update(conn.execute(select(broadcast_t.c.image).distinct().where(
            broadcast_t.c.image.in_(names[i:i + 500]))).scalars())
    return used


def remove_unused(conn: Connection, where: Path, name: str | None) -> bool:
    """Delete a picture a draft no longer uses, unless another broadcast names it (a kept
    form field can name any stored picture). Call after the change is committed, so a
    rollback never leaves a row naming a deleted file. Returns whether it was deleted; a
    file that cannot be removed now is left to the daily sweep."""
    found = path(where, name)
    if found is None or _used(conn, [found.name]):
        return False
    try:
        found.unlink()
    except OSError:
        log.warning("broadcast picture %s could not be removed", found.name)
        return False
    return True


def sweep(conn: Connection, where: Path, now: datetime,
          older_than: timedelta = UNUSED_AFTER) -> int:
    """Delete pictures no broadcast names, last written before `now - older_than`: uploads on
    a form that was never saved (refused, abandoned), pictures whose removal failed. Only
    names Lontar made are touched. Returns the files deleted."""
    if not where.is_dir():
        return 0
    cutoff = (now - older_than).timestamp()
    old: list[str] = []
    for found in where.iterdir():
        try:
            if valid_name(found.name) and found.is_file() and found.stat().st_mtime < cutoff:
                old.append(found.name)
        except OSError:  # gone meanwhile
            continue
    deleted = 0
    for name in sorted(set(old) - _used(conn, sorted(old))):
        try:
            (where / name).unlink()
            deleted += 1
        except FileNotFoundError:
            continue
        except OSError:  # not ours to remove: the next run tries again
            log.warning("broadcast picture %s could not be removed", name)
    return deleted
