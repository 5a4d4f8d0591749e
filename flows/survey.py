"""The satisfaction survey (SKM, PermenPANRB 14/2017): screens and the order of questions.

Screens: `survey` (which office), `v:q:<1-9>` (one unsur each), `v:profile` (offer the
optional respondent profile), `v:pf:<i>` (one profile question), `v:suggest` (free text).
Answers are button targets the engine applies to the conversation's data:
`v:o:<office>`, `v:a:<n>:<score>`, `v:p:yes|skip`, `v:f:<i>:<k>`, `v:s:skip`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flows.content import Content
from flows.screens import Screen, Target, nav_targets
from flows.types import Lang, SubmitSurvey

if TYPE_CHECKING:  # the engine drives these flows; it imports them, not the other way
    from flows.engine import Turn

ACTIONS = ("o", "a", "p", "f", "s")


def is_action(target: str) -> bool:
    parts = target.split(":")
    return len(parts) >= 3 and parts[0] == "v" and parts[1] in ACTIONS


def render(screen: str, lang: Lang, c: Content) -> Screen | None:
    """A survey screen, or None when `screen` is not one (or the survey isn't in content)."""
    survey = c.survey
    if survey is None:
        return None
    back = nav_targets(c, lang)[:1]
    if screen == "survey":
        offices = tuple(Target(f"v:o:{o.id}", o.label.get(lang)) for o in c.offices)
        return Screen(c.msg(lang, "survey_intro"), offices[:9] + back)
    ref = screen.rsplit(":", 1)[-1]
    if screen.startswith("v:q:") and ref.isdigit() and 1 <= int(ref) <= len(survey.unsur):
        n = int(ref)
        unsur = survey.unsur[n - 1]
        text = c.msg(lang, "survey_question", n=str(n), name=unsur.name.get(lang),
                     question=unsur.question.get(lang))
        answers = tuple(Target(f"v:a:{n}:{score}", a.get(lang))
                        for score, a in enumerate(unsur.answers, 1))
        return Screen(text, answers + back)
    if screen == "v:profile":
        return Screen(c.msg(lang, "survey_profile_ask"),
                      (Target("v:p:yes", c.msg(lang, "opt_yes")),
                       Target("v:p:skip", c.msg(lang, "opt_skip"))))
    if screen.startswith("v:pf:") and ref.isdigit() and int(ref) < len(survey.profile):
        i = int(ref)
        field = survey.profile[i]
        options = tuple(Target(f"v:f:{i}:{k}", o.get(lang)) for k, o in enumerate(field.options))
        return Screen(field.question.get(lang),
                      options + (Target("v:s:skip", c.msg(lang, "opt_skip")),))
    if screen == "v:suggest":
        return Screen(c.msg(lang, "survey_suggestion"),
                      (Target("v:s:skip", c.msg(lang, "opt_skip")),))
    return None


def screens(c: Content) -> list[str]:
    if c.survey is None:
        return []
    ids = ["survey", "v:profile", "v:suggest"]
    ids += [f"v:q:{n}" for n in range(1, len(c.survey.unsur) + 1)]
    ids += [f"v:pf:{i}" for i in range(len(c.survey.profile))]
    return ids


# -- answering: the engine calls these with its turn ------------------------------------


def answer(turn: Turn, target: str) -> None:
    """Record one survey answer in the conversation's data and show the next question."""
    c = turn.c
    if c.survey is None:
        turn.go("menu")
        return
    data = dict(turn.state.data.get("survey", {}))
    _, kind, *rest = target.split(":")
    nxt = "v:suggest"
    if kind == "o":
        data["office"], nxt = rest[0], "v:q:1"
    elif kind == "a" and len(rest) == 2 and rest[0].isdigit() and rest[1] in "1234":
        n = int(rest[0])
        data["answers"] = {**data.get("answers", {}), f"U{n}": int(rest[1])}
        nxt = f"v:q:{n + 1}" if n < len(c.survey.unsur) else (
            "v:profile" if c.survey.profile else "v:suggest")
    elif kind == "p" and rest == ["yes"] and c.survey.profile:
        nxt = "v:pf:0"
    elif kind == "f" and len(rest) == 2 and rest[0].isdigit() and rest[1].isdigit():
        i, k = int(rest[0]), int(rest[1])
        if i < len(c.survey.profile) and k < len(c.survey.profile[i].options):
            field = c.survey.profile[i]
            data["profile"] = {**data.get("profile", {}),
                               field.id: field.options[k].id}
            if i + 1 < len(c.survey.profile):
                nxt = f"v:pf:{i + 1}"
    elif kind == "s":
        turn.state = turn.state.model_copy(update={"data": {**turn.state.data,
                                                            "survey": data}})
        finish(turn, None)
        return
    turn.state = turn.state.model_copy(update={"data": {**turn.state.data, "survey": data}})
    turn.visit(nxt)

def finish(turn: Turn, suggestion: str | None) -> None:
    data = turn.state.data.get("survey", {})
    answers = data.get("answers", {})
    missing = [u.id for u in (turn.c.survey.unsur if turn.c.survey else ())
               if u.id not in answers]
    if missing:  # reached the end by "back" and skipping: ask what is missing
        turn.visit(f"v:q:{int(missing[0][1:])}")
        return
    turn.effects.append(SubmitSurvey(
        office=data.get("office"),
        answers=tuple(sorted((k, int(v)) for k, v in answers.items())),
        profile=tuple(sorted(data.get("profile", {}).items())),
        suggestion=suggestion))
    rest = {k: v for k, v in turn.state.data.items() if k != "survey"}
    turn.state = turn.state.model_copy(update={"data": rest, "back": ()})
    turn.say(turn.msg("survey_thanks"))
    turn.go("menu")
