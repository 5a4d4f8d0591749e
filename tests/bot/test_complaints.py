"""Filing a complaint through the real inbox: tickets, numbers, identity, limits; then
following it: rating a closed ticket, adding information, looking one up by number."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text as sql
from sqlmodel import select

from bot.app import Lontar
from bot.inbox import Inbound
from bot.models import Complaint, ComplaintFollower, ComplaintUpdate, Contact, Outbox
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


# --- following a ticket: rating, adding information, looking one up by number --------------


async def _press(lontar: Lontar, who: str, n: int, payload: str) -> None:
    await lontar.inbox.handle(Inbound("web", who, f"{who}-{n}", "choice", {"payload": payload}))


def _ticket(lontar: Lontar, story: str) -> Complaint:
    with lontar.db.session() as s:
        return s.exec(select(Complaint).where(Complaint.text == story)).one()


def _set_state(lontar: Lontar, number: str, state: str) -> None:
    """Staff operations are written elsewhere; tests close a ticket directly."""
    with lontar.db.engine.begin() as conn:
        conn.execute(sql("update complaint set state = :s where number = :n"),
                     {"s": state, "n": number})


def _history(lontar: Lontar, ticket: Complaint) -> list[ComplaintUpdate]:
    with lontar.db.session() as s:
        return list(s.exec(select(ComplaintUpdate).where(
            ComplaintUpdate.complaint_id == ticket.id).order_by(ComplaintUpdate.id)).all())  # type: ignore[arg-type]


def _replies(lontar: Lontar, who: str) -> list[dict[str, Any]]:
    """Everything queued for one chat, oldest first."""
    with lontar.db.session() as s:
        contact = s.exec(select(Contact).where(Contact.external_id == who)).one()
        rows = s.exec(select(Outbox).where(Outbox.contact_id == contact.id)
                      .order_by(Outbox.id)).all()  # type: ignore[arg-type]
    return [r.payload for r in rows]


def _targets(payload: dict[str, Any]) -> list[str]:
    return [o["id"].partition("|")[2] for o in payload["options"]]


async def test_rating_a_closed_ticket_stores_it_and_offers_the_survey(lontar: Lontar) -> None:
    await _file(lontar, "r1", "Antrean lama sekali", "1")
    ticket = _ticket(lontar, "Antrean lama sekali")
    _set_state(lontar, ticket.number, "selesai")
    await _press(lontar, "r1", 20, f"go:rate:{ticket.number}:4")
    assert _ticket(lontar, "Antrean lama sekali").rating == 4
    last = _replies(lontar, "r1")[-1]
    assert "Terima kasih, penilaian Anda" in last["text"]
    assert _targets(last) == ["survey", "menu"]
    await _press(lontar, "r1", 21, f"go:rate:{ticket.number}:2")  # a change of mind
    rated = _ticket(lontar, "Antrean lama sekali")
    assert rated.rating == 2 and rated.updated_at > ticket.updated_at
    history = _history(lontar, ticket)
    assert [(u.author, u.public, u.changes) for u in history] == [
        ("citizen", False, {"rating": [None, 4]}), ("citizen", False, {"rating": [4, 2]})]
    newest = _replies(lontar, "r1")[-1]
    await _press(lontar, "r1", 22, newest["options"][0]["id"])  # the survey, as offered
    assert "Survei Kepuasan Masyarakat" in _replies(lontar, "r1")[-1]["text"]


@pytest.mark.parametrize("case", ["open", "someone_else", "score_9", "unknown"])
async def test_rating_refused_stores_nothing(case: str, lontar: Lontar) -> None:
    await _file(lontar, "r2", "Toilet kotor sekali", "1")
    await _file(lontar, "r3", "Kursi rusak", "3")  # anonymous: still followed by r3
    mine, theirs = _ticket(lontar, "Toilet kotor sekali"), _ticket(lontar, "Kursi rusak")
    _set_state(lontar, theirs.number, "selesai")
    if case != "open":
        _set_state(lontar, mine.number, "selesai")
    number = {"someone_else": theirs.number, "unknown": "ADU-2026-ZZZZZZ"}.get(case,
                                                                          mine.number)
    score = 9 if case == "score_9" else 5
    await _press(lontar, "r2", 20, f"go:rate:{number}:{score}")
    last = _replies(lontar, "r2")[-1]
    assert "penilaian tidak dapat dicatat" in last["text"] and number not in last["text"]
    for ticket in (mine, theirs):
        assert _ticket(lontar, ticket.text).rating is None and _history(lontar, ticket) == []


async def test_the_shell_checks_the_score_too(lontar: Lontar) -> None:
    """The engine never asks with a bad score, but the database rule stands on its own."""
    from bot.services import complaints

    await _file(lontar, "r4", "Server mati", "1")
    ticket = _ticket(lontar, "Server mati")
    _set_state(lontar, ticket.number, "ditolak")
    contact_id = ticket.contact_id
    assert contact_id is not None
    now = datetime.now(UTC)
    for score, ok in ((9, False), (0, False), (1, True)):
        done = await lontar.db.transaction(complaints.rate, contact_id, ticket.number, score,
                                           lontar.content, now)
        assert done is ok
    assert _ticket(lontar, "Server mati").rating == 1


async def test_add_information_to_an_open_ticket(lontar: Lontar) -> None:
    await _file(lontar, "a1", "Petugas kasar", "1")
    ticket = _ticket(lontar, "Petugas kasar")
    await lontar.inbox.handle(Inbound("web", "a1", "a1-20", "command", {"name": "tiket"}))
    listing = _replies(lontar, "a1")[-1]
    add = next(o for o in listing["options"] if ticket.number in o["label"])
    assert add["id"].endswith(f"c:add:{ticket.number}") and len(add["label"]) <= 20
    await _press(lontar, "a1", 21, add["id"])
    assert ticket.number in _replies(lontar, "a1")[-1]["text"]
    await lontar.inbox.handle(Inbound("web", "a1", "a1-22", "attachment",
                                      {"kind": "photo", "ref": "attachments/web/a1/p.jpg"}))
    await _say(lontar, "a1", 23, "Namanya Pak Budi, loket 2.")
    assert f"Info ditambahkan ke {ticket.number}" in _replies(lontar, "a1")[-1]["text"]
    after = _ticket(lontar, "Petugas kasar")
    assert after.updated_at > ticket.updated_at and after.state == "baru"
    assert after.photos == ["attachments/web/a1/p.jpg"]
    (update,) = _history(lontar, ticket)
    assert (update.author, update.public, update.text) == ("citizen", True,
                                                          "Namanya Pak Budi, loket 2.")
    assert update.changes == {"photos": [[], ["attachments/web/a1/p.jpg"]]}


@pytest.mark.parametrize("case", ["closed", "someone_else"])
async def test_add_information_refused_stores_nothing(case: str, lontar: Lontar) -> None:
    await _file(lontar, "a2", "Antrean tidak tertib", "1")
    await _file(lontar, "a3", "Loket tutup cepat", "1")
    mine, theirs = _ticket(lontar, "Antrean tidak tertib"), _ticket(lontar, "Loket tutup cepat")
    if case == "closed":
        _set_state(lontar, mine.number, "selesai")
    number = mine.number if case == "closed" else theirs.number
    await _press(lontar, "a2", 20, f"go:c:add:{number}")  # an old or forged link
    await _say(lontar, "a2", 21, "Tambahan informasi")
    last = _replies(lontar, "a2")[-1]["text"]
    if case == "closed":
        assert f"Laporan {mine.number} sudah ditutup" in last
    else:
        assert "tidak ditemukan di laporan Anda" in last and theirs.number not in last
    for ticket in (mine, theirs):
        assert _history(lontar, ticket) == []
        assert _ticket(lontar, ticket.text).updated_at == ticket.updated_at


async def test_a_typed_number_shows_only_your_own_ticket(lontar: Lontar) -> None:
    await _file(lontar, "n1", "Petugas minta uang rokok", "2")  # confidential
    ticket = _ticket(lontar, "Petugas minta uang rokok")
    assert ticket.id is not None
    with lontar.db.session() as s:
        s.add(ComplaintUpdate(complaint_id=ticket.id, author="staff", public=True,
                              text="Petugas itu sudah diperiksa."))
        s.add(ComplaintUpdate(complaint_id=ticket.id, author="staff", public=False,
                              text="Catatan internal: cek CCTV."))
        s.commit()
    await _say(lontar, "n1", 20, f"cek {ticket.number.lower()}")
    own = _replies(lontar, "n1")[-1]
    assert ticket.number in own["text"] and "Petugas itu sudah diperiksa." in own["text"]
    assert "CCTV" not in own["text"]
    assert _targets(own) == [f"c:add:{ticket.number}", "c:list", "menu"]

    await _say(lontar, "n2", 0, "halo")
    seen = len(_replies(lontar, "n2"))
    await _say(lontar, "n2", 1, f"cek {ticket.number}")
    await _say(lontar, "n2", 2, "cek ADU-2026-ZZZZZZ")  # made up
    await lontar.inbox.handle(Inbound("web", "n2", "n2-3", "command",
                                      {"name": "tiket", "args": ticket.number}))
    theirs, made_up, by_command = _replies(lontar, "n2")[seen:]
    assert theirs["text"] == made_up["text"] == by_command["text"]
    assert "tidak ditemukan di laporan Anda" in theirs["text"]
    assert _targets(theirs) == _targets(made_up) == ["c:list", "menu"]
    for reply in _replies(lontar, "n2"):
        for secret in (ticket.number, "uang rokok", "sudah diperiksa", "CCTV"):
            assert secret not in str(reply)


async def test_a_story_of_only_emoji_asks_for_words(lontar: Lontar) -> None:
    for i, text in enumerate(["mau komplain", "1", "7", "1", "😡😡😡🙏"]):
        await _say(lontar, "emoji-chat", i, text)
    assert "Ceritanya belum ada" in _last_text(lontar, 1)
    with lontar.db.session() as s:
        assert s.exec(select(Complaint)).first() is None
