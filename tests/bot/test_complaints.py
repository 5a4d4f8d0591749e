"""Filing a complaint through the real inbox: tickets, numbers, identity, limits."""

from __future__ import annotations

import re
from datetime import date

from sqlmodel import select

from bot.app import Lontar
from bot.inbox import Inbound
from bot.models import Complaint, ComplaintFollower, Contact, Outbox
from bot.services.complaints import add_working_days


async def _say(lontar: Lontar, who: str, n: int, text: str) -> None:
    await lontar.inbox.handle(Inbound("web", who, f"{who}-{n}", "text", {"text": text},
                                      display_name="Maria"))


async def _file(lontar: Lontar, who: str, story: str, identity: str, start: int = 0) -> None:
    steps = ["mau komplain", "1", "7", "1", story, "1", identity, "1"]
    for i, text in enumerate(steps):
        await _say(lontar, who, start + i, text)


def _last_text(lontar: Lontar, rows_back: int = 2) -> str:
    with lontar.db.session() as s:
        rows = s.exec(select(Outbox).order_by(Outbox.id)).all()  # type: ignore[arg-type]
    return "\n".join(r.payload["text"] for r in rows[-rows_back:])


async def test_named_complaint_gets_a_ticket(lontar: Lontar) -> None:
    await _file(lontar, "w1", "Petugas minta uang 50 ribu", "1")
    with lontar.db.session() as s:
        ticket = s.exec(select(Complaint)).one()
        follower = s.exec(select(ComplaintFollower)).one()
        contact = s.exec(select(Contact)).one()
    assert re.fullmatch(r"ADU-\d{4}-[2-9A-HJ-NP-Z]{6}", ticket.number)
    assert (ticket.kind, ticket.service, ticket.office) == ("pengaduan", "umum", "dinas")
    assert (ticket.category, ticket.dimension, ticket.urgent) == ("biaya-pungli", "assurance",
                                                                   True)
    assert ticket.contact_id == contact.id and ticket.display_name == "Maria"
    assert follower.contact_id == contact.id
    text = _last_text(lontar)
    assert ticket.number in text and "79A" not in text  # the free notice came earlier


async def test_anonymous_keeps_no_identity_on_the_ticket(lontar: Lontar) -> None:
    await _file(lontar, "w2", "Kursi ruang tunggu rusak", "3")
    with lontar.db.session() as s:
        ticket = s.exec(select(Complaint)).one()
        follower = s.exec(select(ComplaintFollower)).one()
    assert ticket.contact_id is None and ticket.display_name is None
    assert ticket.identity == "anonymous" and follower.complaint_id == ticket.id


async def test_duplicate_and_daily_limit(lontar: Lontar) -> None:
    await _file(lontar, "w3", "Antrean lama sekali", "1", 0)
    await _file(lontar, "w3", "antrean   LAMA sekali", "1", 10)  # the same story
    assert "sudah kami terima" in _last_text(lontar)
    await _file(lontar, "w3", "Server mati", "1", 20)
    await _file(lontar, "w3", "Petugas kasar", "1", 30)
    await _file(lontar, "w3", "Toilet kotor", "1", 40)  # the fourth today
    assert "3 laporan hari ini" in _last_text(lontar)
    with lontar.db.session() as s:
        assert len(s.exec(select(Complaint)).all()) == 3


def test_working_days() -> None:
    friday = date(2026, 3, 6)
    assert add_working_days(friday, 3, frozenset()) == date(2026, 3, 11)  # Mon, Tue, Wed
    holiday = frozenset({date(2026, 3, 9)})
    assert add_working_days(friday, 3, holiday) == date(2026, 3, 12)


async def test_tiket_lists_what_this_chat_follows(lontar: Lontar) -> None:
    await _say(lontar, "w4", 0, "/start")
    await lontar.inbox.handle(Inbound("web", "w4", "w4-cmd", "command", {"name": "tiket"}))
    assert "belum pernah" in _last_text(lontar)
    await _file(lontar, "w4", "Antrean lama", "3", 10)  # anonymous: still followed
    await _file(lontar, "w5", "Toilet kotor", "1", 10)  # someone else's
    await _say(lontar, "w4", 30, "cek pengaduan")
    with lontar.db.session() as s:
        mine = s.exec(select(Complaint).where(Complaint.text == "Antrean lama")).one()
        theirs = s.exec(select(Complaint).where(Complaint.text == "Toilet kotor")).one()
    listing = _last_text(lontar, rows_back=1)
    assert mine.number in listing and theirs.number not in listing
    assert "Baru" in listing


async def test_long_or_hostile_story_is_kept_safely(lontar: Lontar) -> None:
    story = "<script>alert('x')</script> antri " + "sangat lama " * 2000
    await _file(lontar, "w6", story, "1")
    with lontar.db.session() as s:
        ticket = s.exec(select(Complaint)).one()
    assert len(ticket.text) == 2000 and ticket.text.startswith("<script>")  # stored as text
    assert ticket.category == "antrean"
