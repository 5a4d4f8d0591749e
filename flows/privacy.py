""""Hapus data saya": the citizen's right to erasure (UU 27/2022 Ps 8), asked and confirmed.

`/hapus` or "hapus data saya" (the global `delete`) shows what will be deleted and what is
kept, with two buttons: `privacy:yes` ("Ya, hapus") and `privacy:no` ("Batal"); a typed
"ya"/"tidak" right there answers too. Only on yes does the engine emit `DeleteMyData`,
which the shell applies in the same transaction (bot/services/privacy.py). The conversation
then starts over: the shell drops the stored state, and the state returned here keeps only
the language and the button numbering, with consent recorded as withdrawn.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from flows.content import Content
from flows.screens import Screen, Target
from flows.types import DeleteMyData, Lang, Reply, State

if TYPE_CHECKING:  # the engine drives this flow; it imports it, not the other way
    from flows.engine import Turn

SCREEN = "privacy"
YES, NO = "privacy:yes", "privacy:no"
_WORDS = re.compile(r"[\W_]+")


def render(screen: str, lang: Lang, c: Content) -> Screen | None:
    if screen != SCREEN:
        return None
    return Screen(c.msg(lang, "privacy_confirm"), (
        Target(YES, c.msg(lang, "opt_privacy_yes")), Target(NO, c.msg(lang, "opt_privacy_no"))))


def screens(c: Content) -> list[str]:
    return [SCREEN]


def is_action(target: str) -> bool:
    return target in (YES, NO)


def start(turn: Turn) -> None:
    """Ask first: deleting cannot be undone."""
    turn.visit(SCREEN)


def answer(turn: Turn, target: str) -> None:
    if target == NO:
        turn.say(turn.msg("privacy_cancelled"))
        turn.go("menu")
        return
    turn.effects.append(DeleteMyData())
    st = turn.state
    # nothing of the old conversation survives; the question about information from the
    # office is settled (withdrawn), so it is not put again at the end of this turn
    turn.state = State(lang=st.lang, seq=st.seq, consent_asked=True, subscribed=False)
    turn.replies.append(Reply(turn.msg("privacy_done")))


def typed_answer(turn: Turn, normalized: str, text: str) -> bool:
    """"ya" / "tidak" typed on the confirmation instead of pressing a button."""
    answers = turn.c.language.answers
    said = {normalized, " ".join(_WORDS.sub(" ", text.casefold()).split())}
    if said & set(answers.get("yes", ())):
        answer(turn, YES)
    elif said & set(answers.get("no", ())):
        answer(turn, NO)
    else:
        return False
    return True
