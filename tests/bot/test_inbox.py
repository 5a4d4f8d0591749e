"""The inbox -> step -> apply path: dedupe, one transaction, and recovery after a crash."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import func, select

from bot.app import Lontar, build
from bot.config import load_settings
from bot.inbox import Inbound
from bot.models import Contact, Conversation, InboundMessage, Outbox, conversation_t, outbox_t
from flows.types import State
from tests.fuzz import fuzz_settings

_ids = itertools.count()


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


async def test_stranded_updates_are_turned_late_by_the_sweep(
        lontar: Lontar, monkeypatch: pytest.MonkeyPatch) -> None:
    """A receiver that acknowledged an update and died left it stored; only a leader's
    election turned it (recover), which may never come. The sweep turns what is a minute
    old, leaves what may still be under way, and gives up after fifteen minutes."""
    from datetime import UTC, datetime, timedelta

    from bot.jobs import process_stranded
    from bot.models import inbound_t

    now = datetime.now(UTC)
    ages = {"fresh": 30, "minute": 90, "ten": 600, "hour": 3600, "broken": 120}
    ids = {}
    for name, age in ages.items():
        received = await lontar.inbox.receive(_in("syarat kk", name, ext=name))
        ids[name] = received.inbound_id
        with lontar.db.engine.begin() as conn:
            conn.execute(update(inbound_t).where(inbound_t.c.id == received.inbound_id)
                         .values(received_at=now - timedelta(seconds=age)))
    process = lontar.inbox.process

    async def fails_once(inbound_id: int, *chat: object) -> bool:
        if inbound_id == ids["broken"]:
            raise RuntimeError("database went away")
        return await process(inbound_id, *chat)  # type: ignore[arg-type]

    monkeypatch.setattr(lontar.inbox, "process", fails_once)
    assert await process_stranded(lontar, now) == 2  # the broken one did not stop the rest

    def processed() -> set[str]:
        with lontar.db.session() as s:
            done = set(s.exec(select(InboundMessage.id)
                              .where(InboundMessage.processed_at.is_not(None))).all())  # type: ignore[union-attr]
        return {name for name, i in ids.items() if i in done}

    assert processed() == {"minute", "ten"}
    monkeypatch.setattr(lontar.inbox, "process", process)
    assert await process_stranded(lontar, now) == 1
    assert processed() == {"minute", "ten", "broken"}
    with lontar.db.session() as s:  # each answered once
        replied = s.exec(select(Outbox.inbound_id).distinct()).all()
    assert sorted(replied) == sorted(ids[n] for n in ("minute", "ten", "broken"))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12)


@fuzz_settings(60)
@given(data=st.data())
async def test_a_saved_state_that_does_not_load_starts_afresh(lontar: Lontar,
                                                              data: st.DataObject) -> None:
    """A conversation whose stored state no longer validates (an upgrade changed the model,
    a hand edit) failed every turn of that citizen, for good. Now the citizen is answered
    from a fresh state, and what is stored afterwards loads."""
    first = await lontar.inbox.handle(_in("syarat kk", f"seed-{next(_ids)}", ext="fuzzed"))
    with lontar.db.engine.begin() as conn:
        valid = conn.execute(select(conversation_t.c.state).where(
            conversation_t.c.contact_id == first.contact_id)).scalar_one()
        key = data.draw(st.sampled_from(sorted(valid)))
        broken = data.draw(_json | _json.map(lambda x: {**valid, key: x}))
        conn.execute(update(conversation_t).where(
            conversation_t.c.contact_id == first.contact_id).values(state=broken))
    turn = await lontar.inbox.handle(_in("syarat kk", f"after-{next(_ids)}", ext="fuzzed"))
    assert turn.new
    with lontar.db.engine.begin() as conn:
        saved = conn.execute(select(conversation_t.c.state).where(
            conversation_t.c.contact_id == first.contact_id)).scalar_one()
        replies = conn.execute(select(func.count()).select_from(outbox_t).where(
            outbox_t.c.inbound_id == turn.inbound_id)).scalar_one()
    assert replies >= 1
    State.model_validate(saved)
