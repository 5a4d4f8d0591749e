"""What a screen looks like: text plus button targets, before the engine numbers them.

A screen id is a small string kept in the conversation state (`menu`, `docs`, `g:kk`,
`s:kk-baru`, `s:kk-baru:steps`, `t:biaya`, `faq`, `help`, `lang`, `settings`), so rendering
is a pure function of (screen, language, content, and for a few the conversation's state)
and "back" is just re-rendering an earlier id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flows.content import Content
from flows.types import Lang, State, Venue

SECTIONS = ("steps", "where", "duration", "legal", "free")


@dataclass(frozen=True)
class Target:
    """A button before numbering: where it leads and what it says."""

    to: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class Screen:
    text: str
    targets: tuple[Target, ...] = ()
    venue: Venue | None = None
    redirect: str | None = None  # render this screen instead (e.g. a one-service group)
    menu: bool = False  # navigation only: nothing the citizen would want to scroll back to


class UnknownScreen(LookupError):
    """A screen id that no longer exists in content (e.g. state saved before an edit)."""


def nav_targets(c: Content, lang: Lang, *, back: bool = True) -> tuple[Target, ...]:
    out = [Target("back", c.msg(lang, "opt_back"))] if back else []
    out.append(Target("menu", c.msg(lang, "opt_menu")))
    return tuple(out)


def main_targets(c: Content, lang: Lang) -> tuple[Target, ...]:
    return tuple(
        Target(
            e.target,
            e.label.get(lang),
            e.description.get(lang) if e.description else "",
        )
        for e in c.main_menu
    )


def topic_target(c: Content, lang: Lang, topic_id: str) -> Target:
    topic = c.all_topics[topic_id]
    prefix = "s" if topic.kind == "service" else "t"
    desc = topic.description.get(lang) if topic.description else ""
    return Target(f"{prefix}:{topic_id}", topic.label.get(lang), desc)


def render(screen: str, lang: Lang, c: Content, data: dict[str, Any] | None = None,
           state: State | None = None) -> Screen:
    """Render a screen id; raises `UnknownScreen` when content no longer has it.

    `data` is the conversation's data, for the few screens that show what was entered;
    `state`, for the settings, which show what the citizen chose.
    """
    kind, _, ref = screen.partition(":")
    if screen == "menu":
        return Screen(c.msg(lang, "menu_intro"), main_targets(c, lang), menu=True)
    if screen == "docs":
        groups = tuple(
            Target(f"g:{g.id}", g.label.get(lang),
                   g.description.get(lang) if g.description else "")
            for g in c.groups.values()
        )
        return Screen(c.msg(lang, "docs_intro"), groups + nav_targets(c, lang)[:1], menu=True)
    if screen == "faq":
        faqs = tuple(topic_target(c, lang, t.id) for t in c.topics.values() if t.kind == "faq")
        return Screen(c.msg(lang, "faq_intro"), faqs[:9] + nav_targets(c, lang)[:1], menu=True)
    if screen == "help":
        return Screen(c.msg(lang, "help"), main_targets(c, lang))
    if screen == "lang":
        return Screen(
            c.msg(lang, "lang_intro"),
            (
                Target("lang:id", c.msg(lang, "lang_name_id")),
                Target("lang:en", c.msg(lang, "lang_name_en")),
            )
            + nav_targets(c, lang)[:1],
            menu=True,
        )
    if kind == "g" and ref in c.groups:
        group = c.groups[ref]
        if len(group.services) == 1:
            return Screen("", redirect=f"s:{group.services[0]}")
        return Screen(
            c.msg(lang, "group_intro", group=group.label.get(lang)),
            tuple(topic_target(c, lang, s) for s in group.services) + nav_targets(c, lang),
            menu=True,
        )
    if kind == "s":
        return _service(ref, lang, c)
    if kind == "t" and ref in c.topics:
        return _topic(ref, lang, c)
    if screen == "survey" or kind == "v":
        from flows import survey  # the survey module builds on this one

        found = survey.render(screen, lang, c)
        if found is not None:
            return found
    if screen == "complaint" or kind == "c":
        from flows import complaint  # so does the complaint module

        found = complaint.render(screen, lang, c, data or {})
        if found is not None:
            return found
    if kind == "p":
        from flows import status  # and the status check

        found = status.render(screen, lang, c)
        if found is not None:
            return found
    if screen == "settings" or kind == "set":
        from flows import settings  # and the settings

        found = settings.render(screen, lang, c, state)
        if found is not None:
            return found
    if screen == "privacy":
        from flows import privacy  # and "hapus data saya"

        found = privacy.render(screen, lang, c)
        if found is not None:
            return found
    raise UnknownScreen(screen)


def _service(ref: str, lang: Lang, c: Content) -> Screen:
    service_id, _, section = ref.partition(":")
    svc = c.services.get(service_id)
    if svc is None or (section and section not in SECTIONS):
        raise UnknownScreen(f"s:{ref}")
    title = svc.title.get(lang)
    sections = tuple(
        Target(f"s:{service_id}:{name}", c.msg(lang, f"section_{name}"))
        for name in SECTIONS
        if name != section
    )
    if not section:
        text = c.msg(
            lang, "service_bring", title=title, bring=svc.bring.get(lang),
            free_short=c.msg(lang, "free_short"),
        )
        return Screen(text, sections + nav_targets(c, lang))
    body = c.msg(lang, "free_note") if section == "free" else getattr(svc, section).get(lang)
    text = c.msg(
        lang, "service_section", title=title, section=c.msg(lang, f"section_{section}"),
        body=body,
    )
    return Screen(text, sections + nav_targets(c, lang))


def _offices(lang: Lang, c: Content) -> str:
    unknown = c.msg(lang, "unknown_fact")
    return "\n\n".join(
        c.msg(
            lang, "office_entry", name=o.name.get(lang), address=o.address or unknown,
            phone=o.phone or unknown, whatsapp=o.whatsapp or unknown, hours=o.hours.get(lang),
        )
        for o in c.offices
    )


def _hours(lang: Lang, c: Content) -> str:
    return "\n".join(f"• {o.name.get(lang)}: {o.hours.get(lang)}" for o in c.offices)


def _topic(ref: str, lang: Lang, c: Content) -> Screen:
    topic = c.topics[ref]
    template = topic.answer.get(lang)
    fields = {}
    if "{offices}" in template:
        fields["offices"] = _offices(lang, c)
    if "{hours}" in template:
        fields["hours"] = _hours(lang, c)
    if "{free_note}" in template:
        fields["free_note"] = c.msg(lang, "free_note")
    text = template.format(**fields) if fields else template.format()
    venue = None
    if ref == "lokasi":
        located = [o for o in c.offices if o.latitude is not None and o.longitude is not None]
        if located:
            o = located[0]
            venue = Venue(o.name.get(lang), o.address or c.msg(lang, "unknown_fact"),
                          o.latitude or 0.0, o.longitude or 0.0)
    if topic.kind == "smalltalk":
        return Screen(text, main_targets(c, lang))
    links = tuple(t for t in main_targets(c, lang) if t.to in topic.links)
    return Screen(text, links + nav_targets(c, lang), venue=venue)


def every_screen(c: Content) -> list[str]:
    """All screen ids, for the content check that renders each one in every language."""
    ids = ["menu", "docs", "faq", "help", "lang"]
    ids += [f"g:{g}" for g in c.groups]
    for s in c.services:
        ids.append(f"s:{s}")
        ids += [f"s:{s}:{name}" for name in SECTIONS]
    ids += [f"t:{t}" for t in c.topics]
    from flows import complaint, privacy, settings, status, survey

    return (ids + survey.screens(c) + complaint.screens(c) + status.screens(c)
            + settings.screens(c) + privacy.screens(c))
