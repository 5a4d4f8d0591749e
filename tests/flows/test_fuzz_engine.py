"""Fuzzing the pure engine: any sequence of any event a channel can hand it, from a fresh
conversation, with the state stored as JSON and loaded again between turns (as the shell
does). Bounded for CI by tests/fuzz.py; `LONTAR_FUZZ_EXAMPLES=5000` searches longer.

Properties: no exception escapes `step`; every citizen event is answered (or the engine asks
the shell, whose answer is then answered); every reply has a text within Telegram's limit,
and a reply with buttons fits WhatsApp (body, 10 buttons, labels) and Telegram (64-byte
callback data); replies survive their outbox serialisation; the state survives JSON and stays
valid (a known language, a renderable screen, bounded history, live buttons numbered by seq).
"""

from __future__ import annotations

import functools
import json
import string
from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flows.content import BUTTON_LABEL_MAX, TELEGRAM_TEXT_MAX, WHATSAPP_BODY_MAX, Content
from flows.engine import MAX_BACK, step
from flows.screens import UnknownScreen, every_screen, render
from flows.types import (
    ASKS,
    LANGS,
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
    State,
    Step,
    Text,
    TicketInfoAdded,
    TicketRated,
    TicketsFound,
    Timeout,
)
from tests.conftest import T0
from tests.fuzz import fuzz_settings

ATTACHMENT_KINDS = ["photo", "document", "sticker", "voice", "audio", "video", "animation",
                    "location", "contact", "other"]
EMOJI = "😀🙏👍🏽🇮🇩❤️‍🔥👨‍👩‍👧"
NUMBERS = ["ADU-2026-7K3QF9", "adu-2026-7k3qf9", "KK-2026-0001", "5371011203900001",
           "12-03-1990", "31-02-1990", "0001", "0", "1", "2", "3", "9", "10", "11", "99",
           "-1", "1.5", "١", "１"]

# any unicode (surrogates included: Python strings carry them), emoji, control characters
_any_text = st.text(st.characters(codec=None), max_size=60)
_controls = st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"]), max_size=20)
_emoji = st.text(st.sampled_from(EMOJI), min_size=1, max_size=10)
_long = st.builds(lambda s, n: (s * n)[:9000], st.text(min_size=1, max_size=8),
                  st.integers(100, 3000))


def _words(content: Content) -> list[str]:
    words = [w for names in content.language.commands.values() for w in names]
    words += [e.label.get(lang) for e in content.main_menu for lang in LANGS]
    words += ["syarat kk", "ktp ilang", "akta", "halo", "terima kasih", "tiket saya",
              "cek status", "ya", "tidak", "mau info", "pengaduan", "saran"]
    return words + NUMBERS


@functools.cache
def _text(content: Content) -> st.SearchStrategy[str]:
    words = st.sampled_from(_words(content))
    mixed = st.lists(st.one_of(words, _emoji, _controls), min_size=1, max_size=5).map(
        " ".join)
    return st.one_of(words, words, mixed, _any_text, _controls, _emoji, _long,
                     st.builds(lambda w: "/" + w, words))


def _answer(asks: Any, at: Any) -> st.SearchStrategy[Event]:
    """Any answer the shell could give to what the engine asked."""
    text = st.text(max_size=3000)
    ticket = st.tuples(st.sampled_from(NUMBERS), st.sampled_from(["pengaduan", "saran"]),
                       st.sampled_from(["baru", "proses", "selesai", "ditutup", "??"]),
                       st.text(max_size=20))
    if isinstance(asks, FileComplaint):
        return st.one_of(
            st.builds(ComplaintFiled, st.just(at), st.sampled_from(NUMBERS),
                      st.none() | st.text(max_size=20)),
            st.builds(ComplaintFiled, st.just(at), st.none(), st.none(),
                      st.sampled_from(["too_many", "duplicate"]), st.integers(0, 10)))
    if isinstance(asks, LookupTickets):
        return st.builds(TicketsFound, st.just(at), st.lists(ticket, max_size=12).map(tuple),
                         st.just(asks.number), st.none() | text)
    if isinstance(asks, RateTicket):
        return st.builds(TicketRated, st.just(at), st.just(asks.number), st.booleans())
    if isinstance(asks, AddToTicket):
        return st.builds(TicketInfoAdded, st.just(at), st.just(asks.number), st.booleans(),
                         st.booleans())
    if isinstance(asks, CheckApplication):
        return st.builds(ApplicationChecked, st.just(at), st.just(asks.reg_no),
                         st.sampled_from(["found", "no_match", "locked", "too_many"]),
                         text, st.booleans(), st.booleans(), st.integers(0, 5),
                         st.integers(0, 1440))
    if isinstance(asks, ListApplications):
        return st.builds(ApplicationsListed, st.just(at), st.lists(
            st.tuples(st.sampled_from(NUMBERS), st.text(max_size=200)), max_size=15).map(tuple))
    assert isinstance(asks, FollowApplication)
    return st.builds(ApplicationFollowed, st.just(at), st.just(asks.reg_no),
                     st.just(asks.follow), st.booleans())


_LIVE, _STALE = object(), object()  # markers: a button of the newest or an older set


@functools.cache
def _events(content: Content) -> st.SearchStrategy[Any]:
    """One inbound event (its time filled in later): mostly what a citizen sends, sometimes
    what nobody should. Built once: building strategies costs more than running the engine."""
    screens = every_screen(content)
    payloads = st.one_of(
        st.tuples(st.just(_LIVE), st.integers(0, 20)),
        st.tuples(st.just(_STALE), st.integers(0, 20)),
        st.sampled_from(screens).map(lambda s: "go:" + s),
        st.text(string.printable, max_size=70),
        _any_text,
        st.builds(lambda n, t: f"{n}|{t}", st.integers(-2, 2**70),
                  st.sampled_from(screens) | st.text(max_size=30)),
    )
    attachment = st.builds(lambda *a: ("attachment", a), st.sampled_from(ATTACHMENT_KINDS),
                           st.none() | st.sampled_from(["a/1.jpg", "a/2.pdf", ""]),
                           st.none() | st.sampled_from(["too_large", "bad_type"]))
    names = st.sampled_from([w for names in content.language.commands.values() for w in names]
                            + ["start", "status", "pengaduan", "hapus", "group", ""])
    numbers = st.sampled_from(NUMBERS)
    unasked = st.one_of(  # a shell answer nobody waits for (a late or duplicated one)
        st.builds(lambda n: ("unasked", ComplaintFiled, (n,)), st.none() | numbers),
        st.just(("unasked", TicketsFound, ((),))),
        st.builds(lambda n, b: ("unasked", TicketRated, (n, b)), numbers, st.booleans()),
        st.builds(lambda n, b: ("unasked", TicketInfoAdded, (n, b)), numbers, st.booleans()),
        st.builds(lambda n, o: ("unasked", ApplicationChecked, (n, o)), numbers,
                  st.sampled_from(["found", "no_match", "locked", "too_many"])),
        st.just(("unasked", ApplicationsListed, ((),))),
        st.builds(lambda n, a, b: ("unasked", ApplicationFollowed, (n, a, b)), numbers,
                  st.booleans(), st.booleans()),
    )
    return st.one_of(
        st.tuples(st.just("text"), _text(content)),
        st.tuples(st.just("choice"), payloads),
        st.tuples(st.just("command"), names | st.text(max_size=40),
                  st.just("") | _text(content)),
        attachment,
        st.just(("timeout",)),
        unasked,
    )


def _make(drawn: tuple[Any, ...], state: State, stale: list[str], at: Any) -> Event:
    kind = drawn[0]
    if kind == "text":
        return Text(drawn[1], at)
    if kind == "command":
        return Command(drawn[1], at, drawn[2])
    if kind == "attachment":
        kind, ref, problem = drawn[1]
        return Attachment(kind, at, ref, problem)
    if kind == "timeout":
        return Timeout(at)
    if kind == "unasked":
        return drawn[1](at, *drawn[2])  # type: ignore[no-any-return]
    payload = drawn[1]
    if isinstance(payload, tuple):
        pool = ([f"{state.seq}|{o}" for o in state.options] if payload[0] is _LIVE
                else stale) or ["1|menu"]
        payload = pool[payload[1] % len(pool)]
    return Choice(payload, at)


def _check_replies(replies: tuple[Reply, ...]) -> None:
    for reply in replies:
        assert reply.text.strip(), reply
        assert len(reply.text) <= TELEGRAM_TEXT_MAX
        if reply.options:
            assert len(reply.text) <= WHATSAPP_BODY_MAX
            assert len(reply.options) <= 10
            for o in reply.options:
                assert o.id and len(o.id.encode()) <= 64, o
                assert o.label.strip() and len(o.label) <= BUTTON_LABEL_MAX, o
        stored = json.loads(json.dumps(reply.to_dict()))  # the outbox row
        assert Reply.from_dict(stored) == reply


def _stored(state: State) -> State:
    """The state as the shell keeps it (JSON) and loads it for the next turn."""
    saved = json.loads(json.dumps(state.model_dump(mode="json")))
    loaded = State.model_validate(saved)
    assert loaded.model_dump(mode="json") == saved  # nothing is lost or changed on the way
    return loaded


def _check_state(state: State, content: Content) -> None:
    assert state.lang in LANGS
    assert state.seq >= 0 and len(state.back) <= MAX_BACK
    assert len(state.options) <= 10
    if state.screen:
        try:
            render(state.screen, state.lang, content, state.data, state)
        except UnknownScreen as exc:  # pragma: no cover - the failure report
            raise AssertionError(f"state points at a screen that does not exist: {exc}") from exc


@fuzz_settings(200)
@given(st.data())
def test_any_events_from_a_fresh_state(content: Content, data: st.DataObject) -> None:
    state, now = State(), T0
    stale: list[str] = []
    for _ in range(data.draw(st.integers(1, 20), label="turns")):
        now += data.draw(st.sampled_from([timedelta(seconds=5), timedelta(minutes=2),
                                          timedelta(hours=2), timedelta(seconds=-30)]))
        event = _make(data.draw(_events(content), label="event"), state, stale, now)
        result = step(state, event, content)
        asks = [e for e in result.effects if isinstance(e, ASKS)]
        for _ in range(3):  # the shell answers what the engine asked (bot/inbox.py: bounded)
            if not asks:
                break
            answer = data.draw(_answer(asks[0], now), label="shell answer")
            follow = step(_stored(result.state), answer, content)
            assert follow.replies, answer
            result = Step(follow.state, result.replies + follow.replies, follow.effects)
            asks = [e for e in follow.effects if isinstance(e, ASKS)]
        if isinstance(event, Timeout):
            assert result.replies == ()  # an idle reset is quiet
        else:
            assert result.replies, event  # every message is answered (a late answer too)
        _check_replies(result.replies)
        stale = [f"{state.seq}|{o}" for o in state.options] or stale
        state = _stored(result.state)
        _check_state(state, content)
