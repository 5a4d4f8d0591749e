"""The pure conversation engine: `step(state, event, content) -> Step`.

The shell loads the state, calls `step`, and stores what comes back in one transaction.
Nothing here reads a clock or touches I/O, so every conversation can be replayed from its
events (the golden transcripts in tests/flows do exactly that).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from flows import complaint, survey
from flows.content import Content
from flows.screens import Screen, Target, UnknownScreen, main_targets, render, topic_target
from flows.types import (
    LANGS,
    Attachment,
    Choice,
    Command,
    ComplaintFiled,
    Effect,
    Event,
    FileComplaint,
    Lang,
    LookupTickets,
    Option,
    OptOut,
    Reply,
    SetLanguage,
    State,
    Step,
    SubmitSurvey,
    Text,
    TicketsFound,
    Timeout,
    TopicAsked,
)
from flows.understand import understander

MAX_HOPS = 8  # redirects one turn may follow before the engine gives up (loop guard)
MAX_BACK = 12  # screens remembered for "back"
MAX_TEXT = 2000  # characters read from one message; the rest is ignored with a note
WHATSAPP_BODY_MAX = 1024

@dataclass(frozen=True)
class Options:
    """Engine knobs the shell sets from configuration."""

    idle_timeout: timedelta = timedelta(minutes=30)


class _Turn:
    """Accumulates one turn's replies and effects while the state evolves."""

    def __init__(self, state: State, content: Content):
        self.state = state
        self.c = content
        self.prefix: list[str] = []
        self.replies: list[Reply] = []
        self.effects: list[Effect] = []
        self.greeted = False  # the first-contact welcome already said hello

    @property
    def lang(self) -> Lang:
        return self.state.lang

    def msg(self, key: str, **fields: str) -> str:
        return self.c.msg(self.lang, key, **fields)

    # -- output ----------------------------------------------------------------------------

    def show(self, screen: Screen, text: str | None = None) -> None:
        """Emit a reply with numbered buttons; only the newest buttons are live."""
        seq = self.state.seq + 1
        options = tuple(
            Option(f"{seq}|{t.to}", t.label, t.description) for t in screen.targets
        )
        self.state = self.state.model_copy(
            update={"seq": seq, "options": tuple(t.to for t in screen.targets)}
        )
        body = text if text is not None else screen.text
        if options and len(body) > WHATSAPP_BODY_MAX:
            # WhatsApp refuses buttons under a long body: send the text, then the buttons
            self.replies.append(Reply(body, (), screen.venue))
            self.replies.append(Reply(self.msg("options_prompt"), options))
        else:
            menu = screen.menu and text is None and not self.prefix
            self.replies.append(Reply(body, options, screen.venue, menu=menu))

    def say(self, text: str) -> None:
        self.prefix.append(text)

    def finish(self) -> Step:
        replies = list(self.replies)
        if self.prefix:
            head = "\n\n".join(self.prefix)
            if replies and len(head) + 2 + len(replies[0].text) <= WHATSAPP_BODY_MAX:
                replies[0] = replace(replies[0], text=f"{head}\n\n{replies[0].text}")
            else:
                replies.insert(0, Reply(head))
        return Step(self.state, tuple(replies), tuple(self.effects))

    # -- navigation ------------------------------------------------------------------------

    def go(self, target: str) -> None:
        """Follow a button target or a global action."""
        st = self.state
        if target == "menu":
            self.state = st.model_copy(update={"screen": "menu", "back": ()})
            self.show(render("menu", self.lang, self.c))
        elif target == "back":
            if not st.back:
                if st.screen in ("", "menu"):
                    self.say(self.msg("at_top"))
                self.go("menu")
                return
            self.state = st.model_copy(update={"back": st.back[:-1]})
            self.visit(st.back[-1], push=False)
        elif target == "cancel":
            self.say(self.msg("cancel"))
            self.state = st.model_copy(update={"data": {}})
            self.go("menu")
        elif target == "stop":
            self.effects.append(OptOut())
            self.state = st.model_copy(
                update={"screen": "", "back": (), "options": (), "data": {}}
            )
            self.replies.append(Reply(self.msg("stop")))
        elif target == "survey":  # a fresh questionnaire each time
            self.state = st.model_copy(update={"data": {**st.data, "survey": {}}})
            self.visit("survey")
        elif survey.is_action(target):
            self.answer_survey(target)
        elif target == "complaint":
            self.start_complaint(None)
        elif complaint.is_action(target):
            self.answer_complaint(target)
        elif target.startswith("lang:") and target[5:] in LANGS:
            lang: Lang = "en" if target == "lang:en" else "id"
            self.effects.append(SetLanguage(lang))
            self.state = st.model_copy(update={"lang": lang})
            self.say(self.msg("lang_set"))
            self.go("menu")
        else:
            self.visit(target)

    def answer_survey(self, target: str) -> None:
        """Record one survey answer in the conversation's data and show the next question."""
        c = self.c
        if c.survey is None:
            self.go("menu")
            return
        data = dict(self.state.data.get("survey", {}))
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
            self.state = self.state.model_copy(update={"data": {**self.state.data,
                                                                "survey": data}})
            self.finish_survey(None)
            return
        self.state = self.state.model_copy(update={"data": {**self.state.data, "survey": data}})
        self.visit(nxt)

    def finish_survey(self, suggestion: str | None) -> None:
        data = self.state.data.get("survey", {})
        answers = data.get("answers", {})
        missing = [u.id for u in (self.c.survey.unsur if self.c.survey else ())
                   if u.id not in answers]
        if missing:  # reached the end by "back" and skipping: ask what is missing
            self.visit(f"v:q:{int(missing[0][1:])}")
            return
        self.effects.append(SubmitSurvey(
            office=data.get("office"),
            answers=tuple(sorted((k, int(v)) for k, v in answers.items())),
            profile=tuple(sorted(data.get("profile", {}).items())),
            suggestion=suggestion))
        rest = {k: v for k, v in self.state.data.items() if k != "survey"}
        self.state = self.state.model_copy(update={"data": rest, "back": ()})
        self.say(self.msg("survey_thanks"))
        self.go("menu")

    # -- complaints ---------------------------------------------------------------------------

    def start_complaint(self, kind: str | None) -> None:
        if self.c.complaints is None:
            self.visit("t:pengaduan")
            return
        data = {"kind": kind} if kind else {}
        self.state = self.state.model_copy(update={"data": {**self.state.data,
                                                            "complaint": data}})
        self.visit("c:service" if kind else "complaint")

    def _complaint(self) -> dict[str, Any]:
        return dict(self.state.data.get("complaint", {}))

    def _keep(self, data: dict[str, Any]) -> None:
        self.state = self.state.model_copy(update={"data": {**self.state.data,
                                                            "complaint": data}})

    def answer_complaint(self, target: str) -> None:
        data = self._complaint()
        _, kind, *rest = target.split(":")
        value = rest[0] if rest else ""
        if kind == "k":
            data["kind"], nxt = value, "c:service"
        elif kind == "g" and value in self.c.groups:
            services = self.c.groups[value].services
            if len(services) == 1:
                data["service"], nxt = services[0], "c:office"
            else:
                nxt = f"c:group:{value}"
        elif kind == "s":
            data["service"], nxt = value, "c:office"
        elif kind == "o":
            data["office"], nxt = value, "c:text"
        elif kind == "w" and value in complaint.WHEN:
            data["when"], nxt = value, "c:identity"
        elif kind == "i" and value in complaint.IDENTITY:
            data["identity"], nxt = value, "c:summary"
        elif kind == "edit":
            nxt = "c:text"
        elif kind == "send":
            self.file_complaint(data)
            return
        else:
            nxt = self.state.screen or "complaint"
        self._keep(data)
        self.visit(nxt)

    def complaint_text(self, text: str) -> None:
        data = self._complaint()
        if not text.strip():
            self.repeat(self.msg("complaint_empty_text"))
            return
        data["text"] = text.strip()[:complaint.MAX_TEXT]
        self._keep(data)
        category = complaint.tag(data["text"], self.c)
        if category is not None and category.urgent:  # asked to pay: say it is free at once
            self.say(self.msg("free_note"))
        self.visit("c:summary" if "identity" in data else "c:when")

    def complaint_photo(self, ref: str) -> None:
        data = self._complaint()
        data["photos"] = [*data.get("photos", []), ref][:5]
        self._keep(data)
        self.repeat(self.msg("complaint_photo_kept"))

    def file_complaint(self, data: dict[str, Any]) -> None:
        need = ("kind", "service", "office", "text", "when", "identity")
        missing = [k for k in need if k not in data]
        if missing:  # e.g. an old summary button: ask for what is missing
            steps = {"kind": "complaint", "service": "c:service", "office": "c:office",
                     "text": "c:text", "when": "c:when", "identity": "c:identity"}
            self.visit(steps[missing[0]])
            return
        category = complaint.tag(data["text"], self.c)
        self.effects.append(FileComplaint(
            kind=data["kind"], service=data["service"], office=data["office"],
            text=data["text"], when=data["when"], identity=data["identity"],
            category=category.id if category else "lainnya",
            dimension=category.dimension if category else "responsiveness",
            urgent=bool(category and category.urgent),
            photos=tuple(data.get("photos", ()))))
        self.state = self.state.model_copy(update={"screen": "c:filing", "options": ()})

    def complaint_filed(self, event: ComplaintFiled) -> None:
        rest = {k: v for k, v in self.state.data.items() if k != "complaint"}
        self.state = self.state.model_copy(update={"data": rest, "back": ()})
        if event.refused == "too_many":
            self.say(self.msg("complaint_too_many", limit=str(event.limit)))
        elif event.refused == "duplicate":
            self.say(self.msg("complaint_duplicate", number=event.number or "-"))
        else:
            self.say(self.msg("complaint_filed", number=event.number or "-",
                              due=event.due or "-"))
        self.go("menu")

    def list_tickets(self, event: TicketsFound) -> None:
        cc = self.c.complaints
        if not event.tickets or cc is None:
            self.show(Screen(self.msg("tickets_none"), main_targets(self.c, self.lang)))
            return
        kinds = {k.id: k.label.get(self.lang) for k in cc.kind}
        states = {s.id: s.label.get(self.lang) for s in cc.state}
        lines = "\n".join(
            self.msg("ticket_line", number=number, kind=kinds.get(kind, kind),
                     state=states.get(state, state), date=sent)
            for number, kind, state, sent in event.tickets)
        self.show(Screen(self.msg("tickets_list", tickets=lines), main_targets(self.c, self.lang)))

    def visit(self, screen_id: str, *, push: bool = True) -> None:
        """Render a screen, following redirects, and remember the way back."""
        for _ in range(MAX_HOPS):
            try:
                screen = render(screen_id, self.lang, self.c, self.state.data)
            except UnknownScreen:
                self.replies.append(Reply(self.msg("no_match")))
                self.go("menu")
                return
            if screen.redirect is None:
                break
            screen_id = screen.redirect
        else:  # pragma: no cover - content validation prevents redirect cycles
            self.go("menu")
            return
        st = self.state
        back = st.back
        if push and st.screen and st.screen != screen_id and not _siblings(st.screen, screen_id):
            back = (back + (st.screen,))[-MAX_BACK:]
        self.state = st.model_copy(update={"screen": screen_id, "back": back})
        kind, _, ref = screen_id.partition(":")
        if kind in ("s", "t") and not _siblings(st.screen, screen_id):
            self.effects.append(TopicAsked(ref.partition(":")[0]))
        self.show(screen)

    def repeat(self, text: str) -> None:
        """Answer with `text` and the current screen's buttons again, so nobody is stuck."""
        screen_id = self.state.screen or "menu"
        try:
            screen = render(screen_id, self.lang, self.c, self.state.data)
        except UnknownScreen:
            screen = render("menu", self.lang, self.c)
        if screen.redirect:
            screen = Screen(text, main_targets(self.c, self.lang))
        self.show(screen, text=text)


def _siblings(a: str, b: str) -> bool:
    """Two sections of one service replace each other instead of stacking up."""
    return a.startswith("s:") and b.startswith("s:") and a.split(":")[1] == b.split(":")[1]


def step(state: State, event: Event, content: Content, options: Options | None = None) -> Step:
    """Advance one conversation by one event."""
    opts = options or Options()
    if isinstance(event, Timeout):
        return Step(State(lang=state.lang, seq=state.seq, updated_at=event.at))
    turn = _Turn(state, content)
    if state.updated_at is None:
        turn.say(turn.msg("welcome"))
        turn.greeted = True
    elif event.at - state.updated_at > opts.idle_timeout:
        turn.state = State(lang=state.lang, seq=state.seq)
        turn.say(turn.msg("welcome_back"))
    if isinstance(event, Choice):
        _on_choice(turn, event.payload)
    elif isinstance(event, Command):
        # "/start", "/bantuan": command words come from content, like typed ones
        action = _command(turn.c, event.name.lower())
        if action is not None:
            turn.go(action)
        else:
            _on_text(turn, f"{event.name} {event.args}".strip())
    elif isinstance(event, Text):
        _on_text(turn, event.text)
    elif isinstance(event, ComplaintFiled):
        turn.complaint_filed(event)
    elif isinstance(event, TicketsFound):
        turn.list_tickets(event)
    elif isinstance(event, Attachment):
        _on_attachment(turn, event)
    turn.state = turn.state.model_copy(update={"updated_at": event.at})
    return turn.finish()


def _on_attachment(turn: _Turn, event: Attachment) -> None:
    if (event.problem is None and event.ref and turn.state.screen == "c:text"
            and event.kind in ("photo", "document")):
        turn.complaint_photo(event.ref)  # kept with the complaint being written
        return
    if event.problem is not None:
        key = f"attachment_{event.problem}"
    elif event.kind == "location":
        key = "location_received"
    else:
        key = "attachment_unsupported"
    turn.repeat(turn.msg(key))


def _command(content: Content, words: str) -> str | None:
    """The global action a whole message names (menu, back, cancel, help, lang, stop)."""
    for action, names in content.language.commands.items():
        if words in names:
            return action
    return None


def _on_choice(turn: _Turn, payload: str) -> None:
    if payload.startswith("go:"):
        # a link into a screen (a broadcast's "Lihat syarat KK" button): never stale
        turn.go(payload[3:])
        return
    seq, sep, target = payload.partition("|")
    live = (
        sep
        and seq.isdigit()
        and int(seq) == turn.state.seq
        and target in turn.state.options
    )
    if not live:
        turn.repeat(turn.msg("stale_button"))
        return
    turn.go(target)


def _on_text(turn: _Turn, raw: str) -> None:
    text = "".join(ch for ch in raw if ch.isprintable() or ch in "\n\t")
    if len(text) > MAX_TEXT:
        turn.say(turn.msg("too_long"))
        text = text[:MAX_TEXT]
    u = understander(turn.c)
    normalized = u.normalize(text)
    if not normalized:
        turn.repeat(turn.msg("complaint_empty_text" if turn.state.screen == "c:text"
                             else "empty_text"))
        return
    action = _command(turn.c, normalized) or _command(turn.c, text.strip().lower())
    if action is not None:
        turn.go(action)
        return
    if turn.state.screen == "v:suggest" and not (normalized.isdigit() and turn.state.options):
        turn.finish_survey(text.strip())
        return
    if turn.state.screen == "c:text":
        turn.complaint_text(text)
        return
    if normalized.isdigit() and turn.state.options:
        n = int(normalized)
        if 1 <= n <= len(turn.state.options):
            turn.go(turn.state.options[n - 1])
            return
    found = u.match(text, normalized)
    topic = turn.c.all_topics.get(found.topic or "")
    if topic is not None and topic.kind == "smalltalk":
        # a greeting or a thank-you is answered in one line, then the menu
        if not turn.greeted:
            turn.say(render(f"t:{topic.id}", turn.lang, turn.c).text)
        turn.effects.append(TopicAsked(topic.id))
        turn.go("menu")
    elif topic is not None and topic.id == "tiket" and turn.c.complaints:
        turn.effects.append(LookupTickets())
    elif topic is not None and topic.id in ("pengaduan", "saran") and turn.c.complaints:
        turn.effects.append(TopicAsked(topic.id))
        turn.start_complaint("saran" if topic.id == "saran" else None)
    elif topic is not None:
        turn.visit(f"{'s' if topic.kind == 'service' else 't'}:{topic.id}")
    elif found.alternatives:
        ids = [s.topic for s in found.alternatives]
        groups = {g.id for i in ids if (g := turn.c.group_of(i)) is not None}
        if len(groups) == 1 and all(i in turn.c.services for i in ids):
            # "syarat kk": every KK service is a fair guess, not just the top two
            ids = list(turn.c.groups[groups.pop()].services)
        targets = tuple(topic_target(turn.c, turn.lang, i) for i in ids)
        turn.show(
            Screen(turn.msg("suggest_intro"), targets + (Target("menu", turn.msg("opt_menu")),))
        )
    else:
        turn.show(Screen(turn.msg("no_match"), main_targets(turn.c, turn.lang)))

