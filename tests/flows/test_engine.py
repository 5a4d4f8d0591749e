"""Engine behaviour that golden transcripts show by example, checked here as rules."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.content import BUTTON_LABEL_MAX, TELEGRAM_TEXT_MAX, WHATSAPP_BODY_MAX, Content
from flows.engine import MAX_TEXT, step
from flows.screens import every_screen
from flows.types import (
    ASKS,
    AddToTicket,
    ApplicationChecked,
    ApplicationFollowed,
    ApplicationsListed,
    Attachment,
    CheckApplication,
    Choice,
    Command,
    ComplaintFiled,
    Event,
    FileComplaint,
    FollowApplication,
    ListApplications,
    LookupTickets,
    RateTicket,
    Reply,
    SetConsent,
    SetLanguage,
    State,
    Step,
    Text,
    TicketInfoAdded,
    TicketRated,
    TicketsFound,
    Timeout,
)
from tests.conftest import T0, Clock

SCREENS_TO_TRY = ["menu", "docs", "g:kk", "s:kk-baru", "s:kk-baru:steps", "t:biaya", "faq",
                  "lang", "help"]


def _at(screen: str, content: Content, clock: Clock) -> State:
    """A conversation that has reached `screen` (started, then navigated there)."""
    state = step(State(), Command("start", clock.tick()), content).state
    return state.model_copy(update={"screen": screen, "back": ("menu",)})


def _menu(result: Step) -> Reply:
    """The newest reply with numbered buttons (the consent question, links only, may follow
    it on a first turn)."""
    return next(r for r in reversed(result.replies)
                if any(not o.id.startswith("go:") for o in r.options))


def _press(result: Step, label_contains: str, clock: Clock) -> Choice:
    for reply in result.replies:
        for option in reply.options:
            if label_contains.lower() in option.label.lower():
                return Choice(option.id, clock.tick())
    raise AssertionError(f"no button {label_contains!r} in {result.replies}")


def test_first_contact_greets_once_and_shows_menu(content: Content, clock: Clock) -> None:
    first = step(State(), Text("halo", clock.tick()), content)
    assert content.msg("id", "welcome") in first.replies[0].text
    assert _menu(first).options
    second = step(first.state, Command("start", clock.tick()), content)
    assert all(content.msg("id", "welcome") not in r.text for r in second.replies)


@pytest.mark.parametrize("screen", SCREENS_TO_TRY)
@pytest.mark.parametrize("word", ["menu", "kembali", "batal", "bantuan", "bahasa", "stop"])
def test_global_commands_work_in_every_state(screen: str, word: str, content: Content,
                                             clock: Clock) -> None:
    result = step(_at(screen, content, clock), Text(word, clock.tick()), content)
    assert result.replies
    if word == "menu":
        assert result.state.screen == "menu" and result.state.back == ()
    elif word == "kembali":
        assert result.state.screen == "menu"  # the way back from `screen` was the menu
    elif word == "batal":
        assert content.msg("id", "cancel") in result.replies[0].text
        assert result.state.screen == "menu"
    elif word == "bantuan":
        assert result.state.screen == "help"
    elif word == "bahasa":
        assert result.state.screen == "lang"
    else:
        assert SetConsent(False) in result.effects
        assert result.replies[-1].options == ()


def test_every_service_is_reachable_from_the_menu(content: Content, clock: Clock) -> None:
    """Menu -> documents -> group -> service shows 'what to bring', then every section."""
    reached = set()
    for group in content.groups.values():
        for service_id in group.services:
            svc = content.services[service_id]
            r = step(State(), Command("start", clock.tick()), content)
            r = step(r.state, _press(r, content.main_menu[0].label.id, clock), content)
            r = step(r.state, _press(r, group.label.id, clock), content)
            if len(group.services) > 1:
                r = step(r.state, _press(r, svc.label.id, clock), content)
            assert svc.bring.id in r.replies[-1].text
            assert content.msg("id", "free_short") in r.replies[-1].text
            for section in ("steps", "where", "duration", "legal"):
                s = step(r.state, _press(r, content.msg("id", f"section_{section}"), clock),
                         content)
                assert getattr(svc, section).id in s.replies[-1].text
            s = step(r.state, _press(r, content.msg("id", "section_free"), clock), content)
            assert "79A" in s.replies[-1].text
            reached.add(service_id)
    assert reached == set(content.services) and len(reached) == 13


def test_stale_button_is_answered_clearly(content: Content, clock: Clock) -> None:
    r1 = step(State(), Command("start", clock.tick()), content)
    r2 = step(r1.state, Choice(_menu(r1).options[0].id, clock.tick()), content)
    stale = step(r2.state, Choice(_menu(r1).options[1].id, clock.tick()), content)
    assert content.msg("id", "stale_button") in stale.replies[0].text
    assert stale.state.screen == r2.state.screen
    assert stale.replies[-1].options  # fresh buttons to carry on


@pytest.mark.parametrize("payload", ["", "garbage", "999|menu", "1|", "x|menu", "1|s:nope",
                                     "|" * 64, "1|" + "a" * 60])
def test_forged_or_malformed_payloads_are_stale(payload: str, content: Content,
                                                clock: Clock) -> None:
    r = step(State(), Command("start", clock.tick()), content)
    result = step(r.state, Choice(payload, clock.tick()), content)
    assert content.msg("id", "stale_button") in result.replies[0].text


def test_idle_timeout_starts_fresh_with_one_line(content: Content, clock: Clock) -> None:
    r = step(State(), Command("start", clock.tick()), content)
    r = step(r.state, Choice(_menu(r).options[0].id, clock.tick()), content)
    later = step(r.state, Text("syarat kia", clock.tick(hours=3)), content)
    assert later.replies[0].text.startswith(content.msg("id", "welcome_back"))
    assert later.state.screen == "s:kia" and later.state.back == ()  # nothing from before
    assert sum(content.msg("id", "welcome_back") in r.text for r in later.replies) == 1


def test_timeout_event_resets_quietly(content: Content, clock: Clock) -> None:
    r = step(State(lang="en"), Command("start", clock.tick()), content)
    t = step(r.state, Timeout(clock.tick(hours=1)), content)
    assert t.replies == () and t.state.screen == "" and t.state.lang == "en"


def test_language_switch(content: Content, clock: Clock) -> None:
    r = step(State(), Text("bahasa", clock.tick()), content)
    r = step(r.state, _press(r, "English", clock), content)
    assert SetLanguage("en") in r.effects
    assert r.state.lang == "en"
    assert content.msg("en", "lang_set") in r.replies[0].text
    assert r.replies[-1].options[0].label == content.main_menu[0].label.en


def test_typed_number_chooses_an_option(content: Content, clock: Clock) -> None:
    r = step(State(), Command("start", clock.tick()), content)
    by_number = step(r.state, Text("1", clock.tick()), content)
    by_button = step(r.state, Choice(_menu(r).options[0].id, clock.tick()), content)
    assert by_number.state.screen == by_button.state.screen
    assert by_number.replies[-1].text == by_button.replies[-1].text


@pytest.mark.parametrize("kind", ["photo", "sticker", "voice", "video", "document", "other"])
def test_attachments_get_a_polite_reply_and_buttons(kind: str, content: Content,
                                                    clock: Clock) -> None:
    r = step(State(), Command("start", clock.tick()), content)
    a = step(r.state, Attachment(kind, clock.tick()), content)  # type: ignore[arg-type]
    assert content.msg("id", "attachment_unsupported") in a.replies[0].text
    assert a.replies[-1].options and a.state.screen == r.state.screen


@pytest.mark.parametrize("text", ["", "   ", "😀😀😀", "\x00\x07\x1b", "...!!!"])
def test_empty_like_text(text: str, content: Content, clock: Clock) -> None:
    r = step(State(), Command("start", clock.tick()), content)
    e = step(r.state, Text(text, clock.tick()), content)
    assert content.msg("id", "empty_text") in e.replies[-1].text
    assert e.replies[-1].options


def test_very_long_text_is_read_from_the_beginning(content: Content, clock: Clock) -> None:
    r = step(State(), Command("start", clock.tick()), content)
    text = "syarat akta kematian " + "bla " * 2500
    assert len(text) > MAX_TEXT
    e = step(r.state, Text(text, clock.tick()), content)
    assert content.msg("id", "too_long") in e.replies[0].text
    assert e.state.screen == "s:akta-kematian"


def test_state_round_trips_through_json(content: Content, clock: Clock) -> None:
    r = step(State(), Text("syarat kk baru", clock.tick()), content)
    again = State.model_validate(r.state.model_dump(mode="json"))
    assert again == r.state


def test_unknown_screen_in_saved_state_recovers(content: Content, clock: Clock) -> None:
    """State saved before an editor removed a topic must not trap the citizen."""
    state = State(screen="s:removed-service", back=("t:gone",), updated_at=T0)
    r = step(state, Text("kembali", T0 + timedelta(minutes=1)), content)
    assert r.replies and r.state.screen == "menu"


_events = st.one_of(
    st.builds(lambda t: ("text", t), st.text(max_size=80)),
    st.builds(lambda t: ("text", t), st.sampled_from(
        ["menu", "kembali", "batal", "bahasa", "stop", "1", "2", "7", "syarat kk", "ktp ilang",
         "akta", "halo", "bantuan", "English", "tiket saya", "cek adu-2026-7k3qf9",
         "cek status", "/status", "KK-2026-0001", "12-03-1990", "0001", "5371011203900001",
         "cek status " + "A1" * 20, "31-02-1990", "ya", "tidak", "langganan", "berhenti",
         "/pengaturan", "/langganan", "mau info"])),
    st.builds(lambda p: ("link", p), st.sampled_from(
        ["go:rate:ADU-2026-7K3QF9:5", "go:rate:ADU-2026-7K3QF9:0", "go:rate:x",
         "go:c:add:ADU-2026-7K3QF9", "go:c:add:", "go:c:list", "go:p:stop:KK-2026-0001",
         "go:p:sub:KK-2026-0001", "go:p:sub:", "go:p:stop:", "go:p:list", "go:p:new",
         "go:consent:yes", "go:consent:no", "go:settings", "go:set:area", "go:set:kec:alak",
         "go:set:kec:alak:2", "go:set:kec:alak:9", "go:set:kec:", "go:set:kel:alak:1001",
         "go:set:kel:alak:9999", "go:set:kel:", "go:set:skip:oebobo", "go:set:skip:x",
         "go:set:clear", "go:set:sub:on", "go:set:sub:off"])),
    st.builds(lambda i: ("press", i), st.integers(0, 12)),
    st.builds(lambda i: ("stale", i), st.integers(0, 12)),
    st.builds(lambda k: ("attach", k), st.sampled_from(["photo", "sticker", "location"])),
    st.builds(lambda r: ("kept", r), st.sampled_from(["a/1.jpg", "a/2.pdf"])),
    st.builds(lambda m: ("wait", m), st.integers(1, 300)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_events, min_size=1, max_size=25))
def test_any_sequence_of_events_is_safe(content: Content, events: list) -> None:  # type: ignore[type-arg]
    """Whatever a citizen does: no exception, replies fit every platform, buttons are live."""
    state, now = State(), T0
    old_options: list[str] = []
    for kind, value in events:
        now += timedelta(seconds=30)
        if kind == "wait":
            now += timedelta(minutes=value)
            continue
        if kind == "text":
            event: Event = Text(value, now)
        elif kind == "attach":
            event = Attachment(value, now)
        elif kind == "kept":
            event = Attachment("photo", now, value)
        elif kind == "link":
            event = Choice(value, now)
        else:
            pool = old_options if kind == "stale" else list(state.options)
            payload = (pool[value % len(pool)] if pool else "0|menu")
            if kind == "press" and state.options:
                payload = f"{state.seq}|{state.options[value % len(state.options)]}"
            event = Choice(payload, now)
        result = step(state, event, content)
        asks = [e for e in result.effects if isinstance(e, ASKS)]
        assert result.replies or asks, (kind, value)  # or the shell answers with an event
        if asks:  # the shell's answer, checked like any turn
            answered = step(result.state, _answer(asks[0], now), content)
            assert answered.replies
            result = Step(answered.state, result.replies + answered.replies)
        for reply in result.replies:
            assert 0 < len(reply.text) <= TELEGRAM_TEXT_MAX
            if reply.options:
                assert len(reply.text) <= WHATSAPP_BODY_MAX
                assert len(reply.options) <= 10
                for o in reply.options:
                    assert len(o.id.encode()) <= 64 and len(o.label) <= BUTTON_LABEL_MAX
        replies = list(result.replies)
        if len(replies) > 1 and _links_only(replies[-1]):
            replies.pop()  # never-stale links (the consent question) may follow the buttons
        assert not any(r.options for r in replies[:-1]), "only the newest reply has buttons"
        old_options = [f"{state.seq}|{t}" for t in state.options] or old_options
        state = result.state


def _links_only(reply: Reply) -> bool:
    return bool(reply.options) and all(o.id.startswith("go:") for o in reply.options)


def _answer(asks: object, now: datetime) -> Event:
    """A plausible answer from the shell to an effect the engine waits on."""
    open_ticket = ("ADU-2026-7K3QF9", "pengaduan", "baru", "2 Maret 2026")
    if isinstance(asks, FileComplaint):
        return ComplaintFiled(now, "ADU-2026-7K3QF9", "5 Maret 2026")
    if isinstance(asks, LookupTickets):
        return TicketsFound(now, (open_ticket,) * (1 if asks.number else 4), asks.number,
                            "Sudah kami tindak lanjuti. " * 100 if asks.number else None)
    if isinstance(asks, RateTicket):
        return TicketRated(now, asks.number, True)
    if isinstance(asks, CheckApplication):
        outcomes = ["found", "no_match", "locked", "too_many"]
        return ApplicationChecked(now, asks.reg_no, outcomes[now.second % 4],  # type: ignore[arg-type]
                                  "Permohonan X: Diproses. " * 20, following=now.minute % 2 == 0,
                                  done=True, attempts_left=3, minutes=60)
    if isinstance(asks, ListApplications):
        return ApplicationsListed(now, (("A1" * 20, "Diproses"),) * (now.second % 3) * 7)
    if isinstance(asks, FollowApplication):
        return ApplicationFollowed(now, asks.reg_no, asks.follow, now.second % 2 == 0)
    assert isinstance(asks, AddToTicket)
    return TicketInfoAdded(now, asks.number, False, True)


def test_every_screen_renders_in_both_languages(content: Content) -> None:
    from flows.render_check import check_rendering

    assert len(every_screen(content)) > 13 * 6
    assert check_rendering(content) == []


def test_go_links_open_a_screen_from_anywhere(content: Content, clock: Clock) -> None:
    """Buttons outside a conversation (a broadcast template) carry `go:<screen>`."""
    r = step(State(), Choice("go:s:kk-baru", clock.tick()), content)
    assert r.state.screen == "s:kk-baru"
    assert content.services["kk-baru"].bring.id in _menu(r).text
    bad = step(r.state, Choice("go:s:no-such-thing", clock.tick()), content)
    assert bad.state.screen == "menu"


@pytest.mark.parametrize(("text", "category", "urgent"), [
    ("Petugas minta uang 100 ribu", "biaya-pungli", True),
    ("ada calo di depan kantor", "biaya-pungli", True),
    ("antri lama sekali dari pagi", "antrean", False),
    ("kursi di ruang tunggu kurang, panas", "sarana", False),
    ("nama saya salah ketik di KK", "data-salah", False),
    ("petugas kasar dan membentak", "sikap-petugas", False),
    ("server mati terus, tidak bisa rekam", "sistem", False),
    ("terima kasih pelayanannya bagus", "lainnya", False),
])
def test_complaint_tagging(text: str, category: str, urgent: bool, content: Content) -> None:
    from flows.complaint import tag

    found = tag(text, content)
    assert found is not None and (found.id, found.urgent) == (category, urgent)
