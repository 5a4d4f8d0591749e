"""A broadcast's optional picture: checked by its bytes, kept under a name Lontar made.

The dashboard upload and `lontar broadcast create --image` both store through here, and the
Telegram sender and the dashboard preview find the file through here, so a name from one is
valid in the others and a stored name can never point outside the folder.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

IMAGE_MAX = 5 * 1024 * 1024  # WhatsApp's limit for an image, the lower of the two platforms
FOLDER = "broadcasts"  # under the data folder
TYPES = {".jpg": "image/jpeg", ".png": "image/png"}
_MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"))
_NAME = re.compile(r"^[0-9a-f]{32}\.(?:jpg|png)$")


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
