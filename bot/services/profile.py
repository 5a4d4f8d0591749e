"""What a citizen tells Lontar about themselves in the chat: whether they want information
from the office, where they live, and which services they asked about. These are the facts
outreach audiences are chosen by (bot/services/audience.py), so they are written in the
turn's own transaction, with the state that showed the citizen the change.

Consent changes go through bot/services/consent.py, the one place they happen. Each turn
starts from what the contact row knows (`Known`), since platforms and staff change it too.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.models import contact_t, topic_t
from bot.services import consent
from bot.services.audience import PUSH_CHANNELS
from flows.content import Content
from flows.settings import kel_id
from flows.types import Effect, SetArea, SetConsent, State, TopicAsked

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Known:
    """What the contact row says that the engine shows and builds on. The row is the truth:
    a Telegram block, WhatsApp's marketing stop or staff may change it between turns."""

    language: str = "id"
    opted_in: bool = False
    decided: bool = False  # answered the consent question before (or a platform stop)
    kecamatan: str | None = None
    kelurahan: str | None = None

    @classmethod
    def of(cls, row: Any) -> Known:
        return cls(row.language, bool(row.opted_in),
                   row.consent_at is not None or row.opted_out_at is not None,
                   row.kecamatan, row.kelurahan)

    def onto(self, state: State, channel: str) -> State:
        """The state with the contact's choices; the consent question is put only where
        outreach can reach (not a web chat session) and to whom never answered it."""
        asked = state.consent_asked or self.decided or channel not in PUSH_CHANNELS
        return state.model_copy(update={"subscribed": self.opted_in, "consent_asked": asked,
                                        "kecamatan": self.kecamatan,
                                        "kelurahan": self.kelurahan})


def apply(conn: Connection, contact_id: int, effects: Iterable[Effect], content: Content,
          at: datetime) -> None:
    """Apply the turn's consent, area and topic effects (others are not this module's)."""
    topics: list[str] = []
    for effect in effects:
        if isinstance(effect, SetConsent):
            if effect.opted_in:
                consent.opt_in(conn, contact_id, at)
            elif effect.first:  # "no" to the first question: no consent, not an opt-out
                consent.declined(conn, contact_id, at)
            else:
                consent.opt_out(conn, contact_id, at)
        elif isinstance(effect, SetArea):
            set_area(conn, contact_id, content, effect.kecamatan, effect.kelurahan)
        elif isinstance(effect, TopicAsked) and effect.topic not in topics:
            topic = content.all_topics.get(effect.topic)
            if topic is not None and topic.kind != "smalltalk":  # a greeting is no interest
                topics.append(effect.topic)
    if topics:
        record_topics(conn, contact_id, topics, at)


def set_area(conn: Connection, contact_id: int, content: Content, kecamatan: str | None,
             kelurahan: str | None) -> None:
    """Store the area if content lists it (the engine checked; this keeps the column clean
    whoever calls it); a kelurahan must lie in the kecamatan."""
    k = next((k for k in content.kecamatan if k.id == kecamatan), None)
    if kecamatan is not None and k is None:
        log.warning("area not stored: unknown kecamatan")
        return
    if kelurahan is not None and (k is None or kelurahan not in
                                  {kel_id(k.id, x.code) for x in k.kelurahan}):
        log.warning("area not stored: unknown kelurahan")
        return
    conn.execute(update(contact_t).where(contact_t.c.id == contact_id)
                 .values(kecamatan=kecamatan, kelurahan=kelurahan))


def record_topics(conn: Connection, contact_id: int, topics: list[str], at: datetime) -> None:
    """Upsert (contact, topic): first asked at, last asked at. One statement on SQLite and
    PostgreSQL (the two databases Lontar runs on), so two workers answering the same contact
    cannot collide on the key."""
    rows = [{"contact_id": contact_id, "topic": t, "first_at": at, "last_at": at}
            for t in topics]
    conn.execute(_upsert_topic(conn.dialect.name), rows)


@functools.cache
def _upsert_topic(dialect: str) -> Any:
    """Built once per database: a statement built per turn cost more than running it."""
    ins = (postgresql.insert(topic_t) if dialect == "postgresql" else sqlite.insert(topic_t))
    return ins.on_conflict_do_update(index_elements=["contact_id", "topic"],
                                     set_={"last_at": ins.excluded.last_at})
