"""Following a ticket in the pure engine: typed numbers, the list's buttons, adding
information, rating. The shell's side (who follows what) is in tests/bot/test_complaints.py."""

from __future__ import annotations

import pytest

from flows.content import BUTTON_LABEL_MAX, Content
from flows.engine import step
from flows.tickets import find_number
from flows.types import (
    AddToTicket,
    Attachment,
    Choice,
    Command,
    LookupTickets,
    RateTicket,
    State,
    Step,
    Text,
    TicketInfoAdded,
    TicketRated,
    TicketsFound,
)
from tests.conftest import Clock

NUMBER = "ADU-2026-7K3QF9"
OPEN = (NUMBER, "pengaduan", "diproses", "2 Maret 2026")
CLOSED = ("SAR-2026-ABCDEF", "saran", "selesai", "1 Maret 2026")


def _started(content: Content, clock: Clock) -> State:
    return step(State(), Command("start", clock.tick()), content).state


def _targets(result: Step) -> list[str]:
    return [o.id.partition("|")[2] for o in result.replies[-1].options]


@pytest.mark.parametrize(("text", "number"), [
    ("ADU-2026-7K3QF9", NUMBER),
    ("cek adu-2026-7k3qf9", NUMBER),
    ("tiket ADU 2026 7K3QF9 belum dijawab", NUMBER),
    ("ADU\u20132026\u20137K3QF9", NUMBER),  # a phone's autocorrected dash
    ("nomor saya SAR-2026-ABCDEF.", "SAR-2026-ABCDEF"),
    ("dan 2024 sampai sekarang", None),
    ("XYZ-2026-7K3QF9", None),  # not a prefix of any kind
    ("ADU-2026-7K3QF99", None),
    ("syarat kk baru", None),
])
def test_find_number(text: str, number: str | None, content: Content) -> None:
    assert find_number(text, content) == number


@pytest.mark.parametrize("event_of", [
    lambda at: Text("cek ADU-2026-7k3qf9", at),
    lambda at: Command("tiket", at, "adu-2026-7K3QF9"),
])
def test_a_typed_number_asks_the_shell_about_that_ticket(event_of, content: Content,  # type: ignore[no-untyped-def]
                                                         clock: Clock) -> None:
    r = step(_started(content, clock), event_of(clock.tick()), content)
    assert r.effects == (LookupTickets(NUMBER),) and r.replies == ()


def test_a_number_inside_a_complaint_story_stays_in_the_story(content: Content,
                                                              clock: Clock) -> None:
    state = _started(content, clock).model_copy(update={
        "screen": "c:text", "data": {"complaint": {"kind": "pengaduan"}}})
    r = step(state, Text(f"Laporan {NUMBER} belum dijawab", clock.tick()), content)
    assert not any(isinstance(e, LookupTickets) for e in r.effects)
    assert r.state.data["complaint"]["text"] == f"Laporan {NUMBER} belum dijawab"


def test_not_found_says_one_thing_and_echoes_nothing(content: Content, clock: Clock) -> None:
    """Someone else's ticket and a made-up number get the same reply (the shell sends no
    ticket in both cases); the reply does not repeat the number either."""
    r = step(_started(content, clock), TicketsFound(clock.tick(), (), NUMBER), content)
    assert r.replies[-1].text == content.msg("id", "ticket_not_found")
    assert NUMBER not in r.replies[-1].text
    assert _targets(r) == ["c:list", "menu"]


def test_one_ticket_shows_the_latest_staff_answer_and_add_button(content: Content,
                                                                 clock: Clock) -> None:
    r = step(_started(content, clock),
             TicketsFound(clock.tick(), (OPEN,), NUMBER, "Sudah diperbaiki."), content)
    assert NUMBER in r.replies[-1].text and "Sudah diperbaiki." in r.replies[-1].text
    assert _targets(r) == [f"c:add:{NUMBER}", "c:list", "menu"]
    closed = step(r.state, TicketsFound(clock.tick(), (CLOSED,), CLOSED[0]), content)
    assert _targets(closed) == ["c:list", "menu"]  # nothing to add to a closed ticket


def test_list_offers_add_buttons_for_the_three_newest_open_tickets(content: Content,
                                                                   clock: Clock) -> None:
    tickets = tuple((f"ADU-2026-AAAAA{i}", "pengaduan", state, "1 Maret 2026")
                    for i, state in zip("23456", ("baru", "selesai", "diproses",
                                                  "diverifikasi", "baru"), strict=True))
    r = step(_started(content, clock), TicketsFound(clock.tick(), tickets), content)
    assert _targets(r) == ["c:add:ADU-2026-AAAAA2", "c:add:ADU-2026-AAAAA4",
                           "c:add:ADU-2026-AAAAA5", "menu"]
    assert all(len(o.label) <= BUTTON_LABEL_MAX for o in r.replies[-1].options)
    only_closed = step(r.state, TicketsFound(clock.tick(), (CLOSED,)), content)
    assert "c:add:" not in " ".join(_targets(only_closed))


def test_add_information_to_a_ticket(content: Content, clock: Clock) -> None:
    r = step(_started(content, clock), TicketsFound(clock.tick(), (OPEN,)), content)
    r = step(r.state, Choice(r.replies[-1].options[0].id, clock.tick()), content)
    assert r.state.screen == f"c:add:{NUMBER}" and NUMBER in r.replies[-1].text
    assert _targets(r) == ["back", "menu"]
    empty = step(r.state, Text("  ...  ", clock.tick()), content)
    assert content.msg("id", "ticket_add_empty") in empty.replies[-1].text
    assert empty.effects == ()
    photo = step(r.state, Attachment("photo", clock.tick(), "a/1.jpg"), content)
    assert content.msg("id", "ticket_add_photo_kept") in photo.replies[-1].text
    sent = step(photo.state, Text(" Loket 3. " + "x" * 3000, clock.tick()), content)
    (effect,) = sent.effects
    assert isinstance(effect, AddToTicket) and effect.number == NUMBER
    assert effect.photos == ("a/1.jpg",) and effect.text.startswith("Loket 3.")
    assert len(effect.text) == 1999  # the first 2,000 characters, trimmed
    assert content.msg("id", "too_long") in sent.replies[0].text
    assert sent.state.screen != f"c:add:{NUMBER}"  # a second message is not added again
    done = step(sent.state, TicketInfoAdded(clock.tick(), NUMBER, True), content)
    assert f"Info ditambahkan ke {NUMBER}. Petugas akan membacanya." in done.replies[0].text
    assert done.state.screen == "menu"


def test_photos_belong_to_the_ticket_they_were_sent_for(content: Content,
                                                        clock: Clock) -> None:
    r = step(_started(content, clock), Choice(f"go:c:add:{NUMBER}", clock.tick()), content)
    r = step(r.state, Attachment("photo", clock.tick(), "a/1.jpg"), content)
    other = step(r.state, Choice("go:c:add:ADU-2026-BBBBBB", clock.tick()), content)
    sent = step(other.state, Text("info", clock.tick()), content)
    assert sent.effects == (AddToTicket("ADU-2026-BBBBBB", "info", ()),)


@pytest.mark.parametrize(("closed", "key"), [(True, "ticket_info_closed"),
                                             (False, "ticket_info_refused")])
def test_add_information_refused(closed: bool, key: str, content: Content,
                                 clock: Clock) -> None:
    r = step(_started(content, clock), TicketInfoAdded(clock.tick(), NUMBER, False, closed),
             content)
    expected = content.msg("id", key, number=NUMBER) if closed else content.msg("id", key)
    assert expected in r.replies[0].text and r.state.screen == "menu"
    if not closed:
        assert NUMBER not in r.replies[0].text


def test_rating_link_asks_the_shell_then_offers_the_survey(content: Content,
                                                           clock: Clock) -> None:
    state = _started(content, clock).model_copy(update={"screen": "c:text"})
    r = step(state, Choice(f"go:rate:{NUMBER}:4", clock.tick()), content)
    assert r.effects == (RateTicket(NUMBER, 4),)
    thanks = step(r.state, TicketRated(clock.tick(), NUMBER, True), content)
    assert NUMBER in thanks.replies[-1].text
    assert _targets(thanks) == ["survey", "menu"]
    assert thanks.state.screen == "menu"  # no longer writing a complaint
    survey = step(thanks.state, Choice(thanks.replies[-1].options[0].id, clock.tick()),
                  content)
    assert survey.state.screen == "survey"


@pytest.mark.parametrize("payload", [f"go:rate:{NUMBER}:9", f"go:rate:{NUMBER}:0",
                                     f"go:rate:{NUMBER}:x", "go:rate:", "go:rate:nope:5"])
def test_bad_rating_links_are_refused_without_asking(payload: str, content: Content,
                                                     clock: Clock) -> None:
    r = step(_started(content, clock), Choice(payload, clock.tick()), content)
    assert r.effects == ()
    assert content.msg("id", "ticket_rate_refused") in r.replies[0].text


def test_rating_refused_by_the_shell(content: Content, clock: Clock) -> None:
    r = step(_started(content, clock), TicketRated(clock.tick(), NUMBER, False), content)
    assert content.msg("id", "ticket_rate_refused") in r.replies[0].text
    assert NUMBER not in r.replies[0].text and r.state.screen == "menu"


def test_a_bare_number_on_the_add_screen_picks_a_button(content: Content,
                                                       clock: Clock) -> None:
    """Numbered-text channels (the terminal, a long WhatsApp list) press buttons by typing."""
    r = step(_started(content, clock), Choice(f"go:c:add:{NUMBER}", clock.tick()), content)
    menu = step(r.state, Text("2", clock.tick()), content)
    assert menu.effects == () and menu.state.screen == "menu"
