"""Consent at first contact, /langganan and /berhenti, and the settings (flows/settings.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flows import settings
from flows.content import Content
from flows.engine import step
from flows.screens import render
from flows.types import (
    ApplicationChecked,
    Choice,
    Command,
    ListApplications,
    Reply,
    SetArea,
    SetConsent,
    State,
    Step,
    Text,
    Timeout,
)
from tests.conftest import T0, Clock

YES, NO = "go:consent:yes", "go:consent:no"


def _question(result: Step, content: Content) -> Reply | None:
    return next((r for r in result.replies if r.text == content.msg("id", "consent_ask")), None)


def _settled() -> State:
    """A conversation past its first turn that has answered the question."""
    return State(updated_at=T0, consent_asked=True, screen="menu")


def _press(result: Step, target: str, clock: Clock) -> Choice:
    option = next(o for r in result.replies for o in r.options
                  if o.id.partition("|")[2] == target)
    return Choice(option.id, clock.tick())


# -- the first-contact question -------------------------------------------------------------


def test_asked_once_after_the_first_answer(content: Content, clock: Clock) -> None:
    first = step(State(), Text("syarat kk baru", clock.tick()), content)
    question = _question(first, content)
    assert question is not None and first.replies[-1] is question  # after the answer
    assert content.services["kk-baru"].bring.id in first.replies[0].text
    assert [o.id for o in question.options] == [YES, NO]
    assert first.state.consent_asked and not first.effects[1:]  # nothing decided yet
    # the answer's buttons stay live: the question's links are not numbered
    assert all(f"{first.state.seq}|" in o.id for o in first.replies[0].options)
    r = first
    for event in (Text("menu", clock.tick()), Command("start", clock.tick()),
                  Timeout(clock.tick(hours=1)), Text("syarat ktp", clock.tick(hours=2))):
        r = step(r.state, event, content)
        assert _question(r, content) is None


def test_an_existing_conversation_is_asked_on_its_next_turn(content: Content,
                                                           clock: Clock) -> None:
    old = State(updated_at=T0, screen="menu", seq=4)  # saved before the question existed
    r = step(old, Text("jam buka", T0 + timedelta(minutes=1)), content)
    assert _question(r, content) is not None
    assert step(r.state, Text("jam buka", clock.tick(minutes=2)), content).state.consent_asked


@pytest.mark.parametrize(("link", "opted_in", "key"), [(YES, True, "subscribed"),
                                                       (NO, False, "consent_no")])
def test_answering_by_button(link: str, opted_in: bool, key: str, content: Content,
                             clock: Clock) -> None:
    first = step(State(), Command("start", clock.tick()), content)
    r = step(first.state, Choice(link, clock.tick()), content)
    assert r.effects == (SetConsent(opted_in, first=True),)
    assert r.state.subscribed is opted_in
    assert [x.text for x in r.replies] == [content.msg("id", key)]
    # the menu above the question is still live
    menu = first.replies[0].options[0].id
    assert step(r.state, Choice(menu, clock.tick()), content).state.screen == "docs"


@pytest.mark.parametrize(("typed", "effect"), [("ya", SetConsent(True, first=True)),
                                               ("Iya mau!", SetConsent(True, first=True)),
                                               ("gak", SetConsent(False, first=True)),
                                               ("tidak usah", SetConsent(False, first=True))])
def test_typed_answer_right_after_the_question(typed: str, effect: SetConsent,
                                               content: Content, clock: Clock) -> None:
    first = step(State(), Text("halo", clock.tick()), content)
    r = step(first.state, Text(typed, clock.tick()), content)
    assert r.effects == (effect,)


def test_typed_yes_later_is_not_consent(content: Content, clock: Clock) -> None:
    first = step(State(), Text("halo", clock.tick()), content)
    r = step(first.state, Text("jam buka", clock.tick()), content)
    r = step(r.state, Text("ya", clock.tick()), content)
    assert not any(isinstance(e, SetConsent) for e in r.effects)


def test_not_asked_inside_a_complaint_or_while_the_shell_answers(content: Content,
                                                                 clock: Clock) -> None:
    r = step(State(), Text("saya mau mengadu", clock.tick()), content)
    assert _question(r, content) is None and not r.state.consent_asked
    r = step(State(), Text("cek status", clock.tick()), content)
    assert ListApplications() in r.effects and _question(r, content) is None
    checked = step(r.state, ApplicationChecked(clock.tick(), "KK-2026-0001", "found", "Siap"),
                   content)
    assert _question(checked, content) is None and not checked.state.consent_asked
    r = step(State(), Command("pengaturan", clock.tick()), content)
    assert _question(r, content) is None  # the settings offer the same choice
    later = step(r.state, Text("menu", clock.tick()), content)
    assert _question(later, content) is not None  # asked once out of it


# -- /langganan, /berhenti ------------------------------------------------------------------


@pytest.mark.parametrize(("event", "opted_in"), [
    (Command("langganan", T0), True), (Text("/langganan", T0), True),
    (Text("langganan", T0), True), (Text("mau info", T0), True),
    (Text("subscribe", T0), True), (Command("berhenti", T0), False),
    (Text("stop", T0), False), (Text("Berhenti", T0), False),
    (Text("berhenti langganan", T0), False)])
def test_subscribe_and_stop(event: Command | Text, opted_in: bool, content: Content) -> None:
    r = step(_settled(), event, content)
    assert r.effects == (SetConsent(opted_in),)
    assert r.state.subscribed is opted_in
    assert r.replies[0].text == content.msg("id", "subscribed" if opted_in else "stop")


def test_stop_at_first_contact_is_not_then_asked(content: Content, clock: Clock) -> None:
    r = step(State(), Text("stop", clock.tick()), content)
    assert SetConsent(False) in r.effects and _question(r, content) is None


# -- settings -------------------------------------------------------------------------------


def test_settings_show_what_was_chosen(content: Content) -> None:
    state = State(lang="en", subscribed=True, kecamatan="alak", kelurahan="alak:1010")
    screen = render("settings", "en", content, state=state)
    assert "English" in screen.text and "Manulai II" in screen.text and "Alak" in screen.text
    assert content.msg("en", "settings_subscribed") in screen.text
    assert "set:sub:off" in [t.to for t in screen.targets]
    plain = render("settings", "id", content, state=State())
    assert content.msg("id", "area_none") in plain.text
    assert "set:sub:on" in [t.to for t in plain.targets]


def test_choose_kecamatan_then_kelurahan(content: Content, clock: Clock) -> None:
    r = step(_settled(), Command("pengaturan", clock.tick()), content)
    assert r.state.screen == "settings"
    r = step(r.state, _press(r, "set:area", clock), content)
    assert len(r.replies[-1].options) == len(content.kecamatan) + 1  # + Kembali
    r = step(r.state, _press(r, "set:kec:oebobo", clock), content)
    r = step(r.state, _press(r, "set:kel:oebobo:1009", clock), content)
    assert r.effects == (SetArea("oebobo", "oebobo:1009"),)
    assert (r.state.kecamatan, r.state.kelurahan) == ("oebobo", "oebobo:1009")
    assert r.state.screen == "settings" and r.state.back == ("menu",)
    oebobo = next(k for k in content.kecamatan if k.id == "oebobo")
    assert oebobo.kelurahan[2].name in r.replies[-1].text  # shown back in the settings


def test_skip_kelurahan_and_clear(content: Content, clock: Clock) -> None:
    r = step(_settled(), Choice("go:set:kec:alak", clock.tick()), content)
    assert r.state.screen == "set:kec:alak"
    r = step(r.state, _press(r, "set:kec:alak:2", clock), content)  # the second page
    r = step(r.state, _press(r, "set:skip:alak", clock), content)
    assert r.effects == (SetArea("alak", None),)
    r = step(r.state, _press(r, "set:area", clock), content)
    r = step(r.state, _press(r, "set:clear", clock), content)
    assert r.effects == (SetArea(None, None),) and r.state.kecamatan is None


@pytest.mark.parametrize("link", ["go:set:kel:alak:9999", "go:set:kel:nowhere:1001",
                                  "go:set:kel:", "go:set:kel:alak", "go:set:skip:nowhere",
                                  "go:set:kec:nowhere", "go:set:kec:alak:3",
                                  "go:set:kec:alak:x", "go:set:kec:alak:0"])
def test_forged_area_is_refused_politely(link: str, content: Content, clock: Clock) -> None:
    r = step(_settled(), Choice(link, clock.tick()), content)
    assert not any(isinstance(e, SetArea) for e in r.effects)
    assert r.replies[0].text.startswith(content.msg("id", "area_unknown"))
    assert r.state.screen == "set:area" and r.replies[-1].options


def test_a_pressed_kelurahan_of_another_kecamatan_page_still_needs_to_exist(
        content: Content, clock: Clock) -> None:
    """Codes repeat across kecamatan: the pair is what is checked and stored."""
    r = step(_settled(), Choice("go:set:kel:kota-raja:1001", clock.tick()), content)
    assert r.effects == (SetArea("kota-raja", "kota-raja:1001"),)


def test_settings_screens_fit_every_platform(content: Content) -> None:
    ids = settings.screens(content)
    assert sum(len(settings._pages(k)) for k in content.kecamatan) + 2 == len(ids)
    kelurahan = set()
    for screen_id in ids:
        for lang in ("id", "en"):
            screen = render(screen_id, lang, content, state=State(kecamatan="alak"))
            assert len(screen.targets) <= 10
            for t in screen.targets:
                assert len(f"99999|{t.to}".encode()) <= 64  # Telegram callback data
                if t.to.startswith("set:kel:"):
                    kelurahan.add(t.to)
    assert len(kelurahan) == sum(len(k.kelurahan) for k in content.kecamatan) == 51


def test_choices_survive_an_idle_reset(content: Content, clock: Clock) -> None:
    state = State(updated_at=T0, consent_asked=True, subscribed=True, kecamatan="alak",
                  kelurahan="alak:1001", screen="s:kk-baru", lang="en")
    r = step(state, Timeout(clock.tick(hours=1)), content)
    assert (r.state.consent_asked, r.state.subscribed, r.state.kecamatan, r.state.kelurahan,
            r.state.lang, r.state.screen) == (True, True, "alak", "alak:1001", "en", "")
    later = step(state, Text("menu", T0 + timedelta(hours=3)), content)
    assert later.state.kelurahan == "alak:1001" and _question(later, content) is None
