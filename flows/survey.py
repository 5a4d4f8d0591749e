"""The satisfaction survey (SKM, PermenPANRB 14/2017): screens and the order of questions.

Screens: `survey` (which office), `v:q:<1-9>` (one unsur each), `v:profile` (offer the
optional respondent profile), `v:pf:<i>` (one profile question), `v:suggest` (free text).
Answers are button targets the engine applies to the conversation's data:
`v:o:<office>`, `v:a:<n>:<score>`, `v:p:yes|skip`, `v:f:<i>:<k>`, `v:s:skip`.
"""

from __future__ import annotations

from flows.content import Content
from flows.screens import Screen, Target, nav_targets
from flows.types import Lang

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
