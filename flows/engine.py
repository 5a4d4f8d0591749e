"""The pure conversation engine: `step(state, event, content) -> Step`.

The shell loads the state, calls `step`, and stores what comes back in one transaction.
Nothing here reads a clock or touches I/O, so every conversation can be replayed from its
events (the golden transcripts in tests/flows do exactly that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta

from flows import complaint, privacy, settings, status, survey, tickets
from flows.content import Content
from flows.screens import Screen, Target, UnknownScreen, main_targets, render, topic_target
from flows.types import (
    LANGS,
    ApplicationChecked,
    ApplicationFollowed,
    ApplicationsListed,
    Attachment,
    Choice,
    Command,
    ComplaintFiled,
    Effect,
    Event,
    Lang,
    LookupTickets,
    Option,
    Reply,
    SetLanguage,
    State,
    Step,
    Text,
    TicketInfoAdded,
    TicketRated,
    TicketsFound,
    Timeout,
    TopicAsked,
)
from flows.understand import understander

MAX_HOPS = 8  # redirects one turn may follow before the engine gives up (loop guard)
MAX_BACK = 12  # screens remembered for "back"
MAX_TEXT = 2000  # characters read from one message; the rest is ignored with a note
WHATSAPP_BODY_MAX = 1024
_SLASH = re.compile(r"/([A-Za-z_]{1,32})(?:\s+(.*))?", re.DOTALL)  # "/status KK-1" typed

@dataclass(frozen=True)
class Options:
    """Engine knobs the shell sets from configuration."""

    idle_timeout: timedelta = timedelta(minutes=30)


class Turn:
    """Accumulates one turn's replies and effects while the state evolves."""

    def __init__(self, state: State, content: Content):
        self.state = state
        self.c = content
        self.prefix: list[str] = []
        self.replies: list[Reply] = []
        self.effects: list[Effect] = []
        self.greeted = False  # the first-contact welcome already said hello
        self.consent_pending = False  # the consent question was put last turn

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
            settings.consent(self, False)
            self.state = self.state.model_copy(
                update={"screen": "", "back": (), "options": (), "data": {}}
            )
            self.replies.append(Reply(self.msg("stop")))
        elif settings.is_action(target):
            settings.answer(self, target)
        elif target == "delete":  # "hapus data saya": asked before anything is deleted
            privacy.start(self)
        elif privacy.is_action(target):
            privacy.answer(self, target)
        elif target == "survey":  # a fresh questionnaire each time
            self.state = st.model_copy(update={"data": {**st.data, "survey": {}}})
            self.visit("survey")
        elif survey.is_action(target):
            survey.answer(self, target)
        elif target == "complaint":
            complaint.start(self, None)
        elif complaint.is_action(target):
            complaint.answer(self, target)
        elif target == "t:status" and self.c.applications is not None:
            status.start(self)
        elif status.is_action(target):
            status.answer(self, target)
        elif target.startswith("rate:"):  # a closed ticket's rating, from its notification
            tickets.rate(self, target)
        elif target.startswith("lang:") and target[5:] in LANGS:
            lang: Lang = "en" if target == "lang:en" else "id"
            self.effects.append(SetLanguage(lang))
            self.state = st.model_copy(update={"lang": lang})
            self.say(self.msg("lang_set"))
            self.go("menu")
        else:
            self.visit(target)

    def visit(self, screen_id: str, *, push: bool = True) -> None:
        """Render a screen, following redirects, and remember the way back."""
        for _ in range(MAX_HOPS):
            try:
                screen = render(screen_id, self.lang, self.c, self.state.data, self.state)
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
            screen = render(screen_id, self.lang, self.c, self.state.data, self.state)
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
        return Step(state.fresh().model_copy(update={"updated_at": event.at}))
    turn = Turn(state, content)
    if state.updated_at is None:
        turn.say(turn.msg("welcome"))
        turn.greeted = True
    elif event.at - state.updated_at > opts.idle_timeout:
        turn.state = state.fresh()
        turn.say(turn.msg("welcome_back"))
    turn.consent_pending = settings.take_pending(turn)
    if isinstance(event, Text) and (slash := _SLASH.fullmatch(event.text.strip())):
        event = Command(slash.group(1), event.at, slash.group(2) or "")  # WhatsApp, web chat
    if isinstance(event, Choice):
        _on_choice(turn, event.payload)
    elif isinstance(event, Command):
        # "/start", "/bantuan": command words come from content, like typed ones
        action = _command(turn.c, event.name.lower())
        if action is not None:
            turn.go(action)
        elif event.name.lower() == "status" and content.applications is not None:
            status.start(turn, event.args)  # the list, or straight to a number given
        else:
            _on_text(turn, f"{event.name} {event.args}".strip())
    elif isinstance(event, Text):
        _on_text(turn, event.text)
    elif isinstance(event, ComplaintFiled):
        complaint.filed(turn, event)
    elif isinstance(event, TicketsFound):
        tickets.list_tickets(turn, event)
    elif isinstance(event, TicketRated):
        tickets.rated(turn, event)
    elif isinstance(event, TicketInfoAdded):
        tickets.info_added(turn, event)
    elif isinstance(event, ApplicationChecked):
        status.checked(turn, event)
    elif isinstance(event, ApplicationsListed):
        status.listed(turn, event)
    elif isinstance(event, ApplicationFollowed):
        status.followed(turn, event)
    elif isinstance(event, Attachment):
        _on_attachment(turn, event)
    if isinstance(event, Text | Choice | Command | Attachment):  # not on top of a shell's
        settings.ask_if_due(turn)  # answer (a status, a ticket): that one may ask itself
    turn.state = turn.state.model_copy(update={"updated_at": event.at})
    return turn.finish()


def _on_attachment(turn: Turn, event: Attachment) -> None:
    if event.problem is None and event.ref and event.kind in ("photo", "document"):
        if turn.state.screen == "c:text":
            complaint.on_photo(turn, event.ref)  # kept with the complaint being written
            return
        if turn.state.screen.startswith("c:add:"):
            tickets.on_photo(turn, event.ref)  # kept with the information being added
            return
    if event.problem is not None:
        key = f"attachment_{event.problem}"
    elif event.kind == "location":
        key = "location_received"
    else:
        key = "attachment_unsupported"
    turn.repeat(turn.msg(key))


def _command(content: Content, words: str) -> str | None:
    """The global action a whole message names (menu, back, cancel, help, lang, stop,
    subscribe, settings, delete)."""
    for action, names in content.language.commands.items():
        if words in names:
            return action
    return None


def _on_choice(turn: Turn, payload: str) -> None:
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


def _on_text(turn: Turn, raw: str) -> None:
    text = "".join(ch for ch in raw if ch.isprintable() or ch in "\n\t")
    if len(text) > MAX_TEXT:
        turn.say(turn.msg("too_long"))
        text = text[:MAX_TEXT]
    u = understander(turn.c)
    normalized = u.normalize(text)
    screen = turn.state.screen
    if not normalized:
        turn.repeat(turn.msg("complaint_empty_text" if screen == "c:text"
                             else "ticket_add_empty" if screen.startswith("c:add:")
                             else "application_bad_number" if screen == "p:number"
                             else "application_bad_verify" if screen == "p:verify"
                             else "empty_text"))
        return
    action = _command(turn.c, normalized) or _command(turn.c, text.strip().lower())
    if action is not None:
        turn.go(action)
        return
    if turn.consent_pending and settings.typed_answer(turn, normalized, text):
        return
    if screen == privacy.SCREEN and privacy.typed_answer(turn, normalized, text):
        return
    if screen == "v:suggest" and not (normalized.isdigit() and turn.state.options):
        survey.finish(turn, text.strip())
        return
    if screen == "c:text":
        complaint.on_text(turn, text)
        return
    if screen.startswith("c:add:") and not (normalized.isdigit() and turn.state.options):
        tickets.on_text(turn, text)  # a bare number picks a button, as on the survey
        return
    if screen in ("p:number", "p:verify") and not (
            len(normalized) == 1 and normalized.isdigit()
            and int(normalized) <= len(turn.state.options)):
        status.on_text(turn, text)  # a bare number picks a button, as elsewhere
        return
    number = tickets.find_number(text, turn.c)
    if number is not None:  # "cek ADU-2026-7K3QF9": that ticket, if this chat follows it
        tickets.lookup(turn, number)
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
    elif topic is not None and topic.id == "status" and turn.c.applications:
        status.start(turn, text)
    elif topic is not None and topic.id == "tiket" and turn.c.complaints:
        turn.effects.append(LookupTickets())
    elif topic is not None and topic.id in ("pengaduan", "saran") and turn.c.complaints:
        turn.effects.append(TopicAsked(topic.id))
        complaint.start(turn, "saran" if topic.id == "saran" else None)
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

