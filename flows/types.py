"""Channel-neutral values that cross the boundary between the shell and the pure engine.

Everything here is immutable so that a `Step` can be compared in golden tests and
replayed safely; time always arrives inside an event, never read from a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Lang = Literal["id", "en"]
LANGS: tuple[Lang, ...] = ("id", "en")


@dataclass(frozen=True)
class Option:
    """A button. `id` is the structured payload the channel hands back when it is pressed."""

    id: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class Venue:
    """An office location a channel may show as a map pin."""

    title: str
    address: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Reply:
    """One outgoing message; channels decide how to draw `options`."""

    text: str
    options: tuple[Option, ...] = ()
    venue: Venue | None = None
    menu: bool = False  # pure navigation: a channel may replace it in place when left

    def to_dict(self) -> dict[str, Any]:
        """Serialise for the outbox row (plain JSON)."""
        data: dict[str, Any] = {
            "text": self.text,
            "options": [
                {"id": o.id, "label": o.label, "description": o.description}
                for o in self.options
            ],
        }
        if self.menu:
            data["menu"] = True
        if self.venue is not None:
            v = self.venue
            data["venue"] = {
                "title": v.title,
                "address": v.address,
                "latitude": v.latitude,
                "longitude": v.longitude,
            }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        venue = data.get("venue")
        return cls(
            text=data["text"],
            options=tuple(
                Option(o["id"], o["label"], o.get("description", ""))
                for o in data.get("options", [])
            ),
            venue=Venue(**venue) if venue else None,
            menu=bool(data.get("menu")),
        )


# --- events: what happened, with the time it happened -------------------------------------


@dataclass(frozen=True)
class Text:
    text: str
    at: datetime


@dataclass(frozen=True)
class Choice:
    """A button press; `payload` is an `Option.id` from some earlier reply (maybe stale)."""

    payload: str
    at: datetime


@dataclass(frozen=True)
class Command:
    """A slash command or a channel's start signal; `name` is lower case without the slash."""

    name: str
    at: datetime
    args: str = ""


AttachmentKind = Literal[
    "photo", "document", "sticker", "voice", "audio", "video", "animation",
    "location", "contact", "other",
]


@dataclass(frozen=True)
class Attachment:
    """Anything that is not text or a button: media, stickers, locations, contacts."""

    kind: AttachmentKind
    at: datetime
    ref: str | None = None  # where the shell stored the file, if it kept one
    problem: Literal["too_large", "bad_type"] | None = None  # why the shell refused it


@dataclass(frozen=True)
class Timeout:
    """Sent by the scheduler when a conversation has been idle; it resets quietly."""

    at: datetime


@dataclass(frozen=True)
class ComplaintFiled:
    """The shell's answer to `FileComplaint`: the ticket number, or why it was refused."""

    at: datetime
    number: str | None
    due: str | None = None  # the date staff must respond by, as the citizen reads it
    refused: Literal["too_many", "duplicate"] | None = None
    limit: int = 0


@dataclass(frozen=True)
class TicketsFound:
    """The shell's answer to `LookupTickets`: (number, kind, state, sent on) newest first.

    When the citizen asked for one `number`, `tickets` holds that ticket only if this chat
    follows it (else nothing, whether or not it exists), and `answer` is its latest public
    staff answer.
    """

    at: datetime
    tickets: tuple[tuple[str, str, str, str], ...]
    number: str | None = None
    answer: str | None = None


@dataclass(frozen=True)
class TicketRated:
    """The shell's answer to `RateTicket`: stored, or refused (not followed by this chat,
    not closed, a bad score, or no such ticket: the engine is not told which)."""

    at: datetime
    number: str
    ok: bool


@dataclass(frozen=True)
class TicketInfoAdded:
    """The shell's answer to `AddToTicket`. `closed` is only ever set for a ticket this chat
    follows, so a refusal says nothing about other people's tickets."""

    at: datetime
    number: str
    ok: bool
    closed: bool = False


@dataclass(frozen=True)
class ApplicationChecked:
    """The shell's answer to `CheckApplication`.

    `found` only when the number exists AND the verification answer matches; an unknown
    number and a wrong answer both read `no_match` and both count towards the lock-out, so
    the answer never tells whether a number exists. `text` is the status as the citizen
    reads it (rendered by the shell, which knows the application).
    """

    at: datetime
    reg_no: str
    outcome: Literal["found", "no_match", "locked", "too_many"]
    text: str = ""
    following: bool = False
    done: bool = False  # collected: the SKM survey may be offered
    attempts_left: int = 0
    minutes: int = 0  # how long the lock lasts


@dataclass(frozen=True)
class ApplicationsListed:
    """The shell's answer to `ListApplications`: (number, status as read) of every
    application this chat follows, newest first."""

    at: datetime
    applications: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ApplicationFollowed:
    """The shell's answer to `FollowApplication`; `ok` False when there was nothing to do
    (stopping one this chat does not follow)."""

    at: datetime
    reg_no: str
    follow: bool
    ok: bool


Event = (Text | Choice | Command | Attachment | Timeout | ComplaintFiled | TicketsFound
         | TicketRated | TicketInfoAdded | ApplicationChecked | ApplicationsListed
         | ApplicationFollowed)


# --- effects: what the shell must do in the same transaction as the new state ---------------


@dataclass(frozen=True)
class SetLanguage:
    lang: Lang


@dataclass(frozen=True)
class SetConsent:
    """The citizen's answer to "information from the office?": yes (`/langganan`, the
    first-contact question, settings) or no (`/berhenti`, "stop", settings). `first` marks
    the answer to the first-contact question: a no there is no consent, not an opt-out of
    some broadcast, and is not counted against one."""

    opted_in: bool
    first: bool = False


@dataclass(frozen=True)
class SetArea:
    """Where the citizen lives, from settings, so outreach can be local (content ids:
    `kecamatan` as in areas.toml, `kelurahan` as "<kecamatan>:<code>"); None clears."""

    kecamatan: str | None
    kelurahan: str | None


@dataclass(frozen=True)
class TopicAsked:
    """A topic was answered; kept so that later issues can segment audiences by interest."""

    topic: str


@dataclass(frozen=True)
class SubmitSurvey:
    """A completed SKM questionnaire; the shell stores it with no link to the contact."""

    office: str | None
    answers: tuple[tuple[str, int], ...]  # (unsur id, score 1-4)
    profile: tuple[tuple[str, str], ...] = ()
    suggestion: str | None = None


@dataclass(frozen=True)
class FileComplaint:
    """Create a ticket; the shell answers with a `ComplaintFiled` event."""

    kind: str
    service: str
    office: str
    text: str
    when: str
    identity: Literal["named", "confidential", "anonymous"]
    category: str
    dimension: str
    urgent: bool = False
    photos: tuple[str, ...] = ()


@dataclass(frozen=True)
class LookupTickets:
    """List the tickets this chat follows (or only `number`, if it is one of them); the shell
    answers with `TicketsFound`."""

    number: str | None = None


@dataclass(frozen=True)
class RateTicket:
    """The citizen's 1-5 for a closed ticket they follow; the shell answers `TicketRated`."""

    number: str
    score: int


@dataclass(frozen=True)
class AddToTicket:
    """More information for an open ticket this chat follows; answered by `TicketInfoAdded`."""

    number: str
    text: str
    photos: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckApplication:
    """A registration number and the verification answer the citizen typed, already in the
    stored form (`kind` birth_date: YYYY-MM-DD; nik_last4: 4 digits). The shell applies the
    lock-out and rate limit, then answers with `ApplicationChecked`."""

    reg_no: str
    kind: Literal["birth_date", "nik_last4"]
    answer: str


@dataclass(frozen=True)
class ListApplications:
    """The applications this chat follows; answered with `ApplicationsListed`."""


@dataclass(frozen=True)
class FollowApplication:
    """Start (only for a number this conversation verified) or stop notifications of one
    application for this chat; answered with `ApplicationFollowed`."""

    reg_no: str
    follow: bool


@dataclass(frozen=True)
class DeleteMyData:
    """The citizen confirmed "hapus data saya": the shell deletes what is stored about this
    contact (and anonymises their tickets) in the turn's own transaction, before this turn's
    reply is queued (bot/services/privacy.py)."""


Effect = (SetLanguage | SetConsent | SetArea | TopicAsked | SubmitSurvey | FileComplaint
          | LookupTickets | RateTicket | AddToTicket | CheckApplication | ListApplications
          | FollowApplication | DeleteMyData)
# effects the shell answers with an event in the same transaction (the engine waits for it)
ASKS = (FileComplaint, LookupTickets, RateTicket, AddToTicket, CheckApplication,
        ListApplications, FollowApplication)


class State(BaseModel):
    """A conversation's whole memory, stored as JSON by the shell.

    `screen` is where the citizen is; `back` the screens that led there; `seq` numbers
    each set of buttons so a press on an older set is recognised as stale; `options` holds
    the targets of the newest buttons so a typed number can choose one.
    """

    model_config = ConfigDict(frozen=True)

    lang: Lang = "id"
    screen: str = ""
    back: tuple[str, ...] = ()
    seq: int = 0
    options: tuple[str, ...] = ()
    data: dict[str, Any] = {}
    updated_at: datetime | None = None
    # what the citizen chose, kept across idle resets (`fresh`); the shell refreshes the last
    # three from the contact row, which platform opt-outs and staff may also change
    consent_asked: bool = False  # the first-contact question about office information was put
    subscribed: bool = False
    kecamatan: str | None = None
    kelurahan: str | None = None  # "<kecamatan>:<code>"

    def fresh(self) -> State:
        """A new conversation with the same citizen: where they were is forgotten, what they
        chose (language, consent, area) is not, and button numbering goes on."""
        return State(lang=self.lang, seq=self.seq, consent_asked=self.consent_asked,
                     subscribed=self.subscribed, kecamatan=self.kecamatan,
                     kelurahan=self.kelurahan)


@dataclass(frozen=True)
class Step:
    state: State
    replies: tuple[Reply, ...] = ()
    effects: tuple[Effect, ...] = field(default_factory=tuple)
