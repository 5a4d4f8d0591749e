"""Text helpers shared by the channels."""

from __future__ import annotations

from collections.abc import Iterable

TEXT_MAX = 4096  # both Telegram and WhatsApp cap a text message here


def split_text(text: str, limit: int = TEXT_MAX) -> list[str]:
    """Split at paragraph boundaries (then lines, then hard) so each part fits `limit`."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for sep_unit in _units(text, limit):
        candidate = f"{current}{sep_unit}"
        if len(candidate.rstrip("\n")) > limit and current:
            parts.append(current.rstrip("\n"))
            current = sep_unit
        else:
            current = candidate
    if current.strip():
        parts.append(current.rstrip("\n"))
    return parts


def _units(text: str, limit: int) -> Iterable[str]:
    for para in text.split("\n\n"):
        para += "\n\n"
        if len(para) <= limit:
            yield para
            continue
        for line in para.split("\n"):
            line += "\n"
            while len(line) > limit:
                yield line[:limit]
                line = line[limit:]
            yield line
