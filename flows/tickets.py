"""Following a ticket: the citizen's list, one ticket by its number, more information for an
open ticket, and the 1-5 rating of a closed one.

Whose ticket is whose is known only to the shell. The engine asks (`LookupTickets`,
`AddToTicket`, `RateTicket`) and the shell answers only about tickets this chat follows, so
the engine cannot leak anything: a number that exists but belongs to someone else reads
exactly like a made-up one.

Targets: `c:add:<number>` (also the id of the screen asking for the information),
`c:list` (the list again) and `rate:<number>:<score>`, which arrives as a `go:` link from
the notification staff send when a ticket closes (old links stay valid, like any `go:`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from flows.content import Content
from flows.screens import Screen, Target, main_targets, nav_targets
from flows.types import (
    AddToTicket,
    Lang,
    LookupTickets,
    RateTicket,
    TicketInfoAdded,
    TicketRated,
    TicketsFound,
)

if TYPE_CHECKING:  # the engine drives this flow; it imports it, not the other way
    from flows.engine import Turn

NUMBER = re.compile(r"^[A-Z]{3}-\d{4}-[A-Z0-9]{6}$")  # ADU-2026-7K3QF9, canonical form
MAX_OPEN_BUTTONS = 3  # "add information" buttons under the list, newest open tickets first
MAX_INFO = 2000  # characters of added information, like a complaint's story
MAX_ANSWER = 1500  # of a staff answer quoted back, so the reply fits every platform
MAX_PHOTOS = 5
SAMPLE = "ADU-2026-7K3QF9"  # for the content check, which renders every screen


def is_number(value: str) -> bool:
    return NUMBER.fullmatch(value) is not None


@lru_cache(maxsize=8)
def _finder(prefixes: tuple[str, ...]) -> re.Pattern[str]:
    # phones turn "-" into dashes; citizens type spaces or nothing; case does not matter
    sep = "[-\u2010-\u2015 ]?"
    return re.compile(
        rf"(?<![A-Za-z0-9])({'|'.join(map(re.escape, prefixes))}){sep}(\d{{4}}){sep}"
        r"([A-Za-z0-9]{6})(?![A-Za-z0-9])", re.IGNORECASE)


def find_number(text: str, c: Content) -> str | None:
    """A ticket number somewhere in a message ("cek adu-2026-7k3qf9"), written canonically.

    Only the prefixes of content's kinds count, so "dan 2024 sampai" is never a number.
    """
    if c.complaints is None:
        return None
    found = _finder(tuple(k.prefix for k in c.complaints.kind)).search(text)
    if found is None:
        return None
    return "-".join(part.upper() for part in found.groups())


def render(screen: str, lang: Lang, c: Content) -> Screen | None:
    number = screen.removeprefix("c:add:")
    if c.complaints is None or not screen.startswith("c:add:") or not is_number(number):
        return None
    return Screen(c.msg(lang, "ticket_add_ask", number=number), nav_targets(c, lang))


def screens(c: Content) -> list[str]:
    return [f"c:add:{SAMPLE}"] if c.complaints is not None else []


def _open(c: Content) -> frozenset[str]:
    assert c.complaints is not None
    return frozenset(s.id for s in c.complaints.state if s.type == "open")


def _add_target(turn: Turn, number: str) -> Target:
    return Target(f"c:add:{number}", turn.msg("opt_add_info", number=number))


def _list_target(turn: Turn) -> Target:
    return Target("c:list", turn.msg("opt_my_tickets"))


def _menu_target(turn: Turn) -> Target:
    return Target("menu", turn.msg("opt_menu"))


# -- the list and one ticket ---------------------------------------------------------------


def list_tickets(turn: Turn, event: TicketsFound) -> None:
    """The shell's answer to `LookupTickets`: every followed ticket, or the one asked for."""
    cc = turn.c.complaints
    if cc is None:
        turn.show(Screen(turn.msg("tickets_none"), main_targets(turn.c, turn.lang)))
        return
    if event.number is not None:
        _one(turn, event)
        return
    if not event.tickets:
        turn.show(Screen(turn.msg("tickets_none"), main_targets(turn.c, turn.lang)))
        return
    lines = "\n".join(_line(turn, ticket) for ticket in event.tickets)
    text = turn.msg("tickets_list", tickets=lines)
    still_open = _open(turn.c)
    adds = tuple(_add_target(turn, number) for number, _, state, _ in event.tickets
                 if state in still_open)[:MAX_OPEN_BUTTONS]
    if not adds:
        turn.show(Screen(text, main_targets(turn.c, turn.lang)))
        return
    text += "\n\n" + turn.msg("tickets_add_hint")
    turn.show(Screen(text, adds + (_menu_target(turn),)))


def _line(turn: Turn, ticket: tuple[str, str, str, str]) -> str:
    cc = turn.c.complaints
    assert cc is not None
    number, kind, state, sent = ticket
    kinds = {k.id: k.label.get(turn.lang) for k in cc.kind}
    states = {s.id: s.label.get(turn.lang) for s in cc.state}
    return turn.msg("ticket_line", number=number, kind=kinds.get(kind, kind),
                    state=states.get(state, state), date=sent)


def _one(turn: Turn, event: TicketsFound) -> None:
    """One ticket the citizen typed the number of; anything else gets the same one line."""
    if not event.tickets:
        turn.show(Screen(turn.msg("ticket_not_found"),
                         (_list_target(turn), _menu_target(turn))))
        return
    ticket = event.tickets[0]
    text = _line(turn, ticket)
    if event.answer:
        answer = event.answer.strip()
        if len(answer) > MAX_ANSWER:
            answer = answer[:MAX_ANSWER] + "…"
        text += "\n\n" + turn.msg("ticket_answer", number=ticket[0], text=answer)
    targets: tuple[Target, ...] = (_list_target(turn), _menu_target(turn))
    if ticket[2] in _open(turn.c):
        text += "\n\n" + turn.msg("tickets_add_hint")
        targets = (_add_target(turn, ticket[0]),) + targets
    turn.show(Screen(text, targets))


def lookup(turn: Turn, number: str) -> None:
    """A number typed in a message: ask the shell about it among this chat's tickets."""
    turn.effects.append(LookupTickets(number))


# -- adding information --------------------------------------------------------------------


def answer(turn: Turn, kind: str, value: str) -> None:
    """`c:add:<number>` opens the screen asking for the information; `c:list` the list."""
    if kind == "list" or turn.c.complaints is None:
        turn.effects.append(LookupTickets())
        return
    if is_number(value):  # photos sent on this screen belong to this number only
        _keep(turn, {"number": value, "photos": []})
    turn.visit(f"c:add:{value}")  # a mangled number is an unknown screen: back to the menu


def _data(turn: Turn, number: str) -> dict[str, Any]:
    data = turn.state.data.get("ticket_add")
    if not isinstance(data, dict) or data.get("number") != number:
        return {"number": number, "photos": []}
    return dict(data)


def _keep(turn: Turn, data: dict[str, Any] | None) -> None:
    rest = {k: v for k, v in turn.state.data.items() if k != "ticket_add"}
    if data is not None:
        rest["ticket_add"] = data
    turn.state = turn.state.model_copy(update={"data": rest})


def on_text(turn: Turn, text: str) -> None:
    """The information typed on the `c:add:<number>` screen; the shell checks the rest."""
    number = turn.state.screen.removeprefix("c:add:")
    info = text.strip()[:MAX_INFO]
    if not info:
        turn.repeat(turn.msg("ticket_add_empty"))
        return
    photos = tuple(_data(turn, number)["photos"])
    _keep(turn, None)
    turn.effects.append(AddToTicket(number, info, photos))
    # no longer on the screen that takes text: a second message is not added twice
    turn.state = turn.state.model_copy(update={"screen": "c:adding", "options": ()})


def on_photo(turn: Turn, ref: str) -> None:
    number = turn.state.screen.removeprefix("c:add:")
    data = _data(turn, number)
    data["photos"] = [*data["photos"], ref][:MAX_PHOTOS]
    _keep(turn, data)
    turn.repeat(turn.msg("ticket_add_photo_kept"))


def info_added(turn: Turn, event: TicketInfoAdded) -> None:
    if event.ok:
        turn.say(turn.msg("ticket_info_added", number=event.number))
    elif event.closed:  # only ever said about the citizen's own ticket
        turn.say(turn.msg("ticket_info_closed", number=event.number))
    else:
        turn.say(turn.msg("ticket_info_refused"))
    turn.go("menu")


# -- rating a closed ticket ----------------------------------------------------------------


def rate(turn: Turn, target: str) -> None:
    """`rate:<number>:<score>` from the closing notification's buttons."""
    _, _, rest = target.partition(":")
    number, _, score = rest.rpartition(":")
    number = number.upper()
    if turn.c.complaints is None:
        turn.go("menu")
    elif is_number(number) and score in ("1", "2", "3", "4", "5"):
        turn.effects.append(RateTicket(number, int(score)))
    else:  # a forged or mangled link: the same refusal as the shell's
        turn.say(turn.msg("ticket_rate_refused"))
        turn.go("menu")


def rated(turn: Turn, event: TicketRated) -> None:
    """Thank the citizen and offer the SKM survey, which measures the whole service."""
    if not event.ok:
        turn.say(turn.msg("ticket_rate_refused"))
        turn.go("menu")
        return
    # whatever the citizen was doing, the next message starts from the menu
    turn.state = turn.state.model_copy(update={"screen": "menu", "back": ()})
    turn.show(Screen(turn.msg("ticket_rated", number=event.number),
                     (Target("survey", turn.msg("opt_survey")), _menu_target(turn))))
