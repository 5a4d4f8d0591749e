"""Inbound -> store (dedupe) -> per-conversation lock -> load -> flows.step -> apply.

The state, the effects, one outbox row per reply, and the inbound row marked processed are
written in ONE transaction. Channels whose client waits for the answer (web chat, terminal)
store and process in that same transaction (`handle`): until it commits nothing was
acknowledged, so a crash makes the client retry. Webhook channels acknowledge first, so they
`receive` (store and commit) and `process` afterwards; `process_pending` finishes at start
whatever a crash left stored but unprocessed. Either way an update is handled exactly once
and its replies are queued exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial, wraps
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.db import Database
from bot.logs import message_text, remember_text, request_scope
from bot.models import (
    PRIORITY_REPLY,
    contact_t,
    conversation_t,
    inbound_t,
    outbox_t,
)
from bot.outbox import new_row
from bot.services import application_lookup, complaints, notices, privacy, profile, survey
from bot.services.profile import Known
from flows.content import Content
from flows.engine import Options, step
from flows.nik import mask_in_text
from flows.types import (
    ASKS,
    Attachment,
    CheckApplication,
    Choice,
    Command,
    DeleteMyData,
    Event,
    FollowApplication,
    ListApplications,
    Reply,
    SetLanguage,
    State,
    Step,
    SubmitSurvey,
    Text,
    TopicAsked,
)

if TYPE_CHECKING:
    from bot.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

InboundKind = Literal["text", "choice", "command", "attachment"]

# contact.last_inbound_at is kept to within this: enough for WhatsApp's 24-hour window, and
# it spares a write on most turns of a conversation.
SEEN_PRECISION = timedelta(minutes=1)



@dataclass(frozen=True)
class Inbound:
    """One update from any channel, already parsed; button payloads stay structured."""

    channel: str
    external_id: str
    platform_id: str
    kind: InboundKind
    payload: dict[str, Any]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    display_name: str | None = None


def to_event(kind: str, payload: dict[str, Any], at: datetime) -> Event:
    if kind == "choice":
        return Choice(str(payload.get("payload", "")), at)
    if kind == "command":
        return Command(str(payload.get("name", "")), at, str(payload.get("args", "")))
    if kind == "attachment":
        return Attachment(payload.get("kind", "other"), at, payload.get("ref"),
                          payload.get("problem"))
    return Text(str(payload.get("text", "")), at)


@dataclass(frozen=True)
class Received:
    inbound_id: int
    contact_id: int
    new: bool
    extra: Any = None  # what `then` returned, when the update was new


class _Locks:
    """One asyncio lock per conversation, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[object, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: object) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            _, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _turn(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Run an Inbox method in a request scope (bot.logs): one request id for the turn's log
    lines (an HTTP request's, when inside one), and the citizen's text hidden from INFO+."""

    @wraps(method)
    async def scoped(self: Inbox, first: Inbound | int, *args: Any, **kwargs: Any) -> T:
        with request_scope(f"in-{first}" if isinstance(first, int) else None):
            if isinstance(first, Inbound):
                remember_text(first.payload.get("text"))
                remember_text(first.payload.get("args"))
            return await method(self, first, *args, **kwargs)

    return scoped


class Inbox:
    def __init__(
        self,
        db: Database,
        content: Content,
        options: Options | None = None,
        on_commit: Callable[[str, int], None] | None = None,
        timezone: str = "Asia/Makassar",
        secret: str = "",
        metrics: Metrics | None = None,
    ):
        self.db = db
        self.content = content
        self.options = options or Options()
        self.on_commit = on_commit  # (channel, contact_id): wake that channel's sender
        self.engine = Engine(content, self.options, ZoneInfo(timezone), secret)
        self._locks = _Locks()
        self.metrics = metrics  # None: nothing is measured
        self._accepted: dict[int, float] = {}  # inbound id -> when received, until processed

    @_turn
    async def handle(self, inbound: Inbound, then: After | None = None) -> Received:
        """Store and process in one transaction; a redelivered update is not processed again.

        `then(connection, contact_id)` runs in the same transaction after processing; the web
        chat uses it to collect the replies, which leave only once it has committed.
        """
        started = time.monotonic()
        async with self._locks.hold((inbound.channel, inbound.external_id)):
            try:
                received = await self.db.transaction(_store, inbound, self.engine, then)
            except IntegrityError:  # stored before: a redelivery, acknowledged and ignored
                received = await self.db.transaction(_store, inbound, None)
                if received.new:  # the conflict was something else; let it surface
                    raise
        if received.new:
            self._committed(inbound.channel, received.contact_id)
            if self.metrics is not None:
                self.metrics.turned(inbound.channel, started, accepted=True)
        return received

    @_turn
    async def notify(self, inbound: Inbound, reply: Reply) -> Received:
        """Answer an update with one fixed reply, without the engine (e.g. a group chat).

        The update is stored as processed and the reply queued in one transaction, so a
        redelivery is ignored like any other.
        """
        async with self._locks.hold((inbound.channel, inbound.external_id)):
            try:
                received = await self.db.transaction(_store, inbound, None, partial(
                    _queue_reply, reply=reply, inbound_platform_id=inbound.platform_id,
                    channel=inbound.channel))
            except IntegrityError:
                return await self.db.transaction(_store, inbound, None)
        if received.new:
            self._committed(inbound.channel, received.contact_id)
            if self.metrics is not None:
                self.metrics.accepted(inbound.channel)
        return received

    @_turn
    async def receive(self, inbound: Inbound) -> Received:
        """Store only (commit), for channels that must acknowledge before processing."""
        try:
            received = await self.db.transaction(_store, inbound, None)
        except IntegrityError:  # the same update was stored by another worker meanwhile
            received = await self.db.transaction(_store, inbound, None)
        if received.new and self.metrics is not None:
            self.metrics.accepted(inbound.channel)
            if len(self._accepted) < 10_000:  # bounded: one never processed here is dropped
                self._accepted[received.inbound_id] = time.monotonic()
        return received

    @_turn
    async def process(self, inbound_id: int, chat: tuple[str, str] | None = None) -> bool:
        """Process one stored update, if nobody has yet. `chat` (channel, external id), when
        the caller knows it, saves looking it up."""
        started = self._accepted.pop(inbound_id, time.monotonic())  # turn latency from receipt
        if chat is None:
            key = await self.db.transaction(_conversation_key, inbound_id)
            if key is None:
                return False
            chat = key[0], key[1]
        async with self._locks.hold(chat):
            contact_id = await self.db.transaction(_process_stored, inbound_id, self.engine)
        done = contact_id is not None
        if contact_id is not None:
            self._committed(chat[0], contact_id)
            if self.metrics is not None:
                self.metrics.turned(chat[0], started)
        return done

    async def process_pending(self, between: tuple[datetime, datetime] | None = None) -> int:
        """Handle updates stored but never processed, oldest first: at start, those a crash
        left; from the sweep job, those received `between` two times (a receiver that died,
        a turn that failed on a database error)."""
        pending = await self.db.transaction(_unprocessed, between)
        done = 0
        for inbound_id in pending:
            try:
                done += await self.process(inbound_id)
            except Exception:  # one failing turn must not hold up the others
                log.exception("stored update %s not processed", inbound_id)
        return done

    def _committed(self, channel: str, contact_id: int) -> None:
        if self.on_commit is not None:
            self.on_commit(channel, contact_id)


# --- database work (inside one transaction; bot.db decides which thread) ---------------------
# Statements are built once: building a SQLAlchemy statement costs more than running it.

@dataclass(frozen=True)
class Engine:
    """The pure engine with what the shell knows: content, options, the office's time zone."""

    content: Content
    options: Options
    tz: ZoneInfo
    secret: str = ""  # keys the application look-ups (bot.services.application_lookup)

    def __call__(self, kind: str, payload: dict[str, Any], at: datetime, state: State) -> Step:
        return step(state, to_event(kind, payload, at), self.content, self.options)

    def event(self, state: State, event: Event) -> Step:
        return step(state, event, self.content, self.options)


Stepper = Engine
After = Callable[[Connection, int], Any]  # (connection, contact id), run before commit
Saved = tuple[dict[str, Any], int]  # a conversation's stored state and turn count

_FIND_INBOUND = select(inbound_t.c.id, inbound_t.c.contact_id).where(
    inbound_t.c.channel == bindparam("channel"), inbound_t.c.platform_id == bindparam("pid"))
_KNOWN = (contact_t.c.language, contact_t.c.opted_in, contact_t.c.consent_at,
          contact_t.c.opted_out_at, contact_t.c.kecamatan, contact_t.c.kelurahan)
_CONTACT_STATE = (
    select(contact_t.c.id, contact_t.c.last_inbound_at, *_KNOWN,
           conversation_t.c.state, conversation_t.c.turns)
    .select_from(contact_t.outerjoin(conversation_t,
                                     conversation_t.c.contact_id == contact_t.c.id))
    .where(contact_t.c.channel == bindparam("channel"),
           contact_t.c.external_id == bindparam("ext"))
)
_SEEN_CONTACT = update(contact_t).where(contact_t.c.id == bindparam("cid")).values(
    last_inbound_at=bindparam("at"))
_LOAD_STATE = select(conversation_t.c.state, conversation_t.c.turns).where(
    conversation_t.c.contact_id == bindparam("cid"))
_SAVE_STATE = update(conversation_t).where(conversation_t.c.contact_id == bindparam("cid")).values(
    state=bindparam("state"), turns=bindparam("turns"), updated_at=bindparam("now"))
_PRESSED = (
    select(outbox_t.c.payload)
    .where(outbox_t.c.contact_id == bindparam("cid"),
           outbox_t.c.platform_message_id == bindparam("pmid"))
    .order_by(outbox_t.c.id.desc()).limit(1)
)
_DONE = update(inbound_t).where(inbound_t.c.id == bindparam("iid")).values(
    processed_at=bindparam("now"))
_STORED = select(inbound_t.c.contact_id, inbound_t.c.channel, inbound_t.c.kind,
                 inbound_t.c.payload, inbound_t.c.received_at, inbound_t.c.processed_at,
                 *_KNOWN).join(
    contact_t, contact_t.c.id == inbound_t.c.contact_id).where(
    inbound_t.c.id == bindparam("iid")).with_for_update()
_KEY = select(contact_t.c.channel, contact_t.c.external_id, contact_t.c.id).join(
    inbound_t, inbound_t.c.contact_id == contact_t.c.id).where(inbound_t.c.id == bindparam("iid"))
_UNPROCESSED = select(inbound_t.c.id).where(inbound_t.c.processed_at.is_(None)).order_by(
    inbound_t.c.id)


def _store(conn: Connection, inbound: Inbound, stepper: Stepper | None,
           then: After | None = None) -> Received:
    """Insert the update (and its contact); with a stepper, process it in the same transaction.

    Processing relies on the unique key to catch a duplicate (the transaction then fails and
    `Inbox` looks again without processing), which saves a query on every normal turn.
    """
    if stepper is None:
        found = conn.execute(
            _FIND_INBOUND, {"channel": inbound.channel, "pid": inbound.platform_id}).first()
        if found is not None:
            return Received(found[0], found[1], new=False)
    known = conn.execute(
        _CONTACT_STATE, {"channel": inbound.channel, "ext": inbound.external_id}).first()
    saved: Saved | None = None
    if known is None:
        contact_id = conn.execute(insert(contact_t), {
            "channel": inbound.channel, "external_id": inbound.external_id,
            "display_name": _no_nul(inbound.display_name), "language": "id", "opted_in": False,
            "created_at": inbound.at, "last_inbound_at": inbound.at,
        }).inserted_primary_key[0]  # type: ignore[index]
        contact = Known()
    else:
        contact_id, contact = known.id, Known.of(known)
        if known.turns is not None:  # a conversation row (its state may be a JSON null)
            saved = (known.state, known.turns)
        last = known.last_inbound_at
        if last is None or inbound.at - last > SEEN_PRECISION:
            conn.execute(_SEEN_CONTACT, {"cid": contact_id, "at": inbound.at})
    payload = _masked(inbound.payload)  # what the engine and the database see
    inbound_id = conn.execute(insert(inbound_t), {
        "channel": inbound.channel, "platform_id": inbound.platform_id,
        "contact_id": contact_id, "kind": inbound.kind, "payload": payload,
        "received_at": inbound.at,
        "processed_at": datetime.now(UTC) if stepper is not None else None,
    }).inserted_primary_key[0]  # type: ignore[index]
    if stepper is not None:
        _process(conn, inbound_id, contact_id, inbound.channel, inbound.kind, payload,
                 inbound.at, contact, saved, stepper)
    extra = then(conn, contact_id) if then is not None else None
    return Received(inbound_id, contact_id, new=True, extra=extra)


def _conversation_key(conn: Connection, inbound_id: int) -> tuple[str, str, int] | None:
    row = conn.execute(_KEY, {"iid": inbound_id}).first()
    return (row[0], row[1], row[2]) if row is not None else None


def _process_stored(conn: Connection, inbound_id: int, stepper: Stepper) -> int | None:
    """The turn of a stored update; its contact's id, or None if it was processed before."""
    # PostgreSQL: the update and its contact stay locked until this turn commits, so another
    # process (a receiver, the leader's sweep) neither turns it twice nor overwrites this
    # conversation's state with one it loaded before (SQLite has one writer anyway)
    row = conn.execute(_STORED, {"iid": inbound_id}).first()
    if row is None or row.processed_at is not None:
        return None
    found = conn.execute(_LOAD_STATE, {"cid": row.contact_id}).first()
    saved = (found.state, found.turns) if found is not None else None
    _process(conn, inbound_id, row.contact_id, row.channel, row.kind, row.payload,
             row.received_at, Known.of(row), saved, stepper)
    conn.execute(_DONE, {"iid": inbound_id, "now": datetime.now(UTC)})
    return int(row.contact_id)


def _process(conn: Connection, inbound_id: int, contact_id: int, channel: str, kind: str,
             payload: dict[str, Any], at: datetime, contact: Known, saved: Saved | None,
             stepper: Stepper) -> None:
    remember_text(payload.get("text"))  # as stored (NIK masked): hidden from INFO+ lines
    log.debug("turn: inbound %s, contact %s, %s %s: %s", inbound_id, contact_id, channel, kind,
              message_text(payload.get("text", payload.get("payload", ""))))
    state = _saved_state(saved[0], contact_id) if saved is not None else None
    if state is None:
        state = State(lang="en" if contact.language == "en" else "id")
    result = stepper(kind, payload, at, contact.onto(state, channel))
    now = datetime.now(UTC)
    for _ in range(3):  # effects whose outcome the engine must hear about (bounded)
        asks = next((e for e in result.effects if isinstance(e, ASKS)), None)
        answer = _answer(conn, contact_id, asks, stepper, result.state.lang, at, now)
        if answer is None:
            break
        if isinstance(asks, CheckApplication):  # the verification answer is not kept
            conn.execute(update(inbound_t).where(inbound_t.c.id == inbound_id).values(
                payload={**payload, "text": REDACTED}))
        follow = stepper.event(result.state, answer)
        result = Step(follow.state, result.replies + follow.replies,
                      tuple(e for e in result.effects if e is not asks) + follow.effects)
    new_state = result.state.model_dump(mode="json")
    if saved is None:
        conn.execute(insert(conversation_t), {
            "contact_id": contact_id, "state": new_state, "turns": 1, "updated_at": now})
    else:
        conn.execute(_SAVE_STATE, {"cid": contact_id, "state": new_state,
                                   "turns": saved[1] + 1, "now": now})
    for effect in result.effects:
        if isinstance(effect, SetLanguage):
            conn.execute(update(contact_t).where(contact_t.c.id == contact_id)
                         .values(language=effect.lang))
        elif isinstance(effect, SubmitSurvey):
            survey.store(conn, effect, at.astimezone(stepper.tz).date())  # office day
        elif isinstance(effect, DeleteMyData):  # before this turn's reply is queued
            privacy.erase(conn, contact_id, at, keep_inbound_id=inbound_id)
    profile.apply(conn, contact_id, result.effects, stepper.content, at)  # consent, area, topics
    notice = _notice(conn, result, stepper, now)
    if notice is not None:  # told before the answer: before the citizen travels
        result = Step(result.state, (notice, *result.replies), result.effects)
    if result.replies:
        payloads = [reply.to_dict() for reply in result.replies]
        pressed = payload.get("message_id") if kind == "choice" else None
        if pressed is not None and len(payloads) == 1 and payloads[0].get("menu"):
            was = conn.execute(_PRESSED, {"cid": contact_id, "pmid": str(pressed)}).scalar()
            if was is not None and was.get("menu"):
                # menu to menu by a button: the channel may replace the pressed message
                payloads[0]["edit_message_id"] = pressed
        conn.execute(insert(outbox_t), [
            new_row(contact_id, channel, data, PRIORITY_REPLY, now, inbound_id)
            for data in payloads])


def _saved_state(saved: Any, contact_id: int) -> State | None:
    """The stored state, or None to start afresh: a state that no longer validates (an
    upgrade changed the model, a hand edit) failed every turn of that citizen, for good."""
    try:
        return State.model_validate(saved)
    except ValidationError as exc:
        log.warning("conversation of contact %s did not load (%d errors); started afresh",
                    contact_id, exc.error_count())
        return None


REDACTED = "[jawaban verifikasi]"
OFFICE_TOPICS = frozenset({"lokasi", "jam-layanan"})  # office info: every notice applies


def _notice(conn: Connection, result: Step, stepper: Stepper, now: datetime) -> Reply | None:
    """The disruptions in effect for the service (or office information) this turn showed,
    as one reply; one indexed query, and only on such a turn."""
    content = stepper.content
    asked = next((e.topic for e in result.effects if isinstance(e, TopicAsked)
                  and (e.topic in content.services or e.topic in OFFICE_TOPICS)), None)
    if asked is None:
        return None
    rows = notices.active(conn, now, None if asked in OFFICE_TOPICS else asked)
    if not rows:
        return None
    lang = result.state.lang
    offices = {o.id: o.label.get(lang) for o in content.offices}
    lines = []
    for row in rows:
        until = row.ends_at.astimezone(stepper.tz)
        office = (offices.get(row.office, row.office) if row.office
                  else content.msg(lang, "service_notice_all_offices"))
        text = (row.text_en or row.text_id) if lang == "en" else row.text_id
        lines.append(content.msg(
            lang, "service_notice_line", office=office, text=text,
            until=f"{content.format_date(lang, until.date())} {until:%H.%M} "
                  f"{until.tzname() or ''}".rstrip()))
    return Reply(content.msg(lang, "service_notice", notices="\n".join(lines)))


def _no_nul(value: str | None) -> str | None:
    """Storable text: PostgreSQL refuses NUL in text columns and no database takes half a
    surrogate pair, yet a web client or a platform can send either ("\\u0000", "\\ud800")."""
    if not value:
        return value
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _masked(payload: dict[str, Any]) -> dict[str, Any]:
    """A NIK typed in a chat is stored (and so shown and logged anywhere later) masked, and
    without NUL characters."""
    out = payload
    for key in ("text", "args"):
        value = payload.get(key)
        if isinstance(value, str):
            masked = mask_in_text(_no_nul(value) or "")
            if masked != value:
                out = {**out, key: masked}
    return out


def _answer(conn: Connection, contact_id: int, asks: Any, stepper: Stepper, lang: Any,
            at: datetime, now: datetime) -> Event | None:
    """Do what the engine asked; the event that tells it the outcome (None: nothing asked,
    or a part this office's content does not have)."""
    content = stepper.content
    if isinstance(asks, CheckApplication | ListApplications | FollowApplication):
        if content.applications is None:
            return None
        return application_lookup.answer(conn, contact_id, asks, content, stepper.secret,
                                         lang, at, now)
    if asks is None or content.complaints is None:
        return None
    return complaints.answer(conn, contact_id, asks, content, stepper.tz, lang, at, now)


def _unprocessed(conn: Connection, between: tuple[datetime, datetime] | None) -> list[int]:
    query = _UNPROCESSED
    if between is not None:
        query = query.where(inbound_t.c.received_at >= between[0],
                            inbound_t.c.received_at < between[1])
    return list(conn.execute(query).scalars())


def _queue_reply(conn: Connection, contact_id: int, *, reply: Reply, inbound_platform_id: str,
                 channel: str) -> None:
    now = datetime.now(UTC)
    inbound_id = conn.execute(
        _FIND_INBOUND, {"channel": channel, "pid": inbound_platform_id}).scalar_one()
    conn.execute(_DONE, {"iid": inbound_id, "now": now})
    conn.execute(insert(outbox_t), new_row(contact_id, channel, reply.to_dict(),
                                           PRIORITY_REPLY, now, inbound_id))
