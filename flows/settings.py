"""Consent to information from the office, and the citizen's settings.

Outreach (jemput bola schedules, service disruptions) goes only to citizens who said yes, so
the question is put once, early, in one short step: after the first turn's answer, a reply
with two never-stale `go:` links (`go:consent:yes`, `go:consent:no`), which leave the live
buttons above it live. It waits while the citizen is inside a complaint, a status check, a
survey or these settings, while the shell is still answering the turn, and after the
shell's answer (a status with its "notify me", a filed ticket), so it never cuts into a
question being answered or sits beside another offer. It can be changed any time:
`/langganan` ("langganan"), `/berhenti` ("stop", "berhenti": the engine's global `stop`), or
here in the settings.

What the citizen chose lives in `State` fields (`consent_asked`, `subscribed`, `kecamatan`,
`kelurahan`), which survive idle resets and which the shell refreshes from the contact row
(a Telegram block or WhatsApp's marketing stop changes it outside any conversation).

Screens: `settings` (language, area, subscription), `set:area` (the kecamatan),
`set:kec:<kecamatan>[:<page>]` (its kelurahan, a page at a time so each fits a WhatsApp
list). Targets: `set:kel:<kecamatan>:<code>`, `set:skip:<kecamatan>` (no kelurahan),
`set:clear`, `set:sub:on|off`, `consent:yes|no`, and the global `subscribe`. An area the
content does not list (a forged or outdated link) is refused with a polite line.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from flows.content import Content, Kecamatan, Kelurahan
from flows.screens import Screen, Target, nav_targets
from flows.types import ASKS, Lang, Option, Reply, SetArea, SetConsent, State

if TYPE_CHECKING:  # the engine drives this flow; it imports it, not the other way
    from flows.engine import Turn

PAGE = 7  # kelurahan per page when they do not all fit (7 + more + skip + back = 10)
ONE_PAGE = 8  # ... and when they do (8 + skip + back = 10, a WhatsApp list)
PENDING = "consent_q"  # State.data: the question was put last turn; "ya"/"tidak" answer it
# screens a question in between would interrupt (their own questions, or these settings)
BUSY = ("c:", "p:", "v:", "set:")
BUSY_SCREENS = ("complaint", "survey", "settings", "privacy")
_WORDS = re.compile(r"[\W_]+")


def kel_id(kecamatan: str, code: str) -> str:
    """A kelurahan as stored on the contact: codes repeat across kecamatan ("alak:1001")."""
    return f"{kecamatan}:{code}"


def _find(c: Content, kecamatan: str | None) -> Kecamatan | None:
    return next((k for k in c.kecamatan if k.id == kecamatan), None)


def _pages(k: Kecamatan) -> list[tuple[Kelurahan, ...]]:
    kel = k.kelurahan
    if len(kel) <= ONE_PAGE:
        return [kel]
    return [kel[i:i + PAGE] for i in range(0, len(kel), PAGE)]


def area_label(c: Content, lang: Lang, kecamatan: str | None, kelurahan: str | None) -> str:
    """The area as the citizen reads it; an id content no longer has reads as not set."""
    k = _find(c, kecamatan)
    if k is None:
        return c.msg(lang, "area_none")
    kel = next((x for x in k.kelurahan if kel_id(k.id, x.code) == kelurahan), None)
    if kel is None:
        return c.msg(lang, "area_kecamatan", kecamatan=k.name)
    return c.msg(lang, "area_kelurahan", kelurahan=kel.name, kecamatan=k.name)


# -- screens --------------------------------------------------------------------------------


def render(screen: str, lang: Lang, c: Content, state: State | None = None) -> Screen | None:
    st = state or State(lang=lang)
    if screen == "settings":
        text = c.msg(lang, "settings_intro", language=c.msg(lang, f"lang_name_{st.lang}"),
                     area=area_label(c, lang, st.kecamatan, st.kelurahan),
                     subscription=c.msg(lang, "settings_subscribed" if st.subscribed
                                        else "settings_not_subscribed"))
        sub = (Target("set:sub:off", c.msg(lang, "opt_unsubscribe")) if st.subscribed
               else Target("set:sub:on", c.msg(lang, "opt_subscribe")))
        return Screen(text, (Target("lang", c.msg(lang, "opt_settings_lang")),
                             Target("set:area", c.msg(lang, "opt_settings_area")), sub,
                             Target("menu", c.msg(lang, "opt_menu"))))
    if screen == "set:area":
        targets = tuple(Target(f"set:kec:{k.id}", k.name) for k in c.kecamatan)
        if st.kecamatan:
            targets += (Target("set:clear", c.msg(lang, "opt_clear_area")),)
        return Screen(c.msg(lang, "area_choose_kecamatan"), targets + nav_targets(c, lang)[:1],
                      menu=True)
    if screen.startswith("set:kec:"):
        found = _page(c, screen)
        if found is None:
            return None
        k, n = found
        pages = _pages(k)
        targets = tuple(Target(f"set:kel:{k.id}:{x.code}", x.name) for x in pages[n - 1])
        if n < len(pages):
            targets += (Target(f"set:kec:{k.id}:{n + 1}", c.msg(lang, "opt_next_page")),)
        targets += (Target(f"set:skip:{k.id}", c.msg(lang, "opt_skip")),)
        return Screen(c.msg(lang, "area_choose_kelurahan", kecamatan=k.name),
                      targets + nav_targets(c, lang)[:1], menu=True)
    return None


def _page(c: Content, screen: str) -> tuple[Kecamatan, int] | None:
    """`set:kec:alak` (page 1) or `set:kec:alak:2`, if content has that kecamatan and page."""
    kecamatan, _, page = screen.removeprefix("set:kec:").partition(":")
    k = _find(c, kecamatan)
    if k is None or (page and not page.isdigit()):
        return None
    n = int(page) if page else 1
    return (k, n) if 1 <= n <= len(_pages(k)) else None


def screens(c: Content) -> list[str]:
    out = ["settings", "set:area"]
    for k in c.kecamatan:
        out += [f"set:kec:{k.id}"] + [f"set:kec:{k.id}:{n}"
                                      for n in range(2, len(_pages(k)) + 1)]
    return out


# -- actions --------------------------------------------------------------------------------


def is_action(target: str) -> bool:
    return target in ("subscribe", "consent:yes", "consent:no", "set:clear", "set:sub:on",
                      "set:sub:off") or target.startswith(("set:kec:", "set:kel:", "set:skip:"))


def consent(turn: Turn, yes: bool, *, first: bool = False) -> None:
    """Record the answer (the shell applies it); it also settles the first-contact question."""
    turn.effects.append(SetConsent(yes, first))
    turn.state = turn.state.model_copy(update={"subscribed": yes, "consent_asked": True})


def answer(turn: Turn, target: str) -> None:
    if target == "subscribe" and turn.state.screen == "settings":
        target = "set:sub:on"  # typed on the settings screen: show it changed
    if target in ("consent:yes", "consent:no", "subscribe"):
        yes = target != "consent:no"
        consent(turn, yes, first=target.startswith("consent:"))
        turn.replies.append(Reply(turn.msg("subscribed" if yes else "consent_no")))
    elif target in ("set:sub:on", "set:sub:off"):
        yes = target == "set:sub:on"
        consent(turn, yes)
        turn.say(turn.msg("subscribed" if yes else "stop"))
        turn.visit("settings", push=False)
    elif target.startswith("set:kec:"):
        if _page(turn.c, target) is None:
            _refuse(turn)
        else:
            turn.visit(target)
    elif target == "set:clear":
        _set_area(turn, None, None)
    elif target.startswith("set:skip:"):
        k = _find(turn.c, target.removeprefix("set:skip:"))
        if k is None:
            _refuse(turn)
        else:
            _set_area(turn, k, None)
    else:  # set:kel:<kecamatan>:<code>
        kecamatan, _, code = target.removeprefix("set:kel:").partition(":")
        k = _find(turn.c, kecamatan)
        kel = next((x for x in k.kelurahan if x.code == code), None) if k else None
        if k is None or kel is None:
            _refuse(turn)
        else:
            _set_area(turn, k, kel)


def _refuse(turn: Turn) -> None:
    turn.say(turn.msg("area_unknown"))
    turn.visit("set:area", push=turn.state.screen != "set:area")


def _set_area(turn: Turn, k: Kecamatan | None, kel: Kelurahan | None) -> None:
    kecamatan = k.id if k else None
    kelurahan = kel_id(k.id, kel.code) if k and kel else None
    turn.effects.append(SetArea(kecamatan, kelurahan))
    back = turn.state.back
    if "settings" in back:  # the area screens are done with: "back" leads out of settings
        back = back[:back.index("settings")]
    turn.state = turn.state.model_copy(update={
        "kecamatan": kecamatan, "kelurahan": kelurahan, "back": back, "screen": "settings"})
    if k is None:
        turn.say(turn.msg("area_cleared"))
    else:
        turn.say(turn.msg("area_set", area=area_label(turn.c, turn.lang, kecamatan, kelurahan)))
    turn.visit("settings", push=False)


# -- the first-contact question -------------------------------------------------------------


def ask_if_due(turn: Turn) -> None:
    """Put the consent question once, at the end of a turn that is not in the middle of
    something; an existing conversation that never saw it is asked on its next such turn."""
    st = turn.state
    if st.consent_asked or any(isinstance(e, ASKS) for e in turn.effects):
        return
    if st.screen in BUSY_SCREENS or st.screen.startswith(BUSY):
        return
    turn.state = st.model_copy(update={"consent_asked": True,
                                       "data": {**st.data, PENDING: True}})
    turn.replies.append(Reply(turn.msg("consent_ask"), (
        Option("go:consent:yes", turn.msg("opt_consent_yes")),
        Option("go:consent:no", turn.msg("opt_consent_no")))))


def take_pending(turn: Turn) -> bool:
    """Whether the question was put last turn (and forget it: only the next message may
    answer it by typing)."""
    data = turn.state.data
    if PENDING not in data:
        return False
    turn.state = turn.state.model_copy(
        update={"data": {k: v for k, v in data.items() if k != PENDING}})
    return True


def typed_answer(turn: Turn, normalized: str, text: str) -> bool:
    """"ya" / "tidak" typed right after the question, instead of a button. The words are
    matched normalised (slang: "gak" -> "tidak") and as typed ("usah" is no misspelling)."""
    answers = turn.c.language.answers
    said = {normalized, " ".join(_WORDS.sub(" ", text.casefold()).split())}
    if said & set(answers.get("yes", ())):
        answer(turn, "consent:yes")
    elif said & set(answers.get("no", ())):
        answer(turn, "consent:no")
    else:
        return False
    return True
