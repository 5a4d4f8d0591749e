"""The inbox -> step -> apply path: dedupe, one transaction, and recovery after a crash."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import func, select

from bot.app import Lontar, build
from bot.config import load_settings
from bot.inbox import Inbound
from bot.models import Contact, Conversation, InboundMessage, Outbox


def _in(text: str, pid: str, ext: str = "citizen-1", kind: str = "text") -> Inbound:
    payload = {"text": text} if kind == "text" else {"name": text}
    return Inbound(channel="web", external_id=ext, platform_id=pid, kind=kind,  # type: ignore[arg-type]
                   payload=payload)


def _count(lontar: Lontar, model: type) -> int:
    with lontar.db.session() as s:
        return s.exec(select(func.count()).select_from(model)).one()


async def test_a_turn_writes_state_and_outbox_rows(lontar: Lontar) -> None:
    received = await lontar.inbox.handle(_in("start", "m1", kind="command"))
    assert received.new
    with lontar.db.session() as s:
        conv = s.get(Conversation, received.contact_id)
        rows = s.exec(select(Outbox)).all()
        inbound = s.exec(select(InboundMessage)).one()
    assert conv is not None and conv.state["screen"] == "menu"
    assert len(rows) >= 1 and all(r.status == "pending" and r.priority == 0 for r in rows)
    assert inbound.processed_at is not None


async def test_redelivered_update_is_ignored(lontar: Lontar) -> None:
    await lontar.inbox.handle(_in("halo", "same"))
    again = await lontar.inbox.handle(_in("halo", "same"))
    assert not again.new
    assert _count(lontar, InboundMessage) == 1
    with lontar.db.session() as s:
        assert s.exec(select(Conversation.turns)).one() == 1


async def test_same_update_twice_at_once(lontar: Lontar) -> None:
    results = await asyncio.gather(*[lontar.inbox.handle(_in("halo", "dup")) for _ in range(5)])
    assert sum(r.new for r in results) == 1
    with lontar.db.session() as s:
        assert s.exec(select(Conversation.turns)).one() == 1


async def test_failure_inside_apply_leaves_nothing_half_written(
        lontar: Lontar, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash after the state is written but before the outbox rows must roll both back."""
    import bot.inbox as inbox_mod

    real_insert = inbox_mod.insert

    def failing_insert(table):  # type: ignore[no-untyped-def]
        if table is inbox_mod.outbox_t:
            raise RuntimeError("power cut")
        return real_insert(table)

    monkeypatch.setattr(inbox_mod, "insert", failing_insert)
    received = await lontar.inbox.receive(_in("halo", "p1"))
    with pytest.raises(RuntimeError):
        await lontar.inbox.process(received.inbound_id)
    assert _count(lontar, Conversation) == 0 and _count(lontar, Outbox) == 0
    with lontar.db.session() as s:
        assert s.exec(select(InboundMessage.processed_at)).one() is None
    with pytest.raises(RuntimeError):  # the whole-turn path rolls back its update too
        await lontar.inbox.handle(_in("halo", "p2"))
    assert _count(lontar, InboundMessage) == 1
    monkeypatch.undo()
    assert await lontar.inbox.process_pending() == 1
    assert _count(lontar, Conversation) == 1 and _count(lontar, Outbox) >= 1


async def test_stored_but_unprocessed_updates_survive_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=tmp_path)
    first = build(settings)
    for i in range(3):
        await first.inbox.receive(_in(f"syarat kk {i}", f"u{i}"))
    first.close()  # "crash": stored, acknowledged, never processed

    second = build(load_settings(data_dir=tmp_path))
    assert await second.inbox.process_pending() == 3
    assert await second.inbox.process_pending() == 0
    with second.db.session() as s:
        assert s.exec(select(Conversation.turns)).one() == 3
        assert s.exec(select(func.count()).select_from(Contact)).one() == 1
    second.close()


async def test_conversation_resumes_after_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = build(load_settings(data_dir=tmp_path))
    await a.inbox.handle(_in("start", "r1", kind="command"))
    with a.db.session() as s:
        seq = s.exec(select(Conversation)).one().state["seq"]
    a.close()
    b = build(load_settings(data_dir=tmp_path))
    r = await b.inbox.handle(_in("1", "r2"))  # "1" = first option of the menu sent before
    with b.db.session() as s:
        state = s.exec(select(Conversation)).one().state
    assert r.new and state["seq"] == seq + 1 and state["screen"] != "menu"
    b.close()


async def test_contacts_are_separate(lontar: Lontar) -> None:
    await lontar.inbox.handle(_in("bahasa", "a1", ext="alice"))
    await lontar.inbox.handle(_in("syarat kia", "b1", ext="bob"))
    with lontar.db.session() as s:
        states = {c.external_id: s.get(Conversation, c.id).state["screen"]  # type: ignore[union-attr]
                  for c in s.exec(select(Contact)).all()}
    assert states == {"alice": "lang", "bob": "s:kia"}


async def test_language_effect_is_stored_on_the_contact(lontar: Lontar) -> None:
    await lontar.inbox.handle(_in("bahasa", "l1"))
    with lontar.db.session() as s:
        conv = s.exec(select(Conversation)).one()
    choice = f"{conv.state['seq']}|lang:en"
    await lontar.inbox.handle(Inbound("web", "citizen-1", "l2", "choice", {"payload": choice}))
    with lontar.db.session() as s:
        assert s.exec(select(Contact.language)).one() == "en"
