"""Checking an application's status: registration number -> verification -> the status,
with an offer to be told of every change; the list of followed applications; stopping
notifications of one application.

Whether a number exists is known only to the shell, and it answers only when the
verification matches: an unknown number and a wrong answer read the same and count the
same towards the lock-out (`ApplicationChecked`). The numbers this conversation verified
are kept in its state (server-side), and only those can be followed, so a forged
`go:p:sub:...` link follows nothing.

Screens: `p:number` (asks for the registration number) and `p:verify` (asks for the birth
date or the NIK's last 4 digits). Targets: `p:new` (check a number), `p:list` (the followed
applications), `p:sub:<number>`, `p:stop:<number>` (the latter also as a `go:` link under
every pushed notification).
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from flows.content import BUTTON_LABEL_MAX, Content
from flows.screens import Screen, Target, main_targets, nav_targets
from flows.types import (
    ApplicationChecked,
    ApplicationFollowed,
    ApplicationsListed,
    CheckApplication,
    FollowApplication,
    Lang,
    ListApplications,
    TopicAsked,
)

if TYPE_CHECKING:  # the engine drives this flow; it imports it, not the other way
    from flows.engine import Turn

REG_NO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/._-]{2,39}$")  # as the office issues it
# a number inside a sentence ("cek status KK-2026-0001"): letters/digits with at least one
# digit and 5+ characters, so ordinary words and "2 minggu" are never taken for one
_IN_TEXT = re.compile(r"(?<![\w/.-])(?=[\w/.-]*\d)[A-Za-z0-9][A-Za-z0-9/._-]{4,39}(?![\w/.-])")
_MASKED_NIK = re.compile(r"\d{4}\*{8}(\d{4})")  # what the shell leaves of a typed NIK
MAX_VERIFIED = 10  # numbers one conversation remembers as verified
MAX_STOP_BUTTONS = 3
DATA = "status"  # this flow's key in State.data
Kind = Literal["birth_date", "nik_last4"]


def normalise_answer(kind: str, answer: str) -> str | None:
    """A verification answer in the stored form, or None if it cannot be one. Shared with
    the shell, which stores staff-set answers the same way."""
    text = answer.strip()
    if kind == "nik_last4":
        digits = re.sub(r"\D", "", text)
        return digits if len(digits) == 4 else None
    for pattern in (r"(\d{4})-(\d{1,2})-(\d{1,2})", r"(\d{1,2})[-/. ](\d{1,2})[-/. ](\d{4})",
                    r"(\d{2})(\d{2})(\d{4})"):
        m = re.fullmatch(pattern, text)
        if m:
            a, b, c = (int(g) for g in m.groups())
            year, month, day = (a, b, c) if len(m.group(1)) == 4 else (c, b, a)
            try:
                return date(year, month, day).isoformat()
            except ValueError:
                return None
    return None


def read_answer(text: str) -> tuple[Kind, str] | None:
    """What a citizen typed at the verification question: a birth date or 4 NIK digits (a
    whole NIK, which the shell masked to `5371********0001`, gives its last 4)."""
    text = text.strip()
    masked = _MASKED_NIK.search(text)
    if masked:
        return "nik_last4", masked.group(1)
    if re.fullmatch(r"\d{4}|\d{16}", text):  # 4 digits, or a whole NIK the shell did not see
        return "nik_last4", text[-4:]
    born = normalise_answer("birth_date", text)
    return ("birth_date", born) if born else None


def find_number(text: str) -> str | None:
    """A registration number in a sentence, upper-cased, or None."""
    for m in _IN_TEXT.finditer(text):
        candidate = m.group().upper()
        if REG_NO.match(candidate) and (not candidate.isdigit() or len(candidate) >= 8):
            return candidate
    return None


def _done(turn: Turn) -> None:
    """A result was shown: what the citizen types next is a new question, not an answer."""
    if turn.state.screen.startswith("p:"):
        turn.state = turn.state.model_copy(update={"screen": "menu"})


def _data(turn: Turn) -> dict[str, Any]:
    data = turn.state.data.get(DATA)
    return dict(data) if isinstance(data, dict) else {}


def _keep(turn: Turn, data: dict[str, Any]) -> None:
    turn.state = turn.state.model_copy(update={"data": {**turn.state.data, DATA: data}})


def _verified(turn: Turn) -> list[str]:
    found = _data(turn).get("verified")
    return [n for n in found if isinstance(n, str)] if isinstance(found, list) else []


def _label(turn: Turn, key: str, number: str) -> str:
    """A button naming a number; long office numbers keep their (distinctive) end."""
    label = turn.msg(key, number=number)
    if len(label) <= BUTTON_LABEL_MAX:
        return label
    head = turn.msg(key, number="")
    room = BUTTON_LABEL_MAX - len(head) - 1
    return f"{head}…{number[-room:]}" if room > 3 else label[:BUTTON_LABEL_MAX]


# -- screens --------------------------------------------------------------------------------


def render(screen: str, lang: Lang, c: Content) -> Screen | None:
    if c.applications is None:
        return None
    if screen == "p:number":
        return Screen(c.msg(lang, "application_ask_number"), nav_targets(c, lang))
    if screen == "p:verify":
        return Screen(c.msg(lang, "application_ask_verify"), nav_targets(c, lang))
    return None


def screens(c: Content) -> list[str]:
    return ["p:number", "p:verify"] if c.applications is not None else []


# -- entry points ---------------------------------------------------------------------------


def start(turn: Turn, text: str | None = None) -> None:
    """"cek status" from the menu, a command or free text. A number in the sentence goes
    straight to verification; otherwise the followed applications are listed first."""
    turn.effects.append(TopicAsked("status"))
    number = find_number(text) if text else None
    if number is not None:
        _ask_verify(turn, number)
        return
    turn.effects.append(ListApplications())


def is_action(target: str) -> bool:
    return target in ("p:new", "p:list") or target.startswith(("p:sub:", "p:stop:"))


def answer(turn: Turn, target: str) -> None:
    if target == "p:new":
        turn.visit("p:number")
    elif target == "p:list":
        turn.effects.append(ListApplications())
    elif target.startswith("p:sub:"):
        number = target.removeprefix("p:sub:")
        if number in _verified(turn):
            turn.effects.append(FollowApplication(number, True))
        elif REG_NO.match(number):  # a link into a number not verified here: verify first
            _ask_verify(turn, number)
        else:
            turn.visit("p:number")
    else:
        number = target.removeprefix("p:stop:")
        if REG_NO.match(number):
            turn.effects.append(FollowApplication(number, False))
        else:
            turn.go("menu")


def on_text(turn: Turn, text: str) -> None:
    """Text on `p:number` or `p:verify`."""
    if turn.state.screen == "p:number":
        number = text.strip().upper()
        if REG_NO.match(number):
            _ask_verify(turn, number)
        else:
            turn.repeat(turn.msg("application_bad_number"))
        return
    asked = _data(turn).get("number")
    answered = read_answer(text)
    if not isinstance(asked, str):
        turn.visit("p:number")
    elif answered is None:
        turn.repeat(turn.msg("application_bad_verify"))
    else:
        turn.effects.append(CheckApplication(asked, answered[0], answered[1]))


def _ask_verify(turn: Turn, number: str) -> None:
    _keep(turn, {**_data(turn), "number": number})
    turn.visit("p:verify")


# -- the shell's answers --------------------------------------------------------------------


def checked(turn: Turn, event: ApplicationChecked) -> None:
    data = _data(turn)
    data.pop("number", None)
    if event.outcome == "found":
        verified = [n for n in _verified(turn) if n != event.reg_no] + [event.reg_no]
        _keep(turn, {**data, "verified": verified[-MAX_VERIFIED:]})
        _show_status(turn, event)
        _done(turn)
        return
    _keep(turn, data)
    if event.outcome == "no_match":
        turn.say(turn.msg("application_no_match", left=str(event.attempts_left)))
        turn.visit("p:number", push=False)
        return
    if event.outcome == "locked":
        turn.show(Screen(turn.msg("application_locked", minutes=str(event.minutes)),
                         main_targets(turn.c, turn.lang)))
    else:
        turn.show(Screen(turn.msg("application_too_many"), main_targets(turn.c, turn.lang)))
    _done(turn)


def _show_status(turn: Turn, event: ApplicationChecked) -> None:
    number = event.reg_no
    targets: list[Target] = []
    if event.following:
        text = f"{event.text}\n\n{turn.msg('application_following')}"
        targets.append(Target(f"p:stop:{number}", _label(turn, "opt_stop_notify", number)))
    else:
        text = f"{event.text}\n\n{turn.msg('application_offer')}"
        targets.append(Target(f"p:sub:{number}", turn.msg("opt_notify_me")))
    if event.done and turn.c.survey is not None:
        targets.append(Target("survey", turn.msg("opt_survey")))
    targets += [Target("p:new", turn.msg("opt_check_other")),
                Target("menu", turn.msg("opt_menu"))]
    turn.show(Screen(text, tuple(targets)))


def listed(turn: Turn, event: ApplicationsListed) -> None:
    if not event.applications:
        turn.visit("p:number")
        return
    lines = "\n".join(turn.msg("application_line", number=n, status=s)
                      for n, s in event.applications)
    stops = tuple(Target(f"p:stop:{n}", _label(turn, "opt_stop_notify", n))
                  for n, _ in event.applications[:MAX_STOP_BUTTONS])
    turn.show(Screen(turn.msg("applications_list", applications=lines),
                     (Target("p:new", turn.msg("opt_check_other")),) + stops
                     + (Target("menu", turn.msg("opt_menu")),)))
    _done(turn)


def followed(turn: Turn, event: ApplicationFollowed) -> None:
    if event.follow:
        key = "application_subscribed"
    else:
        key = "application_stopped" if event.ok else "application_not_followed"
    turn.show(Screen(turn.msg(key, number=event.reg_no),
                     (Target("p:list", turn.msg("opt_my_applications")),
                      Target("menu", turn.msg("opt_menu")))))
    _done(turn)
