"""Inbound -> store (dedupe) -> per-conversation lock -> load -> flows.step -> apply.

`apply` writes the new state, the effects and one outbox row per reply in ONE transaction,
and marks the inbound row processed in that same transaction. So after a crash an update is
either fully handled (and its replies queued exactly once) or not at all, in which case
`process_pending` handles it at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.db import Database
from bot.models import PRIORITY_REPLY, Contact, Conversation, InboundMessage, Outbox
from flows.content import Content
from flows.engine import Options, step
from flows.types import (
    Attachment,
    Choice,
    Command,
    Event,
    OptOut,
    SetLanguage,
    State,
    Step,
    Text,
)

log = logging.getLogger(__name__)

InboundKind = Literal["text", "choice", "command", "attachment"]


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
        return Attachment(payload.get("kind", "other"), at, payload.get("ref"))
    return Text(str(payload.get("text", "")), at)


@dataclass(frozen=True)
class Received:
    inbound_id: int
    contact_id: int
    new: bool


class _Locks:
    """One asyncio lock per contact, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: int) -> AsyncIterator[None]:
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


class Inbox:
    def __init__(
        self,
        db: Database,
        content: Content,
        options: Options | None = None,
        on_commit: Callable[[str, int], None] | None = None,
    ):
        self.db = db
        self.content = content
        self.options = options or Options()
        self.on_commit = on_commit  # (channel, contact_id): wake that channel's sender
        self._locks = _Locks()

    async def handle(self, inbound: Inbound) -> Received:
        """Store then process; a redelivered update is acknowledged and not processed again."""
        received = await self.receive(inbound)
        if received.new:
            await self.process(received.inbound_id, received.contact_id)
        return received

    async def receive(self, inbound: Inbound) -> Received:
        return await self.db.run(_store, inbound)

    async def process(self, inbound_id: int, contact_id: int) -> Step | None:
        async with self._locks.hold(contact_id):
            loaded = await self.db.run(_load, inbound_id)
            if loaded is None:
                return None  # already processed (by an earlier run or a duplicate)
            kind, payload, at, state = loaded
            result = step(state, to_event(kind, payload, at), self.content, self.options)
            channel = await self.db.run(_apply, inbound_id, result)
        if channel is not None and self.on_commit is not None:
            self.on_commit(channel, contact_id)
        return result

    async def process_pending(self) -> int:
        """Handle updates stored before a crash but never processed, oldest first."""
        pending = await self.db.run(_unprocessed)
        for inbound_id, contact_id in pending:
            await self.process(inbound_id, contact_id)
        return len(pending)


# --- database work (runs on the database thread) -----------------------------------------


def _store(session: Session, inbound: Inbound) -> Received:
    existing = session.exec(
        select(InboundMessage.id, InboundMessage.contact_id).where(
            InboundMessage.channel == inbound.channel,
            InboundMessage.platform_id == inbound.platform_id,
        )
    ).first()
    if existing is not None:
        return Received(existing[0], existing[1], new=False)
    contact = session.exec(
        select(Contact).where(
            Contact.channel == inbound.channel, Contact.external_id == inbound.external_id
        )
    ).first()
    if contact is None:
        contact = Contact(channel=inbound.channel, external_id=inbound.external_id,
                          display_name=inbound.display_name)
    contact.last_inbound_at = inbound.at
    session.add(contact)
    session.flush()
    row = InboundMessage(
        channel=inbound.channel, platform_id=inbound.platform_id, contact_id=contact.id or 0,
        kind=inbound.kind, payload=inbound.payload, received_at=inbound.at,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # the same update arrived twice at once
        session.rollback()
        found = session.exec(
            select(InboundMessage.id, InboundMessage.contact_id).where(
                InboundMessage.channel == inbound.channel,
                InboundMessage.platform_id == inbound.platform_id,
            )
        ).one()
        return Received(found[0], found[1], new=False)
    return Received(row.id or 0, contact.id or 0, new=True)


def _load(session: Session, inbound_id: int) -> tuple[str, dict[str, Any], datetime, State] | None:
    row = session.get(InboundMessage, inbound_id)
    if row is None or row.processed_at is not None:
        return None
    conv = session.get(Conversation, row.contact_id)
    if conv is not None:
        state = State.model_validate(conv.state)
    else:
        contact = session.get(Contact, row.contact_id)
        state = State(lang="en" if contact and contact.language == "en" else "id")
    return row.kind, row.payload, row.received_at, state


def _apply(session: Session, inbound_id: int, result: Step) -> str | None:
    row = session.get(InboundMessage, inbound_id)
    if row is None or row.processed_at is not None:
        return None
    now = datetime.now(UTC)
    conv = session.get(Conversation, row.contact_id)
    if conv is None:
        conv = Conversation(contact_id=row.contact_id)
    conv.state = result.state.model_dump(mode="json")
    conv.turns += 1
    conv.updated_at = now
    session.add(conv)
    contact = session.get(Contact, row.contact_id)
    assert contact is not None
    for effect in result.effects:
        if isinstance(effect, SetLanguage):
            contact.language = effect.lang
        elif isinstance(effect, OptOut):
            contact.opted_in = False
            contact.opted_out_at = now
    session.add(contact)
    for reply in result.replies:
        session.add(Outbox(
            contact_id=row.contact_id, channel=row.channel, priority=PRIORITY_REPLY,
            payload=reply.to_dict(), inbound_id=inbound_id, next_attempt_at=now,
        ))
    row.processed_at = now
    session.add(row)
    session.commit()
    return row.channel


def _unprocessed(session: Session) -> list[tuple[int, int]]:
    rows = session.exec(
        select(InboundMessage.id, InboundMessage.contact_id)
        .where(InboundMessage.processed_at.is_(None))  # type: ignore[union-attr]
        .order_by(InboundMessage.id)
    ).all()
    return [(r[0], r[1]) for r in rows]
