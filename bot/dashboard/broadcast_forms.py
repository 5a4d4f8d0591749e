"""The broadcast pages' pieces that hold no route: the compose form as staff typed it, the
picture upload, and the previews of what each platform will show.

The previews are rendered by the channels' own functions from `broadcasts.message`, the
payload the outbox will carry, so what staff approve is what goes out.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from bot.channels import telegram, whatsapp
from bot.services import broadcast_images as images
from bot.services import broadcasts
from bot.services.audience import PUSH_CHANNELS, TAG_PATTERN, Audience
from flows.content import Content
from flows.settings import kel_id
from flows.types import Lang, Reply

STATUS = {
    broadcasts.DRAFT: "Draf", broadcasts.APPROVED: "Disetujui",
    broadcasts.SCHEDULED: "Terjadwal", broadcasts.SENDING_B: "Sedang dikirim",
    broadcasts.PAUSED: "Dijeda", broadcasts.DONE: "Selesai",
    broadcasts.CANCELLED_B: "Dibatalkan",
}
REASONS = {
    "sent": "Terkirim", "failed": "Gagal", "blocked": "Memblokir bot / chat tidak ada",
    "opted_out": "Berhenti berlangganan", "unsendable": "Tidak dapat dikirim (mis. templat "
    "WhatsApp belum diatur)", "unconfirmed": "Belum pasti (tidak ada konfirmasi platform)",
    "waiting": "Menunggu giliran", "cancelled": "Dibatalkan",
}
IMAGE_MAX = images.IMAGE_MAX
IMAGE_TYPES = images.TYPES
ImageError = images.ImageError
_TAG = re.compile(TAG_PATTERN)





def topics(content: Content) -> dict[str, dict[str, str]]:
    """What a button or an audience may name: the services and the information topics."""
    return {
        "Layanan": {k: s.label.get("id") for k, s in content.services.items()},
        "Informasi": {k: t.label.get("id") for k, t in content.topics.items()
                      if t.kind == "info"},
    }


def kelurahan(content: Content) -> dict[str, dict[str, str]]:
    """Kelurahan per kecamatan name, keyed as stored on a contact."""
    return {k.name: {kel_id(k.id, x.code): x.name for x in k.kelurahan}
            for k in content.kecamatan}


def _many(form: MultiDictProxy[Any], name: str, limit: int = 100) -> list[str]:
    """The distinct values of a repeated field (checkboxes, a multiple select), in order."""
    out: list[str] = []
    for value in form.getall(name, [])[:limit]:
        text = str(value).strip()[:80]
        if text and text not in out:
            out.append(text)
    return out


@dataclass
class BroadcastForm:
    """The compose form as typed (shown again after a count or an error) and its audience."""

    title: str = ""
    text_id: str = ""
    text_en: str = ""
    buttons: list[str] = field(default_factory=lambda: ["", "", ""])
    channels: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    kecamatan: list[str] = field(default_factory=list)
    kelurahan: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    open_application: bool = False
    tags: str = ""
    image: str = ""  # a picture already stored by an earlier submit of this form
    errors: list[str] = field(default_factory=list)
    audience: Audience | None = None

    @classmethod
    def parse(cls, form: MultiDictProxy[Any], content: Content) -> BroadcastForm:
        kept = str(form.get("image_kept", ""))[:64]
        f = cls(title=str(form.get("title", ""))[:200].strip(),
                text_id=str(form.get("text_id", ""))[:4000].strip(),
                text_en=str(form.get("text_en", ""))[:4000].strip(),
                buttons=[str(form.get(f"button{i}", ""))[:80] for i in range(1, 4)],
                channels=_many(form, "channel"), languages=_many(form, "language"),
                kecamatan=_many(form, "kecamatan"), kelurahan=_many(form, "kelurahan"),
                services=_many(form, "service"), open_application=bool(form.get("open_app")),
                tags=str(form.get("tags", ""))[:400].strip(),
                image="" if form.get("image_drop") or not images.valid_name(kept) else kept)
        if any(c not in PUSH_CHANNELS for c in f.channels):
            f.errors.append("Pilih kanal Telegram dan/atau WhatsApp.")
        if any(v not in ("id", "en") for v in f.languages):
            f.errors.append("Pilih bahasa Indonesia dan/atau Inggris.")
        tags = [t for t in re.split(r"[,\s]+", f.tags.lower()) if t]
        bad = [t for t in tags if not _TAG.match(t)]
        if bad:
            f.errors.append("Tag hanya huruf kecil, angka dan tanda hubung (paling panjang "
                            f"32), dipisah koma: periksa {', '.join(bad[:5])}.")
        if f.errors:
            return f
        audience = Audience(channels=tuple(f.channels), languages=tuple(f.languages),
                            kecamatan=tuple(f.kecamatan), kelurahan=tuple(f.kelurahan),
                            services=tuple(f.services), open_application=f.open_application,
                            tags=tuple(dict.fromkeys(tags)))
        problems = audience.problems(content)
        if problems:
            f.errors.append("Filter penerima tidak dikenal: " + "; ".join(problems) + ".")
        else:
            f.audience = audience
        return f

    @classmethod
    def of(cls, row: Any) -> BroadcastForm:
        """A stored draft as its edit form shows it."""
        a = broadcasts.audience_of(row)
        return cls(title=row.title, text_id=row.text_id, text_en=row.text_en or "",
                   buttons=[*row.buttons, "", "", ""][:3], channels=list(a.channels),
                   languages=list(a.languages), kecamatan=list(a.kecamatan),
                   kelurahan=list(a.kelurahan), services=list(a.services),
                   open_application=a.open_application, tags=", ".join(a.tags),
                   image=row.image or "")

    @property
    def chosen_buttons(self) -> list[str]:
        return list(dict.fromkeys(b for b in self.buttons if b))

    async def take_image(self, form: MultiDictProxy[Any], folder: Path) -> None:
        """Settle the picture: a new upload replaces the one kept from an earlier submit (or
        the draft's own, when editing). A kept one whose file is gone (an upload left on a
        form for over a day is swept) is an error: saving without it would drop it unseen."""
        upload = form.get("image")
        if isinstance(upload, FileField) and upload.filename:
            try:
                self.image = await store_image(upload, folder)
            except ImageError as exc:
                self.errors.append(str(exc))
        elif self.image and image_path(folder, self.image) is None:
            self.image = ""
            self.errors.append("Gambar yang diunggah sebelumnya sudah tidak ada: pilih lagi.")


async def store_image(upload: FileField, folder: Path) -> str:
    """Keep an uploaded picture (bot/services/broadcast_images.py); the uploaded name and
    content type are ignored: only the bytes decide."""
    data = await asyncio.to_thread(upload.file.read, IMAGE_MAX + 1)
    return await asyncio.to_thread(images.save, folder, data)


def image_path(folder: Path, name: str | None) -> Path | None:
    return images.path(folder, name)


# --- previews -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WhatsAppBubble:
    text: str
    buttons: tuple[str, ...] = ()
    list_button: str = ""  # a list message's button (more than three options)


@dataclass(frozen=True)
class Preview:
    lang: Lang
    text: str  # with the footer, as Telegram shows it (a caption under the picture, if any)
    image: bool
    telegram_rows: tuple[tuple[str, ...], ...]
    whatsapp: tuple[WhatsAppBubble, ...]  # inside the 24-hour window
    template_text: str  # outside it: the marketing template's one parameter


def preview(row: Any, lang: Lang, content: Content) -> Preview:
    payload = broadcasts.message(row, lang, content)
    reply = Reply.from_dict(payload)
    markup = telegram.keyboard(reply.options)
    rows = tuple(tuple(b.text for b in r) for r in markup.inline_keyboard) if markup else ()
    bubbles = []
    for m in whatsapp.render(reply, content, lang):
        if m["type"] == "text":
            bubbles.append(WhatsAppBubble(m["text"]["body"]))
        elif m["type"] == "interactive":
            i = m["interactive"]
            if i["type"] == "button":
                bubbles.append(WhatsAppBubble(i["body"]["text"], tuple(
                    b["reply"]["title"] for b in i["action"]["buttons"])))
            else:
                bubbles.append(WhatsAppBubble(i["body"]["text"], tuple(
                    r["title"] for r in i["action"]["sections"][0]["rows"]),
                    i["action"]["button"]))
    flat = whatsapp.template("-", "id", reply.text)
    param = flat["template"]["components"][0]["parameters"][0]["text"]
    return Preview(lang, reply.text, bool(payload.get("image")), rows, tuple(bubbles), param)
