"""Complaints, suggestions and appreciation: the citizen's side, one short step at a time.

Screens: `complaint` (kind), `c:service`, `c:group:<id>`, `c:office`, `c:text`, `c:when`,
`c:identity`, `c:summary` (from the conversation's data). Answers are targets the engine
applies: `c:k:<kind>`, `c:g:<group>`, `c:s:<service|umum>`, `c:o:<office>`, `c:w:<when>`,
`c:i:<identity>`, `c:send`, `c:edit`; `c:add:<number>` and `c:list` belong to following a
ticket afterwards (flows/tickets.py). Tagging (category, quality dimension, urgency) is done
here from content keywords, so it is the same on every channel and staff can correct it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flows import tickets
from flows.content import Category, Content
from flows.screens import Screen, Target, nav_targets
from flows.types import ComplaintFiled, FileComplaint, Lang

if TYPE_CHECKING:  # the engine drives these flows; it imports them, not the other way
    from flows.engine import Turn

ACTIONS = ("k", "g", "s", "o", "w", "i", "send", "edit", "add", "list")
WHEN = ("today", "week", "earlier")
IDENTITY = ("named", "confidential", "anonymous")
GENERAL = "umum"
MAX_TEXT = 2000


def is_action(target: str) -> bool:
    parts = target.split(":")
    return len(parts) >= 2 and parts[0] == "c" and parts[1] in ACTIONS


def tag(text: str, c: Content) -> Category | None:
    """The category with the longest keyword found in the text ("ruang tunggu" is about
    facilities even though "tunggu" alone is about waiting); ties go to content order; no
    keyword at all gives the category without keywords (lainnya)."""
    if c.complaints is None:
        return None
    low = " ".join(text.lower().split())
    best: tuple[int, Category] | None = None
    for cat in c.complaints.category:
        for keyword in cat.keywords:
            if keyword and keyword in low and (best is None or len(keyword) > best[0]):
                best = (len(keyword), cat)
    if best is not None:
        return best[1]
    return next((cat for cat in c.complaints.category if not cat.keywords), None)


def render(screen: str, lang: Lang, c: Content, data: dict[str, Any]) -> Screen | None:
    cc = c.complaints
    if cc is None:
        return None
    back = nav_targets(c, lang)[:1]
    if screen == "complaint":
        return Screen(c.msg(lang, "complaint_kind"),
                      tuple(Target(f"c:k:{k.id}", k.label.get(lang)) for k in cc.kind) + back)
    if screen == "c:service":
        groups = tuple(Target(f"c:g:{g.id}", g.label.get(lang)) for g in c.groups.values())
        return Screen(c.msg(lang, "complaint_service"),
                      groups + (Target(f"c:s:{GENERAL}", c.msg(lang, "complaint_general")),)
                      + back)
    if screen.startswith("c:group:") and screen[8:] in c.groups:
        group = c.groups[screen[8:]]
        return Screen(c.msg(lang, "complaint_service"), tuple(
            Target(f"c:s:{s}", c.services[s].label.get(lang)) for s in group.services) + back)
    if screen == "c:office":
        return Screen(c.msg(lang, "complaint_office"), tuple(
            Target(f"c:o:{o.id}", o.label.get(lang)) for o in c.offices)[:9] + back)
    if screen == "c:text":
        return Screen(c.msg(lang, "complaint_text"), back)
    if screen == "c:when":
        return Screen(c.msg(lang, "complaint_when"), tuple(
            Target(f"c:w:{w}", c.msg(lang, f"when_{w}")) for w in WHEN) + back)
    if screen == "c:identity":
        return Screen(c.msg(lang, "complaint_identity"), tuple(
            Target(f"c:i:{i}", c.msg(lang, f"identity_{i}")) for i in IDENTITY) + back)
    if screen == "c:summary":
        return _summary(lang, c, data.get("complaint", {}))
    if screen.startswith("c:add:"):
        return tickets.render(screen, lang, c)
    return None


def _summary(lang: Lang, c: Content, d: dict[str, Any]) -> Screen:
    cc = c.complaints
    assert cc is not None
    kinds = {k.id: k.label.get(lang) for k in cc.kind}
    service = d.get("service", GENERAL)
    offices = {o.id: o.label.get(lang) for o in c.offices}
    story = str(d.get("text", ""))
    if len(story) > 300:
        story = story[:300] + "…"
    text = c.msg(
        lang, "complaint_summary", kind=kinds.get(d.get("kind", ""), "-"),
        service=(c.services[service].label.get(lang) if service in c.services
                 else c.msg(lang, "complaint_general")),
        office=offices.get(d.get("office", ""), "-"),
        when=c.msg(lang, f"when_{d['when']}") if d.get("when") in WHEN else "-",
        identity=(c.msg(lang, f"identity_{d['identity']}") if d.get("identity") in IDENTITY
                  else "-"),
        text=story)
    return Screen(text, (Target("c:send", c.msg(lang, "opt_send")),
                         Target("c:edit", c.msg(lang, "opt_edit_text")),
                         Target("cancel", c.msg(lang, "opt_menu"))))


def screens(c: Content) -> list[str]:
    if c.complaints is None:
        return []
    return ["complaint", "c:service", "c:office", "c:text", "c:when", "c:identity",
            "c:summary"] + [f"c:group:{g}" for g in c.groups] + tickets.screens(c)


# -- answering: the engine calls these with its turn ------------------------------------


def start(turn: Turn, kind: str | None) -> None:
    if turn.c.complaints is None:
        turn.visit("t:pengaduan")
        return
    data = {"kind": kind} if kind else {}
    turn.state = turn.state.model_copy(update={"data": {**turn.state.data,
                                                        "complaint": data}})
    turn.visit("c:service" if kind else "complaint")

def _data(turn: Turn) -> dict[str, Any]:
    return dict(turn.state.data.get("complaint", {}))

def _keep(turn: Turn, data: dict[str, Any]) -> None:
    turn.state = turn.state.model_copy(update={"data": {**turn.state.data,
                                                        "complaint": data}})

def answer(turn: Turn, target: str) -> None:
    _, kind, *rest = target.split(":")
    value = rest[0] if rest else ""
    if kind in ("add", "list"):  # about a ticket already filed
        tickets.answer(turn, kind, value)
        return
    data = _data(turn)
    if kind == "k":
        data["kind"], nxt = value, "c:service"
    elif kind == "g" and value in turn.c.groups:
        services = turn.c.groups[value].services
        if len(services) == 1:
            data["service"], nxt = services[0], "c:office"
        else:
            nxt = f"c:group:{value}"
    elif kind == "s":
        data["service"], nxt = value, "c:office"
    elif kind == "o":
        data["office"], nxt = value, "c:text"
    elif kind == "w" and value in WHEN:
        data["when"], nxt = value, "c:identity"
    elif kind == "i" and value in IDENTITY:
        data["identity"], nxt = value, "c:summary"
    elif kind == "edit":
        nxt = "c:text"
    elif kind == "send":
        file(turn, data)
        return
    else:
        nxt = turn.state.screen or "complaint"
    _keep(turn, data)
    turn.visit(nxt)

def on_text(turn: Turn, text: str) -> None:
    data = _data(turn)
    if not text.strip():
        turn.repeat(turn.msg("complaint_empty_text"))
        return
    data["text"] = text.strip()[:MAX_TEXT]
    _keep(turn, data)
    category = tag(data["text"], turn.c)
    if category is not None and category.urgent:  # asked to pay: say it is free at once
        turn.say(turn.msg("free_note"))
    turn.visit("c:summary" if "identity" in data else "c:when")

def on_photo(turn: Turn, ref: str) -> None:
    data = _data(turn)
    data["photos"] = [*data.get("photos", []), ref][:5]
    _keep(turn, data)
    turn.repeat(turn.msg("complaint_photo_kept"))

def file(turn: Turn, data: dict[str, Any]) -> None:
    need = ("kind", "service", "office", "text", "when", "identity")
    missing = [k for k in need if k not in data]
    if missing:  # e.g. an old summary button: ask for what is missing
        steps = {"kind": "complaint", "service": "c:service", "office": "c:office",
                 "text": "c:text", "when": "c:when", "identity": "c:identity"}
        turn.visit(steps[missing[0]])
        return
    category = tag(data["text"], turn.c)
    turn.effects.append(FileComplaint(
        kind=data["kind"], service=data["service"], office=data["office"],
        text=data["text"], when=data["when"], identity=data["identity"],
        category=category.id if category else "lainnya",
        dimension=category.dimension if category else "responsiveness",
        urgent=bool(category and category.urgent),
        photos=tuple(data.get("photos", ()))))
    turn.state = turn.state.model_copy(update={"screen": "c:filing", "options": ()})

def filed(turn: Turn, event: ComplaintFiled) -> None:
    rest = {k: v for k, v in turn.state.data.items() if k != "complaint"}
    turn.state = turn.state.model_copy(update={"data": rest, "back": ()})
    if event.refused == "too_many":
        turn.say(turn.msg("complaint_too_many", limit=str(event.limit)))
    elif event.refused == "duplicate":
        turn.say(turn.msg("complaint_duplicate", number=event.number or "-"))
    else:
        turn.say(turn.msg("complaint_filed", number=event.number or "-",
                          due=event.due or "-"))
    turn.go("menu")
