""""Hapus data saya" through the real inbox and database, and the retention purge
(bot/services/privacy.py)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update

from bot.app import Lontar
from bot.inbox import Inbound
from bot.models import (
    PRIORITY_BROADCAST,
    PRIORITY_NOTIFICATION,
    application_t,
    audit_t,
    broadcast_t,
    complaint_t,
    contact_t,
    conversation_t,
    delivery_t,
    follower_t,
    guard_t,
    inbound_t,
    outbox_t,
    subscription_t,
    tag_t,
    topic_t,
    update_t,
)
from bot.outbox import CANCELLED, new_row
from bot.services import privacy
from tests.bot.test_consent import Citizen, _numbered


def _ticket(conn: Any, number: str, contact_id: int, identity: str, at: datetime,
            state: str = "baru", photos: tuple[str, ...] = ()) -> int:
    tid: int = conn.execute(insert(complaint_t), {
        "number": number, "kind": "pengaduan", "service": "kk-baru", "office": "dinas",
        "category": "lambat", "dimension": "waktu", "urgent": False,
        "text": "Antrian lama sekali", "text_hash": number, "photos": list(photos),
        "happened": "today", "identity": identity,
        "contact_id": None if identity == "anonymous" else contact_id,
        "display_name": "Maria Bere" if identity == "named" else None, "state": state,
        "due_on": date(2026, 11, 25), "created_at": at, "updated_at": at,
    }).inserted_primary_key[0]
    conn.execute(insert(follower_t), {"complaint_id": tid, "contact_id": contact_id,
                                      "created_at": at})
    return tid


def _count(lontar: Lontar, table: Any, *where: Any) -> int:
    with lontar.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where))
                   .scalar_one())


async def test_hapus_data_saya_deletes_and_anonymises(lontar: Lontar) -> None:
    c = Citizen(lontar)
    other = Citizen(lontar, who="888")
    await c.command("start")
    await c.press("go:consent:yes")
    await c.say("syarat kk baru")
    await other.say("syarat kk baru")
    cid = c.contact().id
    with lontar.db.engine.begin() as conn:
        conn.execute(update(contact_t).where(contact_t.c.id == cid).values(
            display_name="Maria Bere", kecamatan="alak", kelurahan="alak:1001"))
        named = _ticket(conn, "ADU-2026-AAAAAA", cid, "named", c.at)
        anon = _ticket(conn, "ADU-2026-BBBBBB", cid, "anonymous", c.at)
        conn.execute(insert(update_t), {
            "complaint_id": named, "author": "citizen", "public": True, "text": "Info tambah",
            "changes": {}, "created_at": c.at})
        app_id = conn.execute(insert(application_t), {
            "reg_no": "KK-1", "service": "kk-baru", "office": "dinas", "status": "diproses",
            "verify_kind": "nik_last4", "verify_hmac": "x", "status_changed_at": c.at,
            "created_at": c.at, "updated_at": c.at}).inserted_primary_key[0]
        conn.execute(insert(subscription_t), {"application_id": app_id, "contact_id": cid,
                                              "created_at": c.at})
        conn.execute(insert(guard_t), {"contact_id": cid, "failures": 1,
                                       "window_start": c.at, "lookups": 2})
        conn.execute(insert(tag_t), {"contact_id": cid, "tag": "rt-05", "created_at": c.at})
        conn.execute(insert(outbox_t), new_row(cid, "telegram", {"text": "Status KK-1: siap"},
                                               PRIORITY_NOTIFICATION, c.at))
        bid = conn.execute(insert(broadcast_t), {
            "title": "Jemput bola", "status": "sending", "text_id": "Jadwal", "buttons": [],
            "audience": {}, "cursor": 0, "queued": 1, "skipped_blocked": 0,
            "skipped_opted_out": 0, "created_at": c.at, "updated_at": c.at,
        }).inserted_primary_key[0]
        row = new_row(cid, "telegram", {"text": "Jadwal"}, PRIORITY_BROADCAST, c.at)
        oid = conn.execute(insert(outbox_t), {**row, "broadcast_id": bid}
                           ).inserted_primary_key[0]
        conn.execute(insert(delivery_t), {"broadcast_id": bid, "contact_id": cid,
                                          "outbox_id": oid, "created_at": c.at})
    assert _count(lontar, topic_t, topic_t.c.contact_id == cid) == 1

    asked = await c.command("hapus")
    assert asked[-1]["text"] == lontar.content.msg("id", "privacy_confirm")
    assert _count(lontar, inbound_t, inbound_t.c.contact_id == cid) == 4  # nothing yet
    done = await c.press(_numbered(asked, "privacy:yes"))
    assert [r["text"] for r in done] == [lontar.content.msg("id", "privacy_done")]

    row = c.contact()
    assert (row.display_name, row.kecamatan, row.kelurahan, row.opted_in) == (
        None, None, None, False)
    assert row.opted_out_at == c.at
    # only the confirmation's own update is kept (a redelivery must still be recognised)
    with lontar.db.engine.connect() as conn:
        kept = conn.execute(select(inbound_t).where(inbound_t.c.contact_id == cid)).all()
        assert [r.platform_id for r in kept] == [f"777-{c.n}"]
        outbox = conn.execute(select(outbox_t).where(outbox_t.c.contact_id == cid)
                              .order_by(outbox_t.c.id)).all()
        assert [(r.broadcast_id, r.status) for r in outbox] == [
            (bid, CANCELLED), (None, "pending")]  # the broadcast row, then the confirmation
        assert outbox[1].payload["text"] == lontar.content.msg("id", "privacy_done")
        tickets = conn.execute(select(complaint_t).order_by(complaint_t.c.id)).all()
        assert [(t.id, t.contact_id, t.display_name, t.identity, t.text) for t in tickets] == [
            (named, None, None, "anonymous", "Antrian lama sekali"),
            (anon, None, None, "anonymous", "Antrian lama sekali")]
        notes = conn.execute(select(update_t.c.complaint_id, update_t.c.author,
                                    update_t.c.public, update_t.c.changes)
                             .where(update_t.c.author == "system")
                             .order_by(update_t.c.complaint_id)).all()
        assert [tuple(n) for n in notes] == [
            (named, "system", False, {"identity": ["named", "anonymous"]}),
            (anon, "system", False, {"identity": ["anonymous", "anonymous"]})]
        audit = conn.execute(select(audit_t).where(audit_t.c.action == "privacy_erase")).one()
        assert audit.target == f"contact:{cid}" and audit.detail["complaints"] == 2
        assert "Maria" not in str(audit.detail)
    for table in (conversation_t, follower_t, subscription_t, guard_t, topic_t, tag_t):
        assert _count(lontar, table, table.c.contact_id == cid) == 0, table.name
    assert _count(lontar, delivery_t, delivery_t.c.contact_id == cid) == 1  # broadcast stats
    # the other citizen is untouched
    oid_ = other.contact().id
    assert _count(lontar, inbound_t, inbound_t.c.contact_id == oid_) == 1
    assert _count(lontar, conversation_t, conversation_t.c.contact_id == oid_) == 1
    assert _count(lontar, topic_t, topic_t.c.contact_id == oid_) == 1

    # a redelivered confirmation is ignored; writing again starts afresh, not asked again
    again = await lontar.inbox.handle(Inbound("telegram", "777", f"777-{c.n}", "choice",
                                              {"payload": "x"}, at=c.at))
    assert not again.new
    replies = await c.say("halo")
    assert lontar.content.msg("id", "welcome") in replies[0]["text"]
    assert not any(r["text"] == lontar.content.msg("id", "consent_ask") for r in replies)
    assert not c.contact().opted_in


async def test_batal_deletes_nothing(lontar: Lontar) -> None:
    c = Citizen(lontar)
    await c.command("start")
    await c.press("go:consent:yes")
    asked = await c.say("hapus data saya")
    replies = await c.press(_numbered(asked, "privacy:no"))
    assert replies[0]["text"].startswith(lontar.content.msg("id", "privacy_cancelled"))
    assert c.contact().opted_in
    assert _count(lontar, inbound_t, inbound_t.c.contact_id == c.contact().id) == 4


# -- retention ------------------------------------------------------------------------------

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


async def test_purge_inbound_keeps_recent_and_unprocessed(lontar: Lontar) -> None:
    old, recent = Citizen(lontar, who="1"), Citizen(lontar, who="2")
    old.at = NOW - timedelta(days=400)
    recent.at = NOW - timedelta(days=30)
    await old.say("syarat kk baru")
    await old.say("biaya")
    await recent.say("syarat ktp")
    with lontar.db.engine.begin() as conn:  # stored before a crash, never processed
        conn.execute(insert(inbound_t), {
            "channel": "telegram", "platform_id": "crashed", "contact_id": old.contact().id,
            "kind": "text", "payload": {"text": "x"}, "received_at": NOW - timedelta(days=500),
            "processed_at": None})
    before = NOW - timedelta(days=365)
    assert await lontar.db.transaction(privacy.purge_inbound, before, 1) == 1  # in batches
    assert await lontar.db.transaction(privacy.purge_inbound, before) == 1
    assert await lontar.db.transaction(privacy.purge_inbound, before) == 0
    with lontar.db.engine.connect() as conn:
        left = set(conn.execute(select(inbound_t.c.platform_id)).scalars())
        assert left == {"crashed", "2-1"}
        # the replies stay (unlinked): the office still knows what Lontar said
        assert conn.execute(select(func.count()).select_from(outbox_t).where(
            outbox_t.c.contact_id == old.contact().id)).scalar_one() >= 2


def _file(path: Path, age: timedelta) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8")
    stamp = (NOW - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


async def test_purge_attachments_keeps_open_tickets(lontar: Lontar, tmp_path: Path) -> None:
    data = lontar.settings.data_dir
    c = Citizen(lontar)
    await c.say("halo")
    year = timedelta(days=400)
    open_photo = _file(data / "attachments/telegram/777/open.jpg", year)
    closed_photo = _file(data / "attachments/telegram/777/closed.jpg", year)
    stray = _file(data / "attachments/whatsapp/62812/stray.jpg", year)
    fresh = _file(data / "attachments/telegram/777/fresh.jpg", timedelta(days=10))
    with lontar.db.engine.begin() as conn:
        _ticket(conn, "ADU-2026-CCCCCC", c.contact().id, "named", NOW,
                photos=("attachments/telegram/777/open.jpg",))
        _ticket(conn, "ADU-2026-DDDDDD", c.contact().id, "named", NOW, state="selesai",
                photos=("attachments/telegram/777/closed.jpg",))
    cc = lontar.content.complaints
    assert cc is not None
    open_states = [s.id for s in cc.state if s.type == "open"]
    assert "baru" in open_states and "selesai" not in open_states
    deleted = await lontar.db.transaction(
        privacy.purge_attachments, data, NOW - timedelta(days=365), open_states)
    assert deleted == 2
    assert open_photo.exists() and fresh.exists()
    assert not closed_photo.exists() and not stray.exists()
    assert not stray.parent.exists()  # an emptied chat folder goes too


def test_nothing_to_purge_without_an_attachments_folder(lontar: Lontar, tmp_path: Path) -> None:
    with lontar.db.engine.begin() as conn:
        assert privacy.purge_attachments(conn, tmp_path / "none", NOW, []) == 0


async def test_the_daily_job_uses_the_retention_settings(tmp_path: Path) -> None:
    from bot.app import build
    from bot.config import load_settings
    from bot.jobs import purge_personal_data

    app = build(load_settings(data_dir=tmp_path, retention_inbound_days=30,
                              retention_attachment_days=90))
    try:
        c = Citizen(app)
        c.at = NOW - timedelta(days=40)
        await c.say("halo")
        photo = _file(tmp_path / "attachments/telegram/777/a.jpg", timedelta(days=60))
        assert await purge_personal_data(app, NOW) == (1, 0)  # the message, not yet the file
        assert photo.exists()
        assert await purge_personal_data(app, NOW + timedelta(days=31)) == (0, 1)
        assert not photo.exists()
    finally:
        app.close()


def test_retention_settings(monkeypatch: Any, tmp_path: Path) -> None:
    from bot.config import load_settings

    s = load_settings(data_dir=tmp_path)
    assert (s.retention_inbound_days, s.retention_attachment_days) == (365, 365)
    monkeypatch.setenv("LONTAR_RETENTION_INBOUND_DAYS", "90")
    monkeypatch.setenv("LONTAR_RETENTION_ATTACHMENT_DAYS", "180")
    s = load_settings(data_dir=tmp_path)
    assert (s.retention_inbound_days, s.retention_attachment_days) == (90, 180)
